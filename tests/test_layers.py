"""Custom layers: values, freezing, equivalence with Keras' ConvLSTM2D and .keras round-trips."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from bioflow.components import BLTRecurrentBlock, Combined, DoG, FilterBankConv, Gabor, LowPass, OneStepConvLSTM2D
from bioflow.components.recurrent import FinalStep, StepOutputs
from bioflow.errors import BioflowError

SMALL_GABOR = Gabor(ksize=15, sigmas=[3.0])


def roundtrip(layer, x, tmp_path):
    """Wrap a layer in a model, save it as .keras, load it safely and compare outputs."""
    inputs = keras.Input(shape=x.shape[1:])
    model = keras.Model(inputs, layer(inputs))
    path = tmp_path / "layer.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6, atol=1e-6)
    return model, loaded


@pytest.mark.parametrize("method", ["direct", "fft"])
def test_filterbank_conv_is_relu_of_conv_plus_bias(method):
    x = tf.random.stateless_uniform((2, 32, 32, 1), seed=(0, 1))
    layer = FilterBankConv(SMALL_GABOR, method=method)
    y = layer(x)
    expected = tf.nn.relu(tf.nn.conv2d(x, tf.constant(SMALL_GABOR.kernels(), tf.float32), 1, "SAME"))
    assert y.shape == (2, 32, 32, 24)
    np.testing.assert_allclose(y.numpy(), expected.numpy(), atol=1e-4)
    assert layer.resolved_method == method


def test_filterbank_conv_is_frozen_by_default():
    layer = FilterBankConv(LowPass(ksize=5, sigmas=[1, 2]))
    layer.build((None, 8, 8, 3))
    assert layer.trainable_weights == []
    assert [w.shape for w in layer.non_trainable_weights] == [(5, 5, 3, 2), (2,)]
    trainable = FilterBankConv(LowPass(ksize=5, sigmas=[1, 2]), trainable=True)
    trainable.build((None, 8, 8, 3))
    assert len(trainable.trainable_weights) == 2


def test_frozen_bank_passes_gradients_to_what_is_in_front():
    inputs = keras.Input((16, 16, 1))
    x = keras.layers.Conv2D(2, 3, padding="same", name="front")(inputs)
    x = FilterBankConv(Gabor(ksize=11, sigmas=[2.0]), method="fft")(x)
    model = keras.Model(inputs, x)
    data = tf.random.stateless_uniform((2, 16, 16, 1), seed=(2, 3))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(model(data))
    grads = tape.gradient(loss, model.trainable_weights)
    assert len(model.trainable_weights) == 2  # only the front conv
    assert all(g is not None and float(tf.reduce_max(tf.abs(g))) > 0 for g in grads)


def test_internal_noise_only_in_training():
    layer = FilterBankConv(DoG(ksize=7, sigmas=[1.0], gammas=[2.0]), internal_noise=0.5, seed=1)
    x = tf.ones((1, 8, 8, 1))
    np.testing.assert_array_equal(layer(x, training=False).numpy(), layer(x, training=False).numpy())
    diff = layer(x, training=True) - layer(x, training=False)
    assert 0.3 < float(tf.math.reduce_std(diff)) < 0.7


def test_filterbank_conv_rejects_combined_and_bad_method():
    with pytest.raises(BioflowError, match=r"single-stage bank \((.*, )?'DoG', 'Gabor' or 'LowPass'\)"):
        FilterBankConv("gabor")
    with pytest.raises(BioflowError, match="single-stage bank"):
        FilterBankConv(Combined())
    with pytest.raises(BioflowError, match="'Combined' is not a single-stage filter bank"):  # a saved config
        FilterBankConv({"class_name": "Combined", "config": {}})
    with pytest.raises(BioflowError, match="Unknown filter bank class 'os.system'"):
        FilterBankConv({"class_name": "os.system", "config": {}})
    with pytest.raises(BioflowError, match="'auto', 'direct' or 'fft'"):
        FilterBankConv(SMALL_GABOR, method="cuda")


@pytest.mark.parametrize("padding", ["same", "valid"])
def test_filterbank_conv_roundtrip(tmp_path, padding):
    x = np.random.default_rng(0).uniform(size=(2, 24, 24, 2)).astype("float32")
    model, loaded = roundtrip(FilterBankConv(SMALL_GABOR, padding=padding, name="v1_gabor"), x, tmp_path)
    layer = loaded.get_layer("v1_gabor")
    assert layer.filter_bank == SMALL_GABOR and layer.padding == padding and not layer.trainable


@pytest.mark.parametrize("padding, ksize, method", [("same", 5, "direct"), ("same", 13, "fft"),
                                                    ("valid", 3, "direct"), ("valid", 11, "fft")])
def test_one_step_convlstm_equals_keras_convlstm2d(padding, ksize, method):
    x = tf.random.stateless_uniform((3, 20, 20, 2), seed=(7, 8))
    ref = keras.layers.ConvLSTM2D(6, ksize, padding=padding)
    expected = ref(x[:, None])
    ours = OneStepConvLSTM2D(6, ksize, padding=padding, method=method)
    ours.build(x.shape)
    assert [w.shape for w in ours.weights] == [w.shape for w in ref.weights]
    assert [w.name for w in ours.weights] == ["kernel", "recurrent_kernel", "bias"]
    ours.set_weights(ref.get_weights())
    np.testing.assert_allclose(ours(x).numpy(), expected.numpy(), atol=1e-5)


def test_one_step_convlstm_init_matches_keras_forget_bias():
    layer = OneStepConvLSTM2D(3, 3)
    layer.build((None, 8, 8, 1))
    np.testing.assert_array_equal(layer.bias.numpy(), [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0])


def test_one_step_convlstm_roundtrip(tmp_path):
    x = np.random.default_rng(1).uniform(size=(2, 16, 16, 1)).astype("float32")
    roundtrip(OneStepConvLSTM2D(4, 11, method="fft", name="recurrent_convlstm"), x, tmp_path)


def test_blt_block_shares_weights_over_time():
    counts = []
    for steps in (2, 5):
        block = BLTRecurrentBlock(filters=4, kernel_size=3, steps=steps, top_down=True)
        y = block(tf.zeros((1, 9, 9, 3)))
        assert y.shape == (1, 9, 9, 4)
        counts.append(sum(int(np.prod(w.shape)) for w in block.weights))
    # bottom-up 3*3*3*4+4, lateral 3*3*4*4, top-down 3*3*4*4, next bottom-up 3*3*4*4+4, next lateral 3*3*4*4
    assert counts == [112 + 144 + 144 + 148 + 144] * 2


def test_blt_steps_change_the_output():
    x = tf.random.stateless_uniform((1, 8, 8, 2), seed=(1, 1))
    a = BLTRecurrentBlock(filters=3, steps=2, top_down=False)
    b = BLTRecurrentBlock(filters=3, steps=4, top_down=False)
    a(x), b(x)
    b.set_weights(a.get_weights())
    assert float(tf.reduce_max(tf.abs(a(x) - b(x)))) > 1e-4
    with pytest.raises(BioflowError, match="steps"):
        BLTRecurrentBlock(steps=1)


@pytest.mark.parametrize("top_down", [True, False])
def test_blt_roundtrip(tmp_path, top_down):
    x = np.random.default_rng(2).uniform(size=(2, 11, 11, 3)).astype("float32")
    roundtrip(BLTRecurrentBlock(filters=4, steps=3, top_down=top_down, name="recurrent_blt"), x, tmp_path)


#: One example of every Keras layer bioflow registers (keras-hub's run_serialization_test, per layer).
LAYER_EXAMPLES = {
    "bioflow>FilterBankConv": (lambda: FilterBankConv(SMALL_GABOR, name="v1_gabor"), (2, 16, 16, 1)),
    "bioflow>OneStepConvLSTM2D": (lambda: OneStepConvLSTM2D(4, 5, name="recurrent_convlstm"), (2, 12, 12, 2)),
    "bioflow>BLTRecurrentBlock": (lambda: BLTRecurrentBlock(filters=4, steps=2, name="recurrent_blt"), (2, 8, 8, 3)),
    "bioflow>StepOutputs": (lambda: StepOutputs(3, name="step_outputs"), (6, 10)),
    "bioflow>FinalStep": (lambda: FinalStep(name="final_step"), (2, 3, 10)),
}


def _registered(kind):
    from bioflow import config

    config.register()  # every bioflow module imported, so every registration has happened
    return {name for name, obj in keras.saving.get_custom_objects().items()
            if name.startswith("bioflow>") and isinstance(obj, type) and issubclass(obj, kind)}


def test_every_registered_layer_has_a_serialization_example():
    assert _registered(keras.layers.Layer) == set(LAYER_EXAMPLES)


@pytest.mark.parametrize("name", sorted(LAYER_EXAMPLES))
def test_every_registered_layer_round_trips(name, tmp_path):
    make, shape = LAYER_EXAMPLES[name]
    layer = make()
    config = layer.get_config()
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(clone) is type(layer) and clone.get_config() == config
    x = np.random.default_rng(0).uniform(size=shape).astype("float32")
    roundtrip(layer, x, tmp_path)  # equal outputs after a safe-mode .keras load


def test_every_registered_optimizer_round_trips_its_config():
    from bioflow.registry import OPTIMIZERS

    names = _registered(keras.optimizers.Optimizer)
    classes = {cls for _, rules in OPTIMIZERS.items() for cls in (rules.keras2, rules.keras3)}
    assert {f"bioflow>{c.__name__}" for c in classes if c.__module__.startswith("bioflow.")} == names
    for cls in (c for c in classes if c.__module__.startswith("bioflow.")):
        optimizer = cls(learning_rate=0.01)
        clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(optimizer))
        assert type(clone) is cls and clone.get_config() == optimizer.get_config()
