"""Model assembly: parameter counts, layer names, serialisation, pretrained weights, errors."""
import keras
import numpy as np
import pytest

from bioflow import architecture, config
from bioflow.bases import imagenet
from bioflow.components import Combined, Gabor, RetinalBottleneck
from bioflow.errors import BioflowError
from bioflow.model import build_model
from helpers import GIN_DIR, SEED_COUNTS, TINY_GIN


@pytest.mark.parametrize("name", sorted(SEED_COUNTS))
def test_seed_network_parameter_counts(name):
    config.parse([str(GIN_DIR / f"{name}.gin")])
    model = build_model()
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    frozen = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    assert (trainable, frozen) == SEED_COUNTS[name]
    assert model.input_shape == (None, 224, 224, 1) and model.output_shape == (None, 10)
    recorded = architecture.of(model).parameters  # what run.json and the zoo card carry
    assert (recorded["trainable_params"], recorded["non_trainable_params"]) == SEED_COUNTS[name]


def test_vgg16_rib_rc_layer_names_show_the_biology():
    config.parse(["vgg16_rib_rc"])
    names = [layer.name for layer in build_model(input_shape=(32, 32, 1)).layers]
    assert names[:6] == ["image", "retina_conv1", "retina_conv2", "retina_conv3", "recurrent_convlstm",
                         "block1_conv2"]


def test_combined_bank_layers_in_order():
    model = build_model(input_shape=(32, 32, 1), filter_bank="combined-trim", base="allcnn")
    names = [layer.name for layer in model.layers]
    assert names[1:3] == ["v1_dog", "v1_gabor"]
    assert model.get_layer("v1_gabor").kernel.shape == (31, 31, 32, 24)


def test_original_keeps_the_base_first_conv():
    model = build_model(input_shape=(32, 32, 1), filter_bank=None)
    assert model.get_layer("block1_conv1").kernel.shape == (3, 3, 1, 64)


def test_rib_bank_frozen_by_default_and_trainable_on_request():
    frozen = build_model(input_shape=(32, 32, 1), base="allcnn", filter_bank=Gabor(ksize=9), bottleneck=2)
    assert not frozen.get_layer("v1_gabor").trainable
    assert frozen.get_layer("v1_gabor").kernel.shape == (9, 9, 2, 24)
    trained = build_model(input_shape=(32, 32, 1), base="allcnn", filter_bank=Gabor(ksize=9),
                          bottleneck=RetinalBottleneck(width=4, train_filter_bank=True))
    assert trained.get_layer("v1_gabor").trainable
    assert trained.get_layer("retina_conv3").output.shape[-1] == 4


def test_combined_bank_behind_the_bottleneck_trains_only_its_dog_stage():
    model = build_model(input_shape=(32, 32, 1), base="allcnn", filter_bank=Combined(variant="small"),
                        bottleneck=RetinalBottleneck(width=2, train_filter_bank=True))
    assert model.get_layer("v1_dog").trainable and not model.get_layer("v1_gabor").trainable
    trainable = {w.path.split("/")[0] for w in model.trainable_weights}
    assert "v1_dog" in trainable and "v1_gabor" not in trainable


def test_internal_noise_follows_the_faithful_convlstm():
    model = build_model(input_shape=(32, 32, 1), base="allcnn", filter_bank=Gabor(ksize=7), recurrence="convlstm",
                        internal_noise=0.5)
    names = [layer.name for layer in model.layers]
    assert names.index("recurrent_convlstm") + 1 == names.index("recurrent_convlstm_noise")
    assert model.get_layer("recurrent_convlstm_noise").stddev == 0.5
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 1)).astype("float32")
    np.testing.assert_array_equal(model(x, training=False), model(x, training=False))  # noise only in training
    assert not np.allclose(model(x, training=True), model(x, training=False))


def test_allcnn_input_dropout_has_its_own_flag_and_weight_decay_reaches_the_first_conv():
    import gin
    gin.parse_config(["allcnn.width = 0.125", "allcnn.dropout = True", "allcnn.weight_decay = 1e-3"])
    model = build_model(input_shape=(32, 32, 1), base="allcnn")
    names = [layer.name for layer in model.layers]
    assert "dropout0" not in names and {"dropout1", "dropout2"} <= set(names)
    assert len(model.losses) == 2 * 9  # kernel and bias L2 on all nine convolutions
    conv1 = model.get_layer("conv1")
    expected = 1e-3 / 2 * (np.square(conv1.kernel.numpy()).sum() + np.square(conv1.bias.numpy()).sum())
    assert float(conv1.losses[0] + conv1.losses[1]) == pytest.approx(expected, rel=1e-5)
    gin.parse_config(["allcnn.input_dropout = True"])
    assert build_model(input_shape=(32, 32, 1), base="allcnn").layers[1].name == "dropout0"


def test_blt_keeps_the_frozen_bank():
    model = build_model(input_shape=(32, 32, 1), base="allcnn", filter_bank="gabor", recurrence="blt",
                        bottleneck=2)
    names = [layer.name for layer in model.layers]
    assert names.index("v1_gabor") + 1 == names.index("recurrent_blt")
    assert not model.get_layer("v1_gabor").trainable


@pytest.mark.parametrize("kwargs", [
    dict(base="vgg16", filter_bank="gabor", bottleneck=2, recurrence="convlstm"),
    dict(base="allcnn", filter_bank=Combined(variant="small"), recurrence="blt", internal_noise=0.1),
    dict(base="resnet50", filter_bank="dog", input_shape=(64, 64, 1)),
    dict(base="allcnn", filter_bank=Gabor(ksize=7), recurrence="convlstm", internal_noise=0.1),
])
def test_assembled_network_keras_roundtrip(tmp_path, kwargs):
    config.parse([TINY_GIN])
    kwargs.setdefault("input_shape", (32, 32, 1))
    model = build_model(**kwargs)
    x = np.random.default_rng(0).normal(size=(2,) + kwargs["input_shape"]).astype("float32")
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]


def test_pretrained_rgb_weights_map_to_grayscale(tmp_path):
    rgb = keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
    path = tmp_path / "vgg16_notop.h5"
    imagenet.write_applications_weights(rgb, path)
    gray = build_model(input_shape=(32, 32, 1), base="vgg16", weights=str(path))
    np.testing.assert_allclose(gray.get_layer("block1_conv1").kernel.numpy(),
                               rgb.get_layer("block1_conv1").kernel.numpy().sum(axis=2, keepdims=True), rtol=1e-6)
    np.testing.assert_array_equal(gray.get_layer("block3_conv2").kernel.numpy(),
                                  rgb.get_layer("block3_conv2").kernel.numpy())
    # On a gray image (R = G = B) the adapted first layer gives the RGB network's activations.
    img = np.random.default_rng(0).uniform(size=(1, 32, 32, 1)).astype("float32")
    probe_rgb = keras.Model(rgb.input, rgb.get_layer("block2_conv1").output)
    probe_gray = keras.Model(gray.input, gray.get_layer("block2_conv1").output)
    np.testing.assert_allclose(probe_gray(img).numpy(), probe_rgb(np.repeat(img, 3, axis=-1)).numpy(),
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("base, application, first", [("vgg16", "VGG16", "block1_conv1"),
                                                      ("resnet50", "ResNet50", "conv1_conv")])
def test_folded_normalisation_gives_the_keras_rgb_first_layer_on_gray_images(tmp_path, base, application, first):
    import gin
    rgb = getattr(keras.applications, application)(weights=None, include_top=False, input_shape=(64, 64, 3))
    bias = rgb.get_layer(first).bias
    bias.assign(np.random.default_rng(1).normal(size=bias.shape).astype("float32"))  # not all zero
    path = tmp_path / "notop.h5"
    imagenet.write_applications_weights(rgb, path)
    gin.parse_config(["resnet50.width = 1.0", "vgg16.width = 1.0"])
    gray = build_model(input_shape=(64, 64, 1), base=base, weights=str(path))
    mean, std = 122.6, 61.0
    imagenet.fold_input_normalisation(gray, str(path), mean, std)
    imagenet.fold_input_normalisation(gray, str(path), mean, std)  # idempotent
    lum = np.random.default_rng(0).uniform(0, 255, size=(2, 64, 64, 1)).astype("float32")
    ours = keras.Model(gray.input, gray.get_layer(first).output)((lum - mean) / std).numpy()
    preprocess = getattr(keras.applications, base).preprocess_input
    theirs = keras.Model(rgb.input, rgb.get_layer(first).output)(preprocess(np.repeat(lum, 3, axis=-1))).numpy()
    m = 4 if base == "resnet50" else 1  # the kernel reaches the zero padding only within m pixels of the edge
    inner = (slice(None), slice(m, -m), slice(m, -m))
    np.testing.assert_allclose(ours[inner], theirs[inner], rtol=1e-4, atol=1e-4 * np.abs(theirs).max())
    assert np.abs(theirs[inner]).max() > 10  # at the pretrained scale, not 1/60 of it


def test_pretrained_resnet_weights_load_by_name(tmp_path):
    rgb = keras.applications.ResNet50(weights=None, include_top=False, input_shape=(64, 64, 3))
    path = tmp_path / "resnet50_notop.h5"
    imagenet.write_applications_weights(rgb, path)
    gray = build_model(input_shape=(64, 64, 1), base="resnet50", weights=str(path))
    report = imagenet.load_pretrained_weights(gray, str(path))
    assert report["adapted"] == ["conv1_conv"] and "conv5_block3_3_bn" in report["loaded"]
    np.testing.assert_array_equal(gray.get_layer("conv4_block2_2_conv").kernel.numpy(),
                                  rgb.get_layer("conv4_block2_2_conv").kernel.numpy())


def test_imagenet_download_failure_is_clear(monkeypatch, tmp_path):
    monkeypatch.setitem(imagenet.IMAGENET_WEIGHTS, "vgg16", ("http://127.0.0.1:9/bioflow_test_missing.h5", "0" * 32))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(BioflowError, match="Could not download the ImageNet weights of 'vgg16'"):
        build_model(input_shape=(32, 32, 1), weights="imagenet")


@pytest.mark.parametrize("kwargs, message", [
    (dict(base="vgg17"), "'allcnn', 'resnet50', 'vgg16' or 'vgg19'"),
    (dict(filter_bank="gabour"), "valid filter banks are"),
    (dict(recurrence="lstm"), "'blt' or 'convlstm'"),
    (dict(input_shape=(16, 16, 1)), "16x16 pixels is too small for base 'vgg16'"),
    (dict(input_shape=(32, 32, 1), base="resnet50", filter_bank="gabor"), "too small for 63x63 kernels"),
    (dict(filter_bank="gabor", weights="imagenet"), "only available for Original"),
    (dict(base="allcnn", weights="imagenet"), "No ImageNet weights for base 'allcnn'"),
    (dict(classes=1), "classes"),
])
def test_bad_input_errors(kwargs, message):
    with pytest.raises(BioflowError, match=None) as info:
        build_model(**kwargs)
    assert message in str(info.value)
