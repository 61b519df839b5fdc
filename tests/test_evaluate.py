"""Robustness evaluation end to end on a tiny trained run, and the metrics helpers."""
import dataclasses
import json

import gin
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from click.testing import CliRunner

from bioflow import config, metrics, noise, settings
from bioflow.cli import main
from bioflow.data import DataPipeline
from bioflow.data.sources import CIFAR10_CLASSES
from bioflow.errors import BioflowError
from bioflow.evaluate import evaluate
from bioflow.runner import train
from bioflow.settings import Outputs
from helpers import CIFAR10G, TINY_TRAIN, needs_cifar10g

SMALL_SUITE = {"uniform": [0.0, 0.5, 1.0], "contrast": [1.0, 0.1, 0.01], "rotation": [0, 90, 180, 270]}


def small_suite():
    return noise.NoiseSuite(noises=list(SMALL_SUITE), levels=SMALL_SUITE)


def test_auc_ratio_and_confidence_interval():
    assert metrics.auc([0, 1, 2], [1.0, 0.5, 0.0]) == pytest.approx(1.0)
    assert metrics.auc([100, 10, 1], [0.1, 0.5, 0.9]) == pytest.approx(9 * 0.7 + 90 * 0.3)
    aucs = pd.DataFrame(dict(Model=["a", "a", "ref", "ref"], Noise=["n", "n", "n", "n"], AUC=[1.0, 3.0, 4.0, 4.0]))
    ratio = metrics.ratio_to_reference(aucs, "ref")
    assert ratio.set_index("Model").loc["a", "Ratio"] == pytest.approx(0.5)
    assert metrics.mean_ci([0.5]) == (0.5, 0.0)
    mean, half = metrics.mean_ci([1.0, 2.0, 3.0])
    assert mean == 2.0 and half == pytest.approx(4.303 * 1.0 / np.sqrt(3), rel=1e-4)  # t(0.975, 2 df) = 4.3027
    values = np.arange(50.0)  # beyond 30 degrees of freedom: t(0.95, 49 df) = 1.6766, not the normal 1.645
    assert metrics.mean_ci(values, 0.90)[1] == pytest.approx(1.6766 * values.std(ddof=1) / np.sqrt(50), rel=1e-4)
    with pytest.raises(BioflowError, match="between 0 and 1"):
        metrics.mean_ci(values, 95)
    with pytest.raises(BioflowError, match="Reference model 'x'"):
        metrics.ratio_to_reference(aucs, "x")


#: The result tables' columns as docs/science.md ("Results") gives them, the published CSVs' layout.
PERTURBATION_LAYOUT = tuple("Model, Convolution, Base, Weights, Trial, Seed, Set, Noise, LI, Level, Loss, Accuracy"
                            .split(", "))
GENERALISATION_LAYOUT = tuple("Model, Convolution, Base, Weights, Trial, Seed, Set, Type, Inverted, Loss, Accuracy"
                              .split(", "))


def test_end_to_end_tables(tiny_run):
    config.parse([str(tiny_run / "operative_config.gin")])
    summary = evaluate(tiny_run, suite=small_suite(), n_images=40, outputs=Outputs(predictions=True, images=True))
    results = tiny_run / "results"
    pert = pd.read_csv(results / "perturbation.csv")
    assert tuple(pert.columns) == PERTURBATION_LAYOUT
    assert len(pert) == 10 and set(pert["Noise"]) == set(SMALL_SUITE) and set(pert["Set"]) == {"test"}
    assert (pert["Model"] == "vgg16_gabor").all() and (pert["Convolution"] == "gabor").all()
    assert (pert["Base"] == "vgg16").all() and (pert["Trial"] == 1).all() and (pert["Seed"] == 42).all()
    assert pert["Accuracy"].between(0, 1).all()
    # Level 0 of uniform and level 1 of contrast are the clean images.
    clean = summary["clean_accuracy"]
    assert pert.query("Noise == 'uniform' and LI == 0")["Accuracy"].item() == pytest.approx(clean)
    assert pert.query("Noise == 'contrast' and LI == 0")["Accuracy"].item() == pytest.approx(clean)
    gen = pd.read_csv(results / "generalisation.csv")
    assert tuple(gen.columns) == GENERALISATION_LAYOUT and len(gen) == 0
    robust = json.loads((results / "robustness.json").read_text())
    uniform = pert[pert["Noise"] == "uniform"]
    assert robust["auc"]["uniform"] == pytest.approx(metrics.auc(uniform["Level"], uniform["Accuracy"]))
    assert robust["clean_accuracy"] == clean and robust["n_images"] == 40
    preds = pd.read_csv(results / "predictions.csv")
    assert len(preds) == 40 * (1 + 10) and {"p0", "p9", "Predicted", "True", "Correct"} <= set(preds.columns)
    assert sorted(p.name for p in (results / "images").iterdir()) == [f"{n}.png" for n in sorted(SMALL_SUITE)]
    assert not list(tiny_run.glob(".results.*"))


def test_save_all_images_writes_every_perturbed_image(tiny_run):
    config.parse([str(tiny_run / "operative_config.gin")])
    suite = noise.NoiseSuite(noises=["invert", "uniform"], levels={"invert": [0, 1], "uniform": [0.0, 0.5]})
    evaluate(tiny_run, suite=suite, n_images=7, batch_size=4, outputs=Outputs(images="all"), seed=3)
    images = tiny_run / "results" / "images"
    inverted = sorted(p.name for p in (images / "test" / "invert").iterdir())
    assert inverted == [f"L{li:02d}_{lv}_{i:05d}.png" for li, lv in enumerate((0, 1)) for i in range(7)]
    assert len(list((images / "test" / "uniform").iterdir())) == 14
    assert (images / "invert.png").is_file()  # the grid as well

    def png(path):
        return tf.io.decode_png(tf.io.read_file(str(path))).numpy()[..., 0].astype(np.int32)

    clean = png(images / "test" / "invert" / "L00_0_00003.png")
    flipped = png(images / "test" / "invert" / "L01_1_00003.png")
    np.testing.assert_array_equal(clean + flipped, 255)  # image 3, inverted
    noisy = png(images / "test" / "uniform" / "L01_0.5_00003.png") / 255
    expected = noise.apply("uniform", clean[None, ..., None] / 255.0, 0.5, seed=3, indices=[3]).numpy()[0, ..., 0]
    assert np.abs(noisy - expected).max() <= 1 / 255 + 1e-6  # the perturbation of image 3, by its index
    with pytest.raises(BioflowError, match="Outputs.images must be False, True, 'grid' or 'all', got 'every'"):
        Outputs(images="every")


@needs_cifar10g
def test_generalisation_on_cifar10g(tiny_run, tmp_path):
    import shutil
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    info = json.loads((run / "run.json").read_text())
    info["data"]["classes"] = list(CIFAR10_CLASSES)  # pretend the classes are CIFAR-10's, in the run and the data
    (run / "run.json").write_text(json.dumps(info))
    config.parse([str(run / "operative_config.gin")])
    pipeline = gin.get_configurable(DataPipeline)()
    pipeline.splits = dataclasses.replace(pipeline.source.load(), class_names=CIFAR10_CLASSES)
    summary = evaluate(run, data=pipeline, suite=noise.NoiseSuite(noises=["invert"]), n_images=16,
                       cifar10g=settings.CIFAR10G(folder=str(CIFAR10G), perturb=True))
    gen = pd.read_csv(run / "results" / "generalisation.csv")
    assert len(gen) == 6 and gen["Inverted"].sum() == 3
    assert set(gen["Type"]) == {"line_drawings", "contours", "silhouettes"}
    assert set(summary["generalisation"]) == set(gen["Set"])
    pert = pd.read_csv(run / "results" / "perturbation.csv")
    assert set(pert["Set"]) == {"test", *gen["Set"]} and len(pert) == 7 * 2


def test_a_failed_evaluation_leaves_no_results(tiny_run, tmp_path, monkeypatch):
    import shutil
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("results"))
    real = noise.compiled

    def failing(name, *args):
        if name == "contrast":
            raise RuntimeError("simulated failure")
        return real(name, *args)

    monkeypatch.setattr(noise, "compiled", failing)
    config.parse([str(run / "operative_config.gin")])
    with pytest.raises(RuntimeError, match="simulated"):
        evaluate(run, suite=small_suite(), n_images=16)
    assert not (run / "results").exists() and not list(run.glob(".results.*"))


def test_cli_evaluate_and_its_errors(tiny_run, tmp_path):
    result = CliRunner().invoke(main, ["evaluate", str(tiny_run), "--n-images", "16", "--gin-param",
                                       "NoiseSuite.noises = ['invert']"])
    assert result.exit_code == 0, result.output
    assert "clean accuracy" in result.output
    assert len(pd.read_csv(tiny_run / "results" / "perturbation.csv")) == 2
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(main, ["evaluate", str(tmp_path / "empty")])
    assert result.exit_code == 2 and "not a bioflow run directory" in result.output
    (tmp_path / "empty" / "operative_config.gin").write_text("")
    with pytest.raises(BioflowError, match="has no model.keras"):
        evaluate(tmp_path / "empty")


def test_rerun_of_a_finished_unevaluated_run_evaluates_without_retraining(tmp_path, capsys):
    config.parse(["quickstart"], TINY_TRAIN)  # skip_test = True
    run = train(workdir=str(tmp_path))
    assert not (run / "results").exists()
    stamp = (run / "model.keras").stat().st_mtime_ns
    config.parse(["quickstart"], TINY_TRAIN + ["train.skip_test = False", "evaluate.n_images = 16",
                                               "NoiseSuite.noises = ['invert']"])
    train(workdir=str(tmp_path))
    assert "already complete" in capsys.readouterr().out
    assert (run / "results" / "robustness.json").is_file()
    assert (run / "model.keras").stat().st_mtime_ns == stamp
    assert json.loads((run / "run.json").read_text())["weights"] is None


def test_float16_perturbation_holds_the_originals_few_grey_levels(tiny_run):
    """The original's float16 backend: at contrast 0.01 a 224x224 image keeps a few dozen of its grey
    levels (float16 steps 0.0625 to 0.125 near 128), where float32 keeps every one."""
    from bioflow.data import synthetic
    from bioflow.data.preprocessing import resize
    from bioflow.evaluate import to_0_255

    images, _ = synthetic.generate(4, 0)
    images = resize(tf.constant(images, tf.float32), 224, "nearest").numpy() / 255.0
    low = noise.apply("contrast", images, 0.01, seed=0, background=0.48).numpy()
    levels = {d: [len(np.unique(to_0_255(low, d).numpy()[i])) for i in range(4)] for d in ("float32", "float16")}
    assert max(levels["float16"]) <= 40 and min(levels["float32"]) > 100, levels
    np.testing.assert_array_equal(to_0_255(images, "float16").numpy(), np.round(images * 255))  # 8-bit stays exact
    config.parse([str(tiny_run / "operative_config.gin")])
    summary = evaluate(tiny_run, suite=noise.NoiseSuite(noises=["contrast"], dtype="float16"), n_images=16)
    assert summary["perturbed_dtype"] == "float16"
    with pytest.raises(BioflowError, match="Unknown NoiseSuite.dtype 'half'"):
        noise.NoiseSuite(dtype="half")
