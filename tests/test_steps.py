"""Robustness at every time step: a BLT block read out at every step (shared weights), its training
loss over the steps, the per-step accuracies of an evaluation, their zoo round trip and their report."""
import json

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from click.testing import CliRunner

from bioflow import config, zoo
from bioflow.cli import main
from bioflow.components.recurrent import BLTRecurrence, BLTRecurrentBlock
from bioflow.errors import BioflowError
from bioflow.evaluate import STEP_COLUMNS
from bioflow.model import build_model, step_model
from bioflow.settings import Fit
from bioflow.training.loop import step_mean_loss
from zoo_http import serve

SMALL_SUITE = ["NoiseSuite.noises = ['uniform', 'contrast']",
               "NoiseSuite.levels = {'uniform': [0.0, 0.5, 1.0], 'contrast': [1.0, 0.1, 0.01]}"]


@pytest.fixture(scope="module")
def stepped(tmp_path_factory):
    """``(run, zoo root)``: gin/tiny/vgg16_rib_blt_steps.gin (4 steps, the mean of the steps' losses) at
    tiny/small.gin's size, 4 epochs on 1,024 synthetic images, evaluated on 128 and published as steps@1.0.0.
    Its clean accuracy per step was 0.32, 0.30, 0.30, 0.30 (0.34, 0.36, 0.35, 0.36 with TF_ENABLE_ONEDNN_OPTS=0)."""
    from bioflow.runner import train

    root = tmp_path_factory.mktemp("steps_zoo")
    config.parse(["tiny/vgg16_rib_blt_steps"],
                 ["include 'tiny/small.gin'", "Fit.epochs = 4", "Synthetic.n_train = 1024", "Synthetic.n_test = 128",
                  "train.publish = 'steps'", f"train.zoo = '{root}'"] + SMALL_SUITE)
    return train(workdir=str(tmp_path_factory.mktemp("runs")), label="steps"), root


def _block_weights(block):
    return [w.numpy() for w in block.weights]


def test_each_step_of_the_stacked_block_is_the_block_unrolled_that_far():
    x = tf.constant(np.random.default_rng(0).uniform(size=(3, 10, 10, 2)).astype("float32"))
    every = BLTRecurrentBlock(filters=4, steps=4, readout="every_step")
    states = tf.reshape(every(x), (4, 3, 10, 10, 4)).numpy()
    # Step 1 is the bottom-up drive alone, before any lateral or top-down input.
    np.testing.assert_allclose(states[0], tf.nn.relu(every.bottom_up(x)).numpy(), rtol=1e-6, atol=1e-7)
    for steps in (2, 3, 4):
        last = BLTRecurrentBlock(filters=4, steps=steps)
        last(x)
        last.set_weights(_block_weights(every))
        # The same arithmetic; a tolerance because another CPU may block the stacked batch of 12 images
        # differently from 3, which reorders float32 sums (measured here: equal, oneDNN on and off).
        np.testing.assert_allclose(states[steps - 1], last(x).numpy(), rtol=1e-5, atol=1e-6)


def test_the_network_reads_every_step_out_with_the_last_readouts_weights():
    def network(steps, readout):
        return build_model(input_shape=(32, 32, 1), base="allcnn", filter_bank="gabor",
                           recurrence=BLTRecurrence(filters=4, steps=steps, readout=readout))

    model = network(4, "every_step")
    one_readout = network(4, "last")
    assert model.count_params() == one_readout.count_params()  # the readout adds no weight
    assert model.name.endswith("_blt_steps") and model.output_shape == (None, 10)
    steps = step_model(model)
    assert steps.output_shape == (None, 4, 10) and step_model(one_readout) is None
    x = np.random.default_rng(1).uniform(-1, 1, (2, 32, 32, 1)).astype("float32")
    per_step = steps(x).numpy()
    np.testing.assert_array_equal(model(x).numpy(), per_step[:, -1])
    np.testing.assert_allclose(per_step.sum(-1), 1.0, rtol=1e-5)
    for t in (2, 3, 4):
        unrolled = network(t, "last")
        unrolled.set_weights(model.get_weights())
        # Tolerance as in the block test: a 4x larger batch through the same layers (measured here: at
        # most 1.5e-8 on probabilities, oneDNN on and off).
        np.testing.assert_allclose(per_step[:, t - 1], unrolled(x).numpy(), rtol=1e-4, atol=1e-6)


def test_the_step_loss_is_the_mean_of_every_steps_cross_entropy():
    rng = np.random.default_rng(2)
    per_step = rng.dirichlet(np.ones(5), size=(3, 4)).astype("float32")  # (B=3, steps=4, K=5)
    labels = np.array([0, 3, 4])
    by_hand = -np.log(per_step[np.arange(3)[:, None], np.arange(4)[None, :], labels[:, None]]).mean(1)
    np.testing.assert_allclose(step_mean_loss(tf.constant(labels), tf.constant(per_step)).numpy(), by_hand,
                               rtol=1e-5)


def test_a_step_loss_needs_a_readout_at_every_step():
    from bioflow.runner import _steps_model

    model = build_model(input_shape=(32, 32, 1), base="allcnn", recurrence=BLTRecurrence(filters=4))
    with pytest.raises(BioflowError, match="BLTRecurrence.readout = 'every_step'"):
        _steps_model(model, Fit(step_loss="mean"))
    assert _steps_model(model, Fit()) is None
    with pytest.raises(BioflowError, match="valid step losses are 'last' or 'mean'"):
        Fit(step_loss="sum")
    with pytest.raises(BioflowError, match="BLTRecurrence.readout 'each'; valid readouts are 'every_step' or 'last'"):
        BLTRecurrence(readout="each")


@pytest.mark.slow  # the module's trained 4-step network: 15 s
def test_evaluation_writes_every_steps_accuracy_and_the_last_step_is_the_networks(stepped):
    run, _ = stepped
    steps = pd.read_csv(run / "results" / "steps.csv")
    assert tuple(steps.columns) == STEP_COLUMNS
    assert len(steps) == (1 + 3 + 3) * 4 and sorted(set(steps["Step"])) == [1, 2, 3, 4]
    perturbation = pd.read_csv(run / "results" / "perturbation.csv")
    last = steps[(steps["Step"] == 4) & (steps["Noise"] != "clean")].reset_index(drop=True)
    np.testing.assert_array_equal(last["Accuracy"], perturbation["Accuracy"])
    summary = json.loads((run / "results" / "robustness.json").read_text())
    record = summary["steps"]
    assert record["steps"] == 4 and record["clean_accuracy"]["test"][-1] == summary["clean_accuracy"]
    assert set(record["auc"]) == {"uniform", "contrast"} and len(record["auc"]["contrast"]) == 4
    # Trained on the mean of the steps' losses, every step is above chance (0.1): 0.2 is 12 images of 128
    # below the lowest step measured on either oneDNN path.
    assert min(record["clean_accuracy"]["test"]) > 0.2, record


@pytest.mark.slow  # the module's trained 4-step network: 15 s
def test_a_zoo_round_trip_keeps_the_steps_and_the_per_step_readout(stepped, tmp_path):
    run, root = stepped
    entry = zoo.Zoo(root).path("steps", "1.0.0")
    assert (entry / "results" / "steps.csv").read_bytes() == (run / "results" / "steps.csv").read_bytes()
    remote = tmp_path / "remote"
    zoo.export(remote, root=root)
    fresh = tmp_path / "fresh"
    with serve(remote) as url:
        result = CliRunner().invoke(main, ["zoo", "pull", "steps@1.0.0", "--remote", url, "--zoo", str(fresh)])
        assert result.exit_code == 0, result.output
    pulled = zoo.Zoo(fresh).path("steps", "1.0.0")
    assert (pulled / "results" / "steps.csv").read_bytes() == (run / "results" / "steps.csv").read_bytes()
    model, card = zoo.load("steps", root=fresh)
    original = keras.saving.load_model(run / "model.keras", safe_mode=True)
    x = np.random.default_rng(3).uniform(-2, 2, (4, 32, 32, 1)).astype("float32")
    np.testing.assert_array_equal(step_model(model)(x).numpy(), step_model(original)(x).numpy())
    assert card["architecture"]["recurrence_config"]["config"]["readout"] == "every_step"


@pytest.mark.slow  # the module's trained 4-step network: 15 s
def test_the_report_shows_robustness_against_time_step(stepped, tmp_path):
    _, root = stepped
    out = tmp_path / "report.html"
    result = CliRunner().invoke(main, ["report", "--zoo", str(root), "--all", "--out", str(out)])
    assert result.exit_code == 0, result.output
    curves = pd.read_csv(tmp_path / "report_data" / "step_curves.csv")
    assert set(curves["Condition"]) == {"clean", "uniform", "contrast"}
    assert sorted(set(curves["Step"])) == [1, 2, 3, 4] and (curves["Trials"] == 1).all()
    steps = pd.read_csv(root / "steps" / "1.0.0" / "results" / "steps.csv")
    uniform = steps[(steps["Noise"] == "uniform") & (steps["Step"] == 2)]["Accuracy"].mean()
    row = curves[(curves["Condition"] == "uniform") & (curves["Step"] == 2)].iloc[0]
    assert row["Accuracy"] == pytest.approx(uniform, abs=1e-12)
    assert "Robustness against time step" in out.read_text()


@pytest.mark.slow  # the module's trained 4-step network: 15 s
def test_every_evaluation_set_gets_its_accuracy_per_step(stepped):
    """CIFAR-10G's sets go through the same step read-out as the test set (here two stand-in sets of the
    synthetic images, since the synthetic classes are not CIFAR-10's)."""
    import gin

    from bioflow.data import DataPipeline
    from bioflow.evaluate import evaluation_sets, robustness
    from bioflow.noise import NoiseSuite
    from bioflow.training import rundir

    run, _ = stepped
    config.parse([str(run / "operative_config.gin")], ["Synthetic.n_test = 32"])
    model, info = rundir.load_run(run, False)
    images, labels = evaluation_sets(gin.get_configurable(DataPipeline)(), info["data"], 32)["test"]
    sets = {"test": (images, labels), "silhouettes": (images[::-1].copy(), labels[::-1].copy()),
            "silhouettes_inverted": (1.0 - images, labels)}
    result = robustness(model, info, sets, NoiseSuite(noises=("uniform",), levels={"uniform": (0.0, 1.0)}))
    steps = result.steps
    for name in ("silhouettes", "silhouettes_inverted"):
        rows = steps[steps["Set"] == name]
        assert list(rows["Step"]) == [1, 2, 3, 4] and set(rows["Noise"]) == {"clean"}
        generalisation = result.generalisation.set_index("Set")["Accuracy"][name]
        assert rows["Accuracy"].iloc[-1] == generalisation
        assert result.summary["steps"]["clean_accuracy"][name] == list(rows["Accuracy"])
