"""Common corruptions in an evaluation: the metrics by hand, the computed suite through the CLI,
CIFAR-10-C through TFDS's mock data end to end, prepared from a copy of its arrays, and offline."""
import json

import numpy as np
import pandas as pd
import pytest
import tensorflow_datasets as tfds
from click.testing import CliRunner

from bioflow import config, metrics
from bioflow.cli import main
from bioflow.common_corruptions import COLUMNS, CorruptionSuite
from bioflow.data import cifar10c
from bioflow.errors import BioflowError


def _table(errors):
    """``{corruption: [error at severity 1, 2, …]}`` → rows of accuracies."""
    return pd.DataFrame([dict(Corruption=c, Severity=s + 1, Accuracy=1 - e) for c, es in errors.items()
                         for s, e in enumerate(es)])


def test_the_corruption_metrics_are_their_definitions():
    model = _table({"fog": [0.2, 0.4], "blur": [0.1, 0.3]})
    baseline = _table({"fog": [0.4, 0.6], "blur": [0.2, 0.2]})
    summary = metrics.corruption_summary(model)
    assert summary["corruption_error"] == pytest.approx({"fog": 0.3, "blur": 0.2})
    assert summary["mean_corruption_error"] == pytest.approx(0.25)
    assert summary["mean_accuracy"] == pytest.approx(1 - (0.2 + 0.4 + 0.1 + 0.3) / 4)
    found = metrics.mce(model, baseline, clean=0.95, baseline_clean=0.9)
    assert found["ce"] == pytest.approx({"fog": 0.6 / 1.0, "blur": 0.4 / 0.4})
    assert found["mce"] == pytest.approx((0.6 + 1.0) / 2)
    # relative: Σ (E − E_clean) over Σ (E_base − E_base,clean), clean errors 0.05 and 0.1
    assert found["relative_ce"] == pytest.approx({"fog": (0.15 + 0.35) / (0.3 + 0.5), "blur": 0.3 / 0.2})
    assert found["relative_mce"] == pytest.approx(((0.5 / 0.8) + 1.5) / 2)
    with pytest.raises(BioflowError, match="share no corruption"):
        metrics.mce(model, _table({"snow": [0.5, 0.5]}))


@pytest.mark.parametrize("kwargs, message", [
    (dict(source="imagenet-c"), "Unknown CorruptionSuite.source 'imagenet-c'"),
    (dict(corruptions=["frost"]), "Unknown corruption 'frost' for source 'computed' (six bundled frost"),
    (dict(corruptions=["fogg"]), "valid corruptions are"),
    (dict(severities=[0, 6]), "CorruptionSuite.severities must be a non-empty list of distinct severities 1 to 5"),
    (dict(severities=[2, 2]), "distinct severities"),
    (dict(corruptions=["fog", "fog"]), "names a corruption twice"),
    (dict(copy=3), "CorruptionSuite.copy must be a folder or None"),
])
def test_corruption_suite_settings_are_checked(kwargs, message):
    with pytest.raises(BioflowError, match=message.replace("(", r"\(")):
        CorruptionSuite(**kwargs)
    assert CorruptionSuite(source="cifar10-c", corruptions=["frost"]).names == ("frost",)
    assert len(CorruptionSuite().names) == 12 and len(CorruptionSuite(source="cifar10-c").names) == 15


def test_evaluate_corruptions_computed_writes_the_table_and_its_summary(tiny_run):
    result = CliRunner().invoke(main, ["evaluate", str(tiny_run), "--n-images", "16", "--corruptions", "computed",
                                       "--gin-param", "CorruptionSuite.corruptions = ['contrast', 'pixelate']",
                                       "--gin-param", "NoiseSuite.noises = ['invert']"])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tiny_run / "results" / "corruptions.csv")
    assert tuple(table.columns) == COLUMNS and len(table) == 10
    assert list(table["Corruption"].unique()) == ["contrast", "pixelate"] and set(table["Source"]) == {"computed"}
    summary = json.loads((tiny_run / "results" / "robustness.json").read_text())["corruptions"]
    by_hand = {c: float(np.mean(1 - g["Accuracy"])) for c, g in table.groupby("Corruption")}
    assert summary["corruption_error"] == pytest.approx(by_hand)
    assert summary["mean_corruption_error"] == pytest.approx(np.mean(list(by_hand.values())))
    assert summary["mean_accuracy"] == pytest.approx(table["Accuracy"].mean()) and summary["n_images"] == 16
    assert table["Accuracy"].between(0, 1).all() and (table["Loss"] > 0).all()


def test_cifar10_c_refuses_a_network_not_trained_on_cifar10_classes(tiny_run):
    before = (tiny_run / "results" / "robustness.json").read_bytes()
    result = CliRunner().invoke(main, ["evaluate", str(tiny_run), "--corruptions", "cifar10-c"])
    assert result.exit_code == 2 and "evaluate it with --corruptions computed instead" in result.output
    assert (tiny_run / "results" / "robustness.json").read_bytes() == before  # refused before any work


def test_mock_cifar10_c_evaluates_end_to_end(tmp_path):
    """A tiny network trained on TFDS's mock CIFAR-10, evaluated on mock CIFAR-10-C through the real loader."""
    from bioflow.evaluate import evaluate
    from bioflow.runner import train

    with tfds.testing.mock_data(num_examples=64):
        config.parse(["quickstart"], ["include 'tiny/small.gin'", "include 'data/cifar10.gin'",
                                      "build_model.input_shape = (32, 32, 1)", "Fit.epochs = 1",
                                      "Fit.batch_size = 16", "train.skip_test = True"])
        run = train(workdir=str(tmp_path / "runs"), label="c")
        suite = CorruptionSuite(source="cifar10-c", corruptions=("glass_blur", "fog"), severities=(1, 3))
        summary = evaluate(run, suite=_one_noise(), corruptions=suite, n_images=16)
    table = pd.read_csv(run / "results" / "corruptions.csv")
    assert list(zip(table["Corruption"], table["Severity"])) == [("glass_blur", 1), ("glass_blur", 3), ("fog", 1),
                                                                 ("fog", 3)]
    record = summary["corruptions"]
    assert record["source"] == "cifar10-c" and record["n_images"] == 16
    assert record["mean_accuracy"] == pytest.approx(table["Accuracy"].mean())
    fog = table[table["Corruption"] == "fog"]["Accuracy"]
    assert record["corruption_error"]["fog"] == pytest.approx(1 - fog.mean())


def _one_noise():
    from bioflow.noise import NoiseSuite

    return NoiseSuite(noises=("invert",))


def _copy(folder, corruption="gaussian_noise", n=6):
    """A CIFAR-10-C copy of ``n`` images per severity: severity s's images are all grey 40·s."""
    root = folder / "CIFAR-10-C"
    root.mkdir(parents=True)
    labels = np.tile(np.arange(n) % 10, 5).astype(np.uint8)
    images = np.concatenate([np.full((n, 32, 32, 3), 40 * s, np.uint8) for s in range(1, 6)])
    np.save(root / "labels.npy", labels)
    np.save(root / f"{corruption}.npy", images)
    return folder


def test_cifar10_c_is_prepared_from_a_copy_of_its_arrays_then_read_as_prepared(tmp_path):
    copy = _copy(tmp_path / "copy", "glass_blur")  # TFDS calls it frosted_glass_blur
    data_dir = tmp_path / "tfds"
    images = list(cifar10c.load("glass_blur", 3, data_dir=str(data_dir), copy=str(copy)).as_numpy_iterator())
    assert len(images) == 6 and all((x == 120).all() and x.shape == (32, 32, 3) for x, _ in images)
    assert sorted(int(y) for _, y in images) == [0, 1, 2, 3, 4, 5]
    assert (data_dir / "cifar10_corrupted" / "frosted_glass_blur_3").is_dir()
    again = list(cifar10c.load("glass_blur", 3, data_dir=str(data_dir), download=False).as_numpy_iterator())
    assert len(again) == 6  # prepared: no copy needed any more
    cifar10c.check_available(["glass_blur"], [3], str(data_dir), download=False)
    with pytest.raises(BioflowError, match="lacks fog.npy"):
        cifar10c.check_available(["glass_blur", "fog"], [1], str(tmp_path / "other"), copy=str(copy))


def test_a_hostile_cifar10_c_copy_is_refused_before_it_is_read(tmp_path):
    copy = _copy(tmp_path / "copy", "fog")
    root = copy / "CIFAR-10-C"
    np.save(root / "fog.npy", np.array([{"x": 1}] * 30, dtype=object), allow_pickle=True)  # a pickle
    with pytest.raises(BioflowError, match="no pickled objects"):
        cifar10c.check_available(["fog"], [1], str(tmp_path / "tfds"), copy=str(copy))
    np.save(root / "fog.npy", np.zeros((30, 16, 16, 3), np.uint8))  # the wrong size
    with pytest.raises(BioflowError, match=r"must hold 30 uint8 images of 32x32x3 .*shape \(30, 16, 16, 3\)"):
        cifar10c.load("fog", 1, data_dir=str(tmp_path / "tfds"), copy=str(copy))
    np.save(root / "labels.npy", np.zeros(7, np.float32))
    with pytest.raises(BioflowError, match="labels.npy must hold integer labels"):
        cifar10c.check_copy(copy, ["fog"])
    assert not (tmp_path / "tfds" / "cifar10_corrupted").exists()  # nothing was prepared


def test_cifar10_c_offline_without_a_copy_fails_before_any_work_naming_the_option(tmp_path):
    with pytest.raises(BioflowError, match="--cifar10-c DIR"):
        cifar10c.check_available(["fog"], [1], str(tmp_path), download=False)
    with pytest.raises(BioflowError, match=r"Cannot download CIFAR-10-C .*--cifar10-c DIR"):
        cifar10c.check_available(["fog"], [1], str(tmp_path))


def test_computed_corruptions_run_on_every_evaluation_set_as_noises(tiny_run):
    """In a noise suite (``NoiseSuite.noises = ['c_fog', …]``), the corruptions run on CIFAR-10G's sets too
    (here two stand-in sets of the synthetic images, whose classes are not CIFAR-10's)."""
    import gin

    from bioflow.data import DataPipeline
    from bioflow.evaluate import evaluation_sets, robustness
    from bioflow.noise import NoiseSuite
    from bioflow.training import rundir

    config.parse([str(tiny_run / "operative_config.gin")], ["Synthetic.n_test = 16"])
    model, info = rundir.load_run(tiny_run, False)
    images, labels = evaluation_sets(gin.get_configurable(DataPipeline)(), info["data"], 32)["test"]
    sets = {"test": (images, labels), "silhouettes": (1.0 - images, labels)}
    suite = NoiseSuite(noises=("c_fog", "c_pixelate"), levels={"c_fog": (0, 3), "c_pixelate": (0, 5)})
    result = robustness(model, info, sets, suite, perturb_generalisation=True)
    table = result.perturbation
    assert len(table) == 2 * 2 * 2 and set(table["Set"]) == {"test", "silhouettes"}
    clean = table[(table["Set"] == "silhouettes") & (table["Level"] == 0)]["Accuracy"]
    assert (clean == result.generalisation.set_index("Set")["Accuracy"]["silhouettes"]).all()  # severity 0: clean
