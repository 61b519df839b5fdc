"""`bioflow explain`: each method against a model where the answer is known or an independent
computation, the tiny quickstart end to end, and bad input."""
import json

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from click.testing import CliRunner

from bioflow import config
from bioflow.cli import main
from bioflow.components import FilterBankConv, Gabor
from bioflow.errors import BioflowError
from bioflow.explain import methods
from helpers import flip_byte

SIZE = 32
HALF = SIZE // 2


@keras.saving.register_keras_serializable(package="bioflow_tests")
class QuadrantReadout(keras.layers.Layer):
    """Class 0's logit is channel 0's mean over the top-left quadrant; class 1's, channel 1's mean elsewhere."""

    def call(self, maps):
        mask = np.zeros((1, SIZE, SIZE, 1), np.float32)
        mask[:, :HALF, :HALF] = 1.0
        inside = tf.reduce_sum(maps[..., :1] * mask, axis=(1, 2, 3)) / mask.sum()
        outside = tf.reduce_sum(maps[..., 1:2] * (1 - mask), axis=(1, 2, 3)) / (1 - mask).sum()
        return tf.stack([inside, outside], axis=1)


@keras.saving.register_keras_serializable(package="bioflow_tests")
class LeftHalfReadout(keras.layers.Layer):
    """Logits from the mean of each channel over the left half of the image only."""

    def call(self, maps):
        return tf.reduce_mean(maps[:, :, :HALF, :], axis=(1, 2))


def quadrant_model():
    """Channel 0 sees bright pixels, channel 1 dark ones; class 0's evidence is in the top-left quadrant."""
    inputs = keras.Input((SIZE, SIZE, 1))
    conv = keras.layers.Conv2D(2, 1, use_bias=False, activation="relu", name="conv")
    x = conv(inputs)
    conv.set_weights([np.array([1.0, -1.0], np.float32).reshape(1, 1, 1, 2)])
    outputs = keras.layers.Activation("softmax", name="softmax")(QuadrantReadout(name="readout")(x))
    return keras.Model(inputs, outputs)


def quadrant_images(n, seed=0):
    rng = np.random.default_rng(seed)
    images = -rng.uniform(0.2, 1.0, size=(n, SIZE, SIZE, 1)).astype(np.float32)  # dark everywhere …
    images[:, :HALF, :HALF] *= -1  # … except a bright top-left quadrant
    return images


def test_grad_cam_finds_the_quadrant_that_holds_the_class_evidence():
    model, images = quadrant_model(), quadrant_images(6)
    _, heat = methods.grad_cam(model, "conv", images, [0] * 6)
    inside = heat[:, :HALF, :HALF].reshape(6, -1).sum(1) / heat.reshape(6, -1).sum(1)
    assert inside.min() > 0.8, inside
    _, heat = methods.grad_cam(model, "conv", images, [1] * 6)  # class 1's evidence is everywhere else
    inside = heat[:, :HALF, :HALF].reshape(6, -1).sum(1) / heat.reshape(6, -1).sum(1)
    assert inside.max() < 0.2, inside
    with pytest.raises(BioflowError, match=r"Layer 'readout' has no spatial output: its output shape is \(None, 2\)"):
        methods.grad_cam(model, "readout", images, [0] * 6)
    with pytest.raises(BioflowError, match="occlusion needs 1 <= patch <= the image size"):
        methods.occlusion(model, images, [0] * 6, patch=40)


def test_grad_cam_equals_an_independent_computation():
    keras.utils.set_random_seed(1)
    inputs = keras.Input((SIZE, SIZE, 1))
    first = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="first")
    target = keras.layers.Conv2D(6, 3, strides=2, padding="same", activation="relu", name="target")
    head = [keras.layers.Flatten(name="flatten"), keras.layers.Dense(5, activation="softmax", name="predictions")]
    x = target(first(inputs))
    y = x
    for layer in head:
        y = layer(y)
    model = keras.Model(inputs, y)
    rest_in = keras.Input(x.shape[1:])
    rest = rest_in
    for layer in head:
        rest = layer(rest)
    rest = keras.Model(rest_in, rest)
    images = np.random.default_rng(2).normal(size=(3, SIZE, SIZE, 1)).astype(np.float32)
    classes = np.array([0, 3, 4])
    cams, _ = methods.grad_cam(model, "target", images, classes)

    maps = target(first(images)).numpy()
    maps_t = tf.constant(maps)
    with tf.GradientTape() as tape:
        tape.watch(maps_t)
        probs = rest(maps_t)
        score = tf.math.log(tf.gather(probs, classes, batch_dims=1) + 1e-12)
    grads = tape.gradient(score, maps_t).numpy()
    expected = np.maximum((grads.mean(axis=(1, 2), keepdims=True) * maps).sum(-1), 0)
    expected /= expected.reshape(3, -1).max(1)[:, None, None]
    np.testing.assert_allclose(cams, expected, atol=1e-5)


def left_half_model():
    inputs = keras.Input((SIZE, SIZE, 1))
    x = keras.layers.Conv2D(3, 1, activation="relu", name="conv")(inputs)
    return keras.Model(inputs, keras.layers.Activation("softmax")(LeftHalfReadout()(x)))


def test_occlusion_drop_is_zero_where_the_receptive_field_does_not_reach():
    keras.utils.set_random_seed(3)
    model = left_half_model()
    images = np.random.default_rng(4).uniform(size=(5, SIZE, SIZE, 1)).astype(np.float32)
    labels = np.array([0, 1, 2, 0, 1])
    drops, base = methods.occlusion(lambda x: model(x, training=False), images, labels, patch=8, stride=4, fill=0.5)
    assert drops.shape == (5, 7, 7)
    columns = np.arange(7) * 4
    right = columns >= HALF  # patches wholly in the right half
    assert np.abs(drops[:, :, right]).max() < 1e-6  # zero, up to float32 rounding between batch sizes
    assert np.abs(drops[:, :, ~right]).max() > 1e-4
    np.testing.assert_allclose(base, model(images).numpy()[np.arange(5), labels], atol=1e-6)


def test_batched_occlusion_equals_one_prediction_per_occluded_copy():
    keras.utils.set_random_seed(5)
    inputs = keras.Input((SIZE, SIZE, 1))
    x = keras.layers.Conv2D(4, 5, activation="relu")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x)))
    images = np.random.default_rng(6).uniform(size=(2, SIZE, SIZE, 1)).astype(np.float32)
    drops, base = methods.occlusion(lambda b: model(b, training=False), images, [1, 2], patch=8, stride=8, fill=0.3,
                                    max_batch=5)
    for i, label in enumerate([1, 2]):
        for r in range(4):
            for c in range(4):
                occluded = images[i].copy()
                occluded[r * 8:r * 8 + 8, c * 8:c * 8 + 8] = 0.3
                p = model(occluded[None]).numpy()[0, label]
                assert drops[i, r, c] == pytest.approx(base[i] - p, abs=1e-5)


def test_top_k_equals_a_brute_force_argsort():
    keras.utils.set_random_seed(7)
    inputs = keras.Input((SIZE, SIZE, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(x)))
    images = np.random.default_rng(8).normal(size=(50, SIZE, SIZE, 1)).astype(np.float32)
    batches = ((images[s:s + 7], np.arange(s, min(s + 7, 50))) for s in range(0, 50, 7))
    best = methods.top_k(model, "conv", batches, units=[0, 2], k=5)
    means = keras.Model(inputs, x)(images).numpy().mean(axis=(1, 2))
    for unit in (0, 2):
        order = np.argsort(-means[:, unit])[:5]
        assert [i for i, _ in best[unit]] == order.tolist()
        np.testing.assert_allclose([a for _, a in best[unit]], means[order, unit], rtol=1e-5)


def test_kernel_drift_of_a_trained_bank():
    bank = Gabor(ksize=7, sigmas=[2.0], bs=[1.0], thetas=[0.0, 1.0], psis=[0.0])
    layer = FilterBankConv(bank, trainable=True)
    layer.build((None, 16, 16, 1))
    kernels, drift = methods.kernel_drift(layer)
    assert kernels.shape == (2, 7, 7) and np.all(drift < 1e-6)  # at its initialisation
    weights = layer.get_weights()
    moved = weights[0].copy()
    moved[..., 1] *= 1.5  # the second kernel grows by half
    layer.set_weights([moved, weights[1]])
    _, drift = methods.kernel_drift(layer)
    np.testing.assert_allclose(drift, [0.0, 0.5], atol=1e-6)


# -- the tiny quickstart, end to end --------------------------------------------------------------------

def test_explain_a_trained_run_end_to_end(tiny_run):
    result = CliRunner().invoke(main, ["explain", str(tiny_run), "--images", "3", "--noise", "uniform",
                                       "--level", "0.5"])
    assert result.exit_code == 0, result.output
    folder = tiny_run / "results" / "explain"
    names = {p.name for p in folder.iterdir()}
    last = methods.last_conv_layer(keras.saving.load_model(tiny_run / "model.keras"))
    assert {f"gradcam_{last}.png", "gradcam.csv", "occlusion.png", "occlusion.csv", "activations_v1_gabor.png",
            "activations.csv", "topk.png", "topk.csv", "kernels_v1_gabor.png", "kernels.csv",
            "explain.json"} <= names
    gradcam = pd.read_csv(folder / "gradcam.csv")
    levels = sorted(set(gradcam.loc[gradcam["Noise"] == "uniform", "Level"]))
    assert levels == pytest.approx(np.linspace(0, 1, 11))
    assert len(gradcam) == 3 * (1 + 11) * 2  # images × (clean + levels) × (predicted, true)
    assert gradcam["CentreMass"].dropna().between(0, 1).all()
    occlusion = pd.read_csv(folder / "occlusion.csv")
    assert len(occlusion) == 3 * 7 * 7  # 32x32, patch 8, stride 4
    topk = pd.read_csv(folder / "topk.csv")
    assert list(topk.groupby("Unit").size()) == [9, 9, 9, 9]
    assert (topk.groupby("Unit")["Activation"].apply(lambda a: a.is_monotonic_decreasing)).all()
    kernels = pd.read_csv(folder / "kernels.csv")
    assert len(kernels) == 24 and kernels["RelativeL2"].max() < 1e-6  # the quickstart's bank is frozen
    summary = json.loads((folder / "explain.json").read_text())
    assert summary["noise"] == "uniform" and summary["level"] == 0.5 and summary["n_images"] == 3
    png = tf.io.decode_png(tf.io.read_file(str(folder / "occlusion.png"))).numpy()
    assert png.shape[0] >= 3 * 64 and png.shape[2] == 3
    # A new evaluation keeps the explanations.
    config.parse([str(tiny_run / "operative_config.gin")], ["NoiseSuite.noises = ['invert']"])
    from bioflow.evaluate import evaluate

    evaluate(tiny_run, n_images=8)
    assert (folder / "explain.json").is_file()


def test_explain_refuses_bad_input_and_writes_nothing(tiny_run, zoo_copy, tmp_path, monkeypatch):
    def run(*args):
        return CliRunner().invoke(main, ["explain", *map(str, args)])

    result = run(tiny_run, "--layer", "nope")
    assert result.exit_code == 2 and "Unknown layer 'nope'; the model's convolutional layers are" in result.output
    assert "'v1_gabor'" in result.output and "block5_conv3" in result.output
    result = run(tiny_run, "--layer", "fc1")
    assert result.exit_code == 2
    assert "Layer 'fc1' has no spatial output: its output shape is (None, 16)" in result.output
    result = run(tmp_path)
    assert result.exit_code == 2 and "operative_config.gin" in result.output
    (tmp_path / "operative_config.gin").write_text("")
    result = run(tmp_path)
    assert result.exit_code == 2 and "has no model.keras" in result.output
    flip_byte(zoo_copy / "tiny" / "1.0.0" / "model.keras")
    result = run("--entry", "tiny", "--zoo", zoo_copy, "--out", tmp_path / "out")
    assert result.exit_code == 2 and "does not match the sha256 in its card" in result.output
    assert not (tmp_path / "out").exists()
    result = run(tiny_run, "--noise", "fog")
    assert result.exit_code == 2 and "Unknown noise 'fog'" in result.output
    for binding, message in (("ExplainMethods.k = 0", "ExplainMethods.k must be a positive integer, got 0"),
                             ("explain.seed = 'x'", "explain.seed must be an integer, got 'x'"),
                             ("ExplainMethods.units = []", "ExplainMethods.units must be a non-empty list")):
        result = run(tiny_run, "--gin-param", binding)
        assert result.exit_code == 2 and message in result.output, result.output
    assert not (tiny_run / "results" / "explain").exists()

    import bioflow.explain.run as explain_run

    real_write, written = explain_run.write, []

    def failing(folder, result):  # every file written into the temporary folder, then a failure
        real_write(folder, result)
        written.extend(folder.iterdir())
        raise RuntimeError("simulated failure")

    monkeypatch.setattr(explain_run, "write", failing)
    result = run(tiny_run, "--images", "100000")
    assert isinstance(result.exception, RuntimeError) and len(written) > 5
    assert "Explaining 64 images: the test set has only 64 (--images 100000)" in result.output
    assert not (tiny_run / "results" / "explain").exists()
    assert not list((tiny_run / "results").glob(".explain.*"))


def test_explain_a_zoo_entry_into_out(tiny_entry, tmp_path):
    _, root = tiny_entry
    result = CliRunner().invoke(main, ["explain", "--entry", "tiny", "--zoo", str(root), "--out",
                                       str(tmp_path / "out"), "--images", "2"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "explain" / "gradcam.csv").is_file()


def test_explain_attack_shows_the_attacked_images_beside_the_clean_ones(tiny_run):
    result = CliRunner().invoke(main, ["explain", str(tiny_run), "--images", "16", "--attack", "pgd"])
    assert result.exit_code == 0, result.output
    folder = tiny_run / "results" / "explain"
    table = pd.read_csv(folder / "attack.csv")
    assert len(table) == 16 and set(table["Space"]) == {"source"} and set(table["EOT"]) == {1}
    assert (table["Epsilon"] == 8 / 255).all()
    # The perturbation stays in the ball (up to float32 rounding: 1e-6 relative).
    assert table["PerturbationNorm"].max() <= 8 / 255 * (1 + 1e-6) and table["PerturbationNorm"].min() > 0
    record = json.loads((folder / "explain.json").read_text())["attack"]
    assert record["attack"] == "pgd" and record["steps"] == 10 and record["layer"] == table["Layer"][0]
    assert record["attacked_accuracy"] == pytest.approx(np.mean(table["AttackedPredicted"] == table["Label"]))
    assert record["clean_accuracy"] == pytest.approx(np.mean(table["CleanPredicted"] == table["Label"]))
    png = tf.io.decode_png(tf.io.read_file(str(folder / "attack.png"))).numpy()
    assert png.shape[0] >= 16 * 64 and png.shape[1] >= 5 * 64  # clean, attacked, perturbation, 2 Grad-CAMs
    # The same attack, start and images as the evaluation's PGD at 8/255: the same accuracy, up to one
    # image (the explanation predicts through another graph, which may flip a near-tie).
    result = CliRunner().invoke(main, ["evaluate", str(tiny_run), "--attacks", "quick", "--n-images", "16"])
    assert result.exit_code == 0, result.output
    adversarial = pd.read_csv(tiny_run / "results" / "adversarial.csv")
    row = adversarial[(adversarial["Attack"] == "pgd") & (adversarial["Epsilon"] == 8 / 255)].iloc[0]
    assert abs(row["Accuracy"] - record["attacked_accuracy"]) <= 1 / 16 + 1e-9
    for args, message in ((["--epsilon", "0.1"], "explain.epsilon needs explain.attack"),
                          (["--attack", "pgd", "--epsilon", "-1"], "explain.epsilon must be"),
                          (["--gin-param", "explain.attack = @Attack()", "--gin-param", "Attack.kind = 'autoattack'"],
                           "AutoAttack is an evaluation")):
        result = CliRunner().invoke(main, ["explain", str(tiny_run), *args])
        assert result.exit_code == 2 and message in result.output, result.output
