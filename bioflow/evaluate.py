"""Robustness evaluation of a run: clean accuracy, the noise suite and CIFAR-10G (docs/science.md).

Everything is batched: the test images are resized and cached once; for each (noise, level),
each batch is then perturbed by one traced graph and normalised and predicted by another.
Results go to ``RUN_DIR/results/`` through a temporary folder and a rename, so a failed
evaluation never leaves tables that look complete.
"""
import dataclasses
import json
import pathlib
import shutil
import sys
import tempfile

import gin
import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from bioflow import architecture, bindings, metrics, noise
from bioflow.data import DataPipeline
from bioflow.data.preprocessing import normaliser, prepare_images
from bioflow.data.sources import CIFAR10_CLASSES
from bioflow.errors import BioflowError
from bioflow.io import replace_dir
from bioflow.model import step_model
from bioflow.settings import CIFAR10G, Outputs
from bioflow.training import rundir
from bioflow.validation import MAX_BATCH, MAX_IMAGES, check_bool, check_int, check_positive_int

PERTURBATION_COLUMNS = ("Model", "Convolution", "Base", "Weights", "Trial", "Seed", "Set", "Noise", "LI", "Level",
                        "Loss", "Accuracy")
GENERALISATION_COLUMNS = ("Model", "Convolution", "Base", "Weights", "Trial", "Seed", "Set", "Type", "Inverted",
                          "Loss", "Accuracy")
#: ``results/steps.csv``, for a network read out at every time step: each condition's accuracy per step.
STEP_COLUMNS = ("Model", "Convolution", "Base", "Weights", "Trial", "Seed", "Set", "Noise", "LI", "Level", "Step",
                "Accuracy")


@dataclasses.dataclass
class Scores:
    """One condition's loss and accuracy; its probabilities when kept; each step's accuracy when the
    network is read out at every step (else None)."""

    loss: float
    accuracy: float
    probs: np.ndarray | None = None
    step_accuracy: np.ndarray | None = None


class _Evaluator:
    """Accuracy and loss of one model on batches of [0, 1] images, optionally perturbed.

    Each batch is a slice of the cached arrays: a perturbation is one traced graph per
    (noise, level) and normalise-and-predict one graph per batch shape, so no ``tf.data``
    pipeline (and no map function to trace) is built per level.
    """

    def __init__(self, model, stats, batch_size, seed, background, save_predictions, perturbed_dtype="float32"):
        normalise = normaliser(stats)
        self.batch_size, self.seed, self.background = batch_size, seed, background
        self.save_predictions = save_predictions
        steps = step_model(model)
        self.steps = None if steps is None else int(steps.output_shape[1])

        def predicting(dtype):
            def predict(x, y):
                inputs = normalise(to_0_255(x, dtype))
                if steps is None:
                    probs = tf.cast(model(inputs, training=False), tf.float32)
                    return probs, metrics.batch_totals(y, probs), tf.zeros([0])
                per_step = tf.cast(steps(inputs, training=False), tf.float32)  # (B, steps, K)
                hits = tf.equal(tf.argmax(per_step, -1), tf.cast(y, tf.int64)[:, None])
                probs = per_step[:, -1]
                return probs, metrics.batch_totals(y, probs), tf.reduce_sum(tf.cast(hits, tf.float32), 0)
            return tf.function(predict, autograph=False)

        self.predict = predicting("float32")
        self.predict_perturbed = self.predict if perturbed_dtype == "float32" else predicting(perturbed_dtype)

    def run(self, images01, labels, noise_name=None, level=None, save_to=None) -> Scores:
        """The :class:`Scores` of the cached [0, 1] images.

        ``save_to(images01 [n, H, W, 1], indices [n])``, when given, receives every (perturbed) batch.
        """
        perturb = None
        if noise_name is not None:
            perturb = noise.compiled(noise_name, level, self.seed, self.background, *images01.shape[1:3])
        totals, probs, step_hits = metrics.LossAccuracy(), [], 0.0
        for start in range(0, len(labels), self.batch_size):
            x = tf.constant(images01[start:start + self.batch_size])
            indices = tf.range(start, start + x.shape[0], dtype=tf.int64)
            if perturb is not None:
                x = perturb(x, indices)
            if save_to is not None:
                save_to(x, indices)
            predict = self.predict if perturb is None else self.predict_perturbed
            p, batch, hits = predict(x, tf.constant(labels[start:start + self.batch_size]))
            totals.add(batch)
            if self.steps:
                step_hits = step_hits + hits
            if self.save_predictions:
                probs.append(p.numpy())
        loss, accuracy = totals.result("The evaluation set")
        return Scores(loss, accuracy, np.concatenate(probs) if probs else None,
                      np.asarray(step_hits) / len(labels) if self.steps else None)


def to_0_255(images01, dtype="float32"):
    """[0, 1] images as the network's 0..255 input; ``'float16'`` rounds them to float16 first, as the
    original's float16 backend held its perturbed images (``NoiseSuite.dtype``)."""
    x255 = tf.convert_to_tensor(images01, tf.float32) * 255.0
    return tf.cast(tf.cast(x255, tf.float16), tf.float32) if dtype == "float16" else x255


def _cifar10g_sets(folder, size, interpolation):
    """``{set name: (images [0, 1], labels)}`` from a CIFAR-10G copy (or ``'download'``), via the TFDS builder."""
    from bioflow.data.cifar10g import ALL_SETS, Cifar10G

    def load(builder):
        builder.download_and_prepare()
        return {name: prepare_images(builder.as_dataset(split=name, as_supervised=True), size, interpolation)
                for name in ALL_SETS}

    if folder == "download":
        return load(Cifar10G())  # prepared once in the TFDS data directory ($TFDS_DATA_DIR), then reused
    with tempfile.TemporaryDirectory(prefix="bioflow_cifar10g_") as tmp:
        return load(Cifar10G(data_dir=tmp, copy=str(folder)))


def _image_grid(examples):
    """``examples [levels][k, H, W, 1]`` in [0, 1] → one uint8 grid (rows: images, columns: levels)."""
    pad = 2
    rows = []
    for i in range(examples[0].shape[0]):
        row = [np.pad(level[i], ((pad, pad), (pad, pad), (0, 0)), constant_values=1.0) for level in examples]
        rows.append(np.concatenate(row, axis=1))
    grid = np.concatenate(rows, axis=0)
    scale = max(1, 96 // examples[0].shape[1])
    grid = np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)
    return (np.clip(grid, 0, 1) * 255).round().astype(np.uint8)


def _png_writer(folder, level_index, level):
    """``save(images01, indices)`` writing each image as ``folder/L<li>_<level>_<index>.png``."""
    folder.mkdir(parents=True, exist_ok=True)

    def save(images01, indices):
        pngs = tf.map_fn(tf.io.encode_png, tf.cast(tf.round(tf.clip_by_value(images01, 0, 1) * 255), tf.uint8),
                         fn_output_signature=tf.string)
        for png, index in zip(pngs.numpy(), indices.numpy()):
            (folder / f"L{level_index:02d}_{level:g}_{index:05d}.png").write_bytes(png)

    return save


def _remove_orphans(run):
    """Remove the temporary results of evaluations that were killed (``.results.*``)."""
    for orphan in run.glob(".results.*"):
        if orphan.is_dir() and not orphan.is_symlink():
            shutil.rmtree(orphan, ignore_errors=True)


def _check_n_images(n_images):
    if n_images is not None:
        check_positive_int(n_images, "evaluate.n_images", alternative=" or None (all images)", maximum=MAX_IMAGES)


def _check_numbers(batch_size, seed, flags):
    check_positive_int(batch_size, "evaluate.batch_size", maximum=MAX_BATCH)
    check_int(seed, "evaluate.seed")
    for key, value in flags.items():
        check_bool(value, f"evaluate.{key}")


def check_settings() -> None:
    """Check the evaluation settings bound in gin, so that a training run fails before it trains."""
    bound = bindings.query
    _check_n_images(bound("evaluate.n_images"))
    _check_numbers(bound("evaluate.batch_size", 64), bound("evaluate.seed", 0), {})
    gin.get_configurable(Outputs)()
    _check_generalisation_dir(gin.get_configurable(CIFAR10G)().folder)
    attacks = bound("evaluate.attacks")  # None, or gin's reference @AttackSuite(): its attacks are checked now
    if attacks is not None and hasattr(attacks, "scoped_configurable_fn"):
        attacks.scoped_configurable_fn()
    corruptions = bound("evaluate.corruptions")
    if corruptions is not None and hasattr(corruptions, "scoped_configurable_fn"):
        _check_corruption_suite(corruptions.scoped_configurable_fn()).check()  # CIFAR-10-C reachable
    suite = bound("evaluate.suite")  # None, or gin's reference @[scope/]NoiseSuite()
    scoped = getattr(suite, "_scoped_selector", None) if suite is not None else "NoiseSuite"
    if scoped is not None and scoped.rpartition("/")[2] == "NoiseSuite":
        with gin.config_scope(scoped.rpartition("/")[0] or None):
            gin.get_configurable(noise.NoiseSuite)()  # its names, levels and sizes, before any training


def _check_generalisation_dir(folder):
    """A CIFAR-10G folder must be a copy (a wrong one is an error, never a fallback to a download);
    ``'download'`` must find the set prepared or its archive reachable."""
    from bioflow.data import cifar10g

    if folder == "download":
        cifar10g.check_download()
    elif folder is not None:
        cifar10g.check_folder(folder)


@gin.configurable(module="bioflow", denylist=["loaded"])
def evaluate(run_dir, data=None, suite=None, cifar10g=None, outputs=None, attacks=None, corruptions=None,
             n_images=None, batch_size=64, seed=0, progress=None, force=False, loaded=None):
    """Evaluate a finished run; writes ``results/`` and returns the robustness summary.

    Args:
        run_dir: the run directory (``model.keras``, ``run.json``).
        data: the run's :class:`DataPipeline` (default: from the gin config, e.g. the run's
            ``operative_config.gin``); only its test split is used, and its classes must be the
            ones the model was trained on.
        suite: a :class:`bioflow.noise.NoiseSuite` (default: ``NoiseSuite()`` through gin: the paper's suite).
        cifar10g: a :class:`~bioflow.settings.CIFAR10G`: the CIFAR-10G copy and whether to perturb it
            (default: ``CIFAR10G()`` through gin; its default skips CIFAR-10G).
        outputs: an :class:`~bioflow.settings.Outputs`: predictions, image files and the original's
            table layout (default: ``Outputs()`` through gin).
        attacks: a :class:`bioflow.attacks.AttackSuite` run on the test images after the noise suite,
            into ``results/adversarial.csv`` (default: none; ``--attacks quick`` or ``gin/attack/``).
        corruptions: a :class:`bioflow.common_corruptions.CorruptionSuite`: CIFAR-10-C, or the corruptions
            computed on the test images, into ``results/corruptions.csv`` (default: none;
            ``--corruptions cifar10-c|computed`` or ``gin/evaluate/extended.gin``).
        n_images: evaluate on the first ``n_images`` test images (default: all).
        batch_size, seed: the prediction batch, and the seed of the stochastic perturbations.
        force: evaluate a run that is not complete (its current ``model.keras``).
        loaded: ``(model, run_info)`` to evaluate instead of the run's (a zoo entry); ``run_dir``
            then only receives ``results/``.

    The run directory is locked while it is evaluated, and ``results/`` appears by a rename only
    when whole. SIGTERM stops the evaluation and removes its temporary folder; the temporary
    folders of killed evaluations are removed by the next one.
    """
    _check_n_images(n_images)
    _check_numbers(batch_size, seed, dict(force=force))
    cifar10g = cifar10g if cifar10g is not None else gin.get_configurable(CIFAR10G)()
    outputs = outputs if outputs is not None else gin.get_configurable(Outputs)()
    _check_generalisation_dir(cifar10g.folder)  # before any work
    run = pathlib.Path(run_dir)
    if loaded is None and not run.is_dir():
        raise BioflowError(f"Run directory {run} does not exist.")
    with rundir.locked(run, action="evaluate"), rundir.sigterm_as_interrupt():
        _remove_orphans(run)
        model, info = loaded if loaded is not None else rundir.load_run(run, force)
        pipeline = data if data is not None else gin.get_configurable(DataPipeline)()
        suite = suite if suite is not None else gin.get_configurable(noise.NoiseSuite)()
        if corruptions is not None:
            _check_corruption_suite(corruptions).check(info["data"])  # CIFAR-10-C reachable, before any work
        sets = evaluation_sets(pipeline, info["data"], model.input_shape[1], n_images, cifar10g.folder)
        attacked = attack_start_images(pipeline, info["data"], sets, attacks) if attacks is not None else None
        extensions = Extensions(attacks, attacked, corruptions, n_images)
        return _evaluate_locked(run, model, info, sets, suite, cifar10g, outputs, extensions, batch_size, seed,
                                progress)


@dataclasses.dataclass(frozen=True)
class Extensions:
    """What an evaluation runs beyond the paper's: attacks (and their start images), common corruptions."""

    attacks: object = None  # bioflow.attacks.AttackSuite
    attack_images: tuple = None  # (images, labels)
    corruptions: object = None  # bioflow.common_corruptions.CorruptionSuite
    n_images: int = None


def _check_corruption_suite(suite):
    from bioflow.common_corruptions import CorruptionSuite

    if not isinstance(suite, CorruptionSuite):
        raise BioflowError(f"evaluate.corruptions must be a CorruptionSuite (@CorruptionSuite(), e.g. --corruptions "
                           f"computed), got {type(suite).__name__}.")
    return suite


def attack_start_images(pipeline, stats, sets, suite):
    """``(images [0, 1], labels)``: the test images ``suite``'s attacks start from, at the source's own size
    (``space='source'``) or the network's (``sets``: :func:`evaluation_sets`)."""
    from bioflow import attacks

    if not isinstance(suite, attacks.AttackSuite):
        raise BioflowError(f"evaluate.attacks must be an AttackSuite (@AttackSuite(), e.g. --attacks quick), got "
                           f"{type(suite).__name__}.")
    images, labels = sets["test"]
    n = min(len(labels), suite.n_images or len(labels))
    if suite.space == "input":
        return images[:n], labels[:n]
    splits = pipeline.splits if pipeline.splits is not None else pipeline.source.load()
    size = splits.test.element_spec[0].shape[0]
    if size is None or splits.test.element_spec[0].shape[1] != size:
        raise BioflowError(f"The test images of {splits.name!r} have no one square size to attack them at: set "
                           "AttackSuite.space = 'input' to attack the network's input instead.")
    source, source_labels = prepare_images(splits.test, size, stats["interpolation"], n)
    if not np.array_equal(source_labels, labels[:n]):
        raise BioflowError("The source images and the evaluation's test images are not in the same order.")
    return source, source_labels


def _evaluate_locked(run, model, info, sets, suite, cifar10g, outputs, extensions, batch_size, seed, progress):
    """Compute every table into a temporary folder, then move it into place as ``results/``."""
    with tempfile.TemporaryDirectory(dir=run, prefix=".results.") as tmp:
        tmp_dir = pathlib.Path(tmp) / "results"
        (tmp_dir / "images").mkdir(parents=True)

        def image_sink(set_name, name, li, level):
            return _png_writer(tmp_dir / "images" / set_name / name, li, level)

        result = robustness(model, info, sets, suite, batch_size=batch_size, seed=seed,
                            perturb_generalisation=cifar10g.perturb, save_predictions=outputs.predictions,
                            example_grids=bool(outputs.images),
                            image_sink=image_sink if outputs.images == "all" else None, progress=progress)
        if extensions.corruptions is not None:
            from bioflow import common_corruptions

            stats = info["data"]
            evaluator = _Evaluator(model, stats, batch_size, seed, stats["mean"] / 255.0, False, suite.dtype)
            result.corruptions, result.summary["corruptions"] = common_corruptions.run(
                evaluator, extensions.corruptions, *sets["test"], stats, model.input_shape[1], extensions.n_images,
                result_meta(model, info), echo=lambda line: print(line, flush=True))
        if extensions.attacks is not None:
            from bioflow import attacks

            result.adversarial = attacks.run(model, info, *extensions.attack_images, extensions.attacks,
                                             result_meta(model, info), batch_size=batch_size,
                                             echo=lambda line: print(line, flush=True))
            result.summary["adversarial"] = result.adversarial.summary
        write_results(tmp_dir, result)
        if outputs.layout == "bionet":
            from bioflow import bionet_layout

            history = pd.read_csv(run / "history.csv") if (run / "history.csv").is_file() else None
            bionet_layout.write(tmp_dir / "bionet", result.perturbation, result.generalisation, history,
                                model=result.summary["model"], trial=info.get("trial") or 1,
                                seed=info.get("seed") if info.get("seed") is not None else 42)
        if (run / "results" / "explain").is_dir():  # `bioflow explain`'s output outlives a new evaluation
            shutil.copytree(run / "results" / "explain", tmp_dir / "explain", symlinks=True)
        replace_dir(tmp_dir, run / "results")
    summary = result.summary
    print(f"Evaluation written to {run / 'results'}: clean accuracy {summary['clean_accuracy']:.4f}"
          + "".join(f", AUC {k} {v:.3f}" for k, v in list(summary["auc"].items())[:3])
          + (" …" if len(summary["auc"]) > 3 else ""), flush=True)
    return summary


def evaluation_sets(pipeline: DataPipeline, stats: dict, size: int, n_images: int | None = None,
                    generalisation_dir: str | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{set name: ([0, 1] images, labels)}``: the test split (its first ``n_images``) and the CIFAR-10G sets."""
    interp = stats["interpolation"]
    splits = pipeline.splits if pipeline.splits is not None else pipeline.source.load()
    trained_on = tuple(stats.get("classes") or ())
    if trained_on and tuple(splits.class_names) != trained_on:
        raise BioflowError(f"The model was trained on {stats.get('dataset')!r}, whose classes are {list(trained_on)}, "
                           f"but the data source of this configuration, {splits.name!r}, has the classes "
                           f"{list(splits.class_names)}. Give the data it was trained on with --gin (a shipped "
                           "data source: --gin data/synthetic, data/cifar10 or data/image_folder) or --gin-param.")
    sets = {"test": prepare_images(splits.test, size, interp, n_images)}
    if generalisation_dir is not None:
        if tuple(stats.get("classes", ())) != CIFAR10_CLASSES:
            print(f"Skipping CIFAR-10G: the model was trained on {stats['dataset']!r}, not the CIFAR-10 classes.")
        else:
            sets.update(_cifar10g_sets(generalisation_dir, size, interp))
    return sets


@dataclasses.dataclass
class Robustness:
    """What one evaluation computed: the tables and pictures that ``results/`` holds."""

    perturbation: pd.DataFrame
    generalisation: pd.DataFrame
    summary: dict
    predictions: pd.DataFrame | None = None
    grids: dict = dataclasses.field(default_factory=dict)  # noise → uint8 image grid
    adversarial: object = None  # bioflow.attacks.Adversarial, when an attack suite ran
    steps: pd.DataFrame | None = None  # STEP_COLUMNS, for a network read out at every step
    corruptions: pd.DataFrame | None = None  # bioflow.common_corruptions.COLUMNS, when a corruption suite ran


def result_meta(model: keras.Model, info: dict) -> dict:
    """The identity columns of every result table: Model, Convolution, Base, Weights, Trial, Seed."""
    arch = architecture.read(info, model)
    return dict(Model=info.get("model", model.name), Convolution=arch.convolution, Base=arch.base,
                Weights=info.get("weights") or "none", Trial=info.get("trial"), Seed=info.get("seed"))


def robustness(model: keras.Model, info: dict, sets: dict, suite: noise.NoiseSuite, *, batch_size=64, seed=0,
               perturb_generalisation=False,
               save_predictions=False, example_grids=False, image_sink=None, progress=None) -> Robustness:
    """Evaluate ``model`` on ``sets`` (see :func:`evaluation_sets`): clean, then every (noise, level).

    Writes nothing; ``image_sink(set, noise, level index, level)``, when given, returns a function
    that receives every perturbed batch (``save_images = 'all'``).
    """
    stats = info["data"]
    background = stats["mean"] / 255.0
    meta = result_meta(model, info)
    ev = _Evaluator(model, stats, batch_size, seed, background, save_predictions, suite.dtype)
    noisy_sets = [s for s in sets if s == "test" or perturb_generalisation]
    jobs = [(s, name, li, level) for s in noisy_sets for name, levels in suite.items()
            for li, level in enumerate(levels)]
    bar = keras.utils.Progbar(len(jobs) + len(sets)) if (progress or (progress is None and sys.stdout.isatty())) \
        else None
    pert_rows, gen_rows, pred_frames, step_rows = [], [], [], []

    def record_steps(set_name, noise_name, li, level, scores):
        for step, acc in enumerate(scores.step_accuracy if scores.step_accuracy is not None else ()):
            step_rows.append(dict(meta, Set=set_name, Noise=noise_name, LI=li, Level=level, Step=step + 1,
                                  Accuracy=float(acc)))

    def record_predictions(set_name, noise_name, li, level, probs, labels):
        if probs is None:
            return
        frame = pd.DataFrame(probs, columns=[f"p{k}" for k in range(probs.shape[1])])
        frame.insert(0, "Index", np.arange(len(labels)))
        for col, value in (("Level", level), ("LI", li), ("Noise", noise_name), ("Set", set_name)):
            frame.insert(0, col, value)
        frame["Predicted"] = probs.argmax(1)
        frame["True"] = labels
        frame["Correct"] = frame["Predicted"] == frame["True"]
        pred_frames.append(frame)

    clean = {}
    for set_name, (images, labels) in sets.items():
        scores = ev.run(images, labels)
        clean[set_name] = scores.accuracy
        record_predictions(set_name, "clean", 0, 0.0, scores.probs, labels)
        record_steps(set_name, "clean", 0, 0.0, scores)
        if set_name != "test":
            gen_rows.append(dict(meta, Set=set_name, Type=set_name.replace("_inverted", ""),
                                 Inverted=set_name.endswith("_inverted"), Loss=scores.loss, Accuracy=scores.accuracy))
        if bar is not None:
            bar.add(1)
    current = None
    for set_name, name, li, level in jobs:
        if bar is None and name != current:
            print(f"Evaluating {set_name}: {name} ({len(suite.levels[name])} levels)", flush=True)
            current = name
        images, labels = sets[set_name]
        save_to = image_sink(set_name, name, li, level) if image_sink is not None else None
        scores = ev.run(images, labels, name, level, save_to)
        pert_rows.append(dict(meta, Set=set_name, Noise=name, LI=li, Level=level, Loss=scores.loss,
                              Accuracy=scores.accuracy))
        record_predictions(set_name, name, li, level, scores.probs, labels)
        record_steps(set_name, name, li, level, scores)
        if bar is not None:
            bar.add(1)
    perturbation = pd.DataFrame(pert_rows, columns=PERTURBATION_COLUMNS)
    generalisation = pd.DataFrame(gen_rows, columns=GENERALISATION_COLUMNS)
    aucs = metrics.auc_table(perturbation[perturbation["Set"] == "test"]) if pert_rows else pd.DataFrame()
    summary = dict(model=meta["Model"], clean_accuracy=clean["test"], n_images=len(sets["test"][1]),
                   perturbed_dtype=suite.dtype,
                   auc={row["Noise"]: row["AUC"] for _, row in aucs.iterrows()},
                   generalisation={r["Set"]: r["Accuracy"] for r in gen_rows},
                   suite={name: list(levels) for name, levels in suite.items()})
    steps = pd.DataFrame(step_rows, columns=STEP_COLUMNS) if step_rows else None
    if steps is not None:
        summary["steps"] = step_summary(steps)
    grids = {}
    if example_grids:
        examples = sets["test"][0][:4]
        grids = {name: _image_grid([noise.apply(name, examples, lv, seed=seed, background=background).numpy()
                                    for lv in levels]) for name, levels in suite.items()}
    return Robustness(perturbation, generalisation, summary,
                      pd.concat(pred_frames, ignore_index=True) if pred_frames else None, grids, steps=steps)


def step_summary(steps: pd.DataFrame) -> dict:
    """``robustness.json``'s ``steps`` record: per step, the clean accuracy of each set and each noise's AUC."""
    clean = steps[steps["Noise"] == "clean"]
    record = dict(steps=int(steps["Step"].max()),
                  clean_accuracy={s: [float(a) for a in g.sort_values("Step")["Accuracy"]]
                                  for s, g in clean.groupby("Set", sort=False)})
    noisy = steps[(steps["Noise"] != "clean") & (steps["Set"] == "test")]
    record["auc"] = {name: [metrics.auc(g["Level"], g["Accuracy"]) for _, g in group.groupby("Step")]
                     for name, group in noisy.groupby("Noise", sort=False)}
    return record


def write_results(folder: str | pathlib.Path, result: Robustness) -> None:
    """Write ``result`` into ``folder`` (a temporary ``results/``, renamed into place by the caller)."""
    folder = pathlib.Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    result.perturbation.to_csv(folder / "perturbation.csv", index=False)
    result.generalisation.to_csv(folder / "generalisation.csv", index=False)
    (folder / "robustness.json").write_text(json.dumps(result.summary, indent=2) + "\n")
    if result.predictions is not None:
        result.predictions.to_csv(folder / "predictions.csv", index=False)
    if result.adversarial is not None:
        result.adversarial.table.to_csv(folder / "adversarial.csv", index=False)
    if result.steps is not None:
        result.steps.to_csv(folder / "steps.csv", index=False)
    if result.corruptions is not None:
        result.corruptions.to_csv(folder / "corruptions.csv", index=False)
    for name, grid in result.grids.items():
        tf.io.write_file(str(folder / "images" / f"{name}.png"), tf.io.encode_png(grid))
