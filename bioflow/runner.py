"""The training runner: the root ``train`` gin configurable behind ``bioflow train``.

Its named steps: configure (settings, strategy, seeds) → build (the model, in ``strategy.scope()``)
→ restore (run state, checkpoint) → prepare the data → fit (the loop, one committed epoch at a
time) → finalise (model, curves, run.json, evaluation) → publish (the zoo's policy).
"""
from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import pathlib
import platform
import re
import shutil
import signal
import tempfile
import threading
import time

import gin
import keras
import tensorflow as tf
from tensorflow.python.framework import config as tf_config  # op determinism: is_/disable_ (not public)

from bioflow import architecture, bindings, safe_gin, zoo as zoo_lib
from bioflow._version import __version__
from bioflow.bases.imagenet import fold_input_normalisation
from bioflow.data import DataPipeline
from bioflow.errors import BioflowError, user_message
from bioflow.evaluate import check_settings, evaluate
from bioflow.io import atomic_path, atomic_write, write_json
from bioflow.model import build_model, step_model
from bioflow.provenance import git_commit
from bioflow.settings import Execution, Fit, current_key
from bioflow.training import rundir
from bioflow.training.loop import Interrupted, Trainer  # noqa: F401 (Interrupted: for callers)
from bioflow.training.optimizers import make_optimizer
from bioflow.training.strategy import is_chief, make_strategy, worker_id
from bioflow.validation import check_bool, check_int, check_positive_int


def trial_seed(seed, trial):
    """The RNG seed of one trial: distinct per (seed, trial), and the same on every rerun."""
    digest = hashlib.sha256(f"{seed}:{trial}".encode()).digest()
    return int.from_bytes(digest[:4], "little") % (2**31 - 1)


def _versions():
    return dict(bioflow=__version__, tensorflow=tf.__version__, keras=keras.__version__,
                python=platform.python_version())


def _bound(key):
    """The gin binding ``key`` as a JSON-friendly value, or None when it is not bound."""
    value = bindings.query(key)
    return value if isinstance(value, (str, int, float, bool, type(None))) else str(value)


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """What ``train`` was asked to do, checked, with what follows from it (the output of :func:`configure`)."""

    label: str
    trial: int
    seed: int
    fit: Fit
    execution: Execution
    rng_seed: int  # the initial weights' seed: (seed, trial)
    data_seed: int  # the data order's and augmentation's seed (Fit.seeding)
    strategy: tf.distribute.Strategy
    replicas: int
    chief: bool
    clean: bool = False
    resume: bool = False
    skip_test: bool = False
    publish: str | None = None
    zoo: str | None = None

    @property
    def global_batch(self) -> int:
        return self.fit.batch_size


@gin.configurable(module="bioflow")
def train(workdir="runs", label="default", trial=1, seed=42, fit=None, execution=None, data=None, clean=False,
          resume=False, skip_test=False, publish=None, zoo=None):
    """Train the network that ``build_model`` declares, on ``data``, into a run directory.

    Args:
        workdir, label, trial, seed: the run is ``<workdir>/<label>/<model>_t<trial>_s<seed>/``.
        fit: a :class:`~bioflow.settings.Fit`: epochs, the global batch, the optimiser, its
            schedule and the trials' seeding (default: ``Fit()`` through gin, so ``Fit.epochs = 6`` applies).
        execution: an :class:`~bioflow.settings.Execution`: the strategy, precision, XLA,
            determinism, TensorBoard and progress (default: ``Execution()`` through gin).
        data: a :class:`DataPipeline` (default: ``DataPipeline()`` through gin, so its bindings apply).
        clean: delete the run directory and start over.
        resume: continue a finished run when ``Fit.epochs`` is larger than its epochs so far.
        skip_test: skip the robustness evaluation (``bioflow.evaluate.evaluate``) after training.
        publish: ``'NAME'`` or ``'NAME@VERSION'``: publish the finished run to the zoo (a run already
            published under NAME is not published again).
        zoo: the zoo root for ``publish`` (default ``$BIOFLOW_ZOO``, ``./zoo`` in a checkout, or the cache).
    Returns:
        The run directory (a ``pathlib.Path``).

    The steps: :func:`configure`, :func:`build`, then, holding the run's lock, restore (the run's
    state and checkpoint), fit, finalise (model, curves, run.json, evaluation) and publish.
    """
    s = configure(label=label, trial=trial, seed=seed, fit=fit if fit is not None else gin.get_configurable(Fit)(),
                  execution=execution if execution is not None else gin.get_configurable(Execution)(),
                  clean=clean, resume=resume, skip_test=skip_test, publish=publish, zoo=zoo)
    pipeline = data if data is not None else gin.get_configurable(DataPipeline)()
    model = build(s)
    run = rundir.run_dir(workdir, label, model.name, trial, seed)
    if s.chief and publish:
        zoo_lib.check_publishable(run, publish, zoo, clean)  # a bad name or a taken version fails now
    # Only the chief writes the run directory, so only the chief locks it; the other workers of a
    # multi-worker run read the chief's checkpoints.
    with rundir.locked(run) if s.chief else contextlib.nullcontext():
        fresh = s.chief and rundir.is_empty(run)  # created now: nothing in it but the lock
        try:
            with _disk_space(run):
                return _train_locked(run, model, pipeline, s)
        except BaseException:
            if fresh and not (run / "history.csv").exists():
                shutil.rmtree(run, ignore_errors=True)  # no epoch was completed: leave nothing behind
            raise


def configure(*, label, trial, seed, fit, execution, clean=False, resume=False, skip_test=False, publish=None,
              zoo=None):
    """Check the settings, make the strategy and set the process-wide state (precision, seeds)."""
    if not isinstance(fit, Fit) or not isinstance(execution, Execution):
        raise BioflowError(f"train.fit must be a Fit and train.execution an Execution (@Fit(), @Execution()), got "
                           f"{type(fit).__name__} and {type(execution).__name__}.")
    check_positive_int(trial, "train.trial", maximum=1_000_000)
    check_int(seed, "train.seed")
    for key, value in (("clean", clean), ("resume", resume), ("skip_test", skip_test)):
        check_bool(value, f"train.{key}")
    rundir.check_path_name(label, "The label")
    dist = make_strategy(execution.strategy)
    keras.mixed_precision.set_global_policy(execution.mixed_precision or "float32")
    rng_seed = trial_seed(seed, trial)
    keras.utils.set_random_seed(rng_seed)
    if execution.deterministic_ops:
        tf.config.experimental.enable_op_determinism()
    elif tf_config.is_op_determinism_enabled():  # left on by an earlier run in this process (a reused sweep worker)
        tf_config.disable_op_determinism()
    replicas = dist.num_replicas_in_sync
    if fit.batch_size % replicas:
        raise BioflowError(f"Fit.batch_size = {fit.batch_size} is the global batch and must divide evenly over the "
                           f"{replicas} replicas of the {execution.strategy!r} strategy: use a multiple of "
                           f"{replicas}, e.g. {max(replicas, fit.batch_size // replicas * replicas)}.")
    data_seed = rng_seed if fit.seeding == "per_trial" else int(seed) % (2**31 - 1)
    return RunSettings(label=label, trial=trial, seed=seed, fit=fit, execution=execution, rng_seed=rng_seed,
                       data_seed=data_seed, strategy=dist, replicas=replicas, chief=is_chief(), clean=clean,
                       resume=resume, skip_test=skip_test, publish=publish, zoo=zoo)


def build(s):
    """The model that ``build_model`` declares, built in the strategy's scope."""
    with s.strategy.scope():
        model = build_model()
    shape = model.input_shape
    if shape[1] != shape[2] or shape[3] != 1:
        raise BioflowError(f"bioflow trains on square one-channel images; the model's input is {shape[1:]}.")
    return model


def _train_locked(run, model, pipeline, s):
    """The steps ``train`` takes once it holds the run's lock."""
    state, latest, corrupt = restore_state(run, s)
    if state.get("status") == "complete" and not (s.resume and s.fit.epochs > state.get("epochs_completed", 0)):
        print(f"Run {run} is already complete ({state.get('epochs_completed')} epochs); "
              "pass --clean to start over, or --resume with more epochs to continue.")
        if s.chief and not s.skip_test and not (run / "results" / "robustness.json").is_file():
            evaluate(run, data=pipeline)  # an earlier evaluation failed or was interrupted
        publish_run(run, s)
        return run
    history = rundir.committed_history(run, _checkpoint_epochs(latest), fell_back=bool(corrupt)) if s.chief else []
    if s.chief and not s.skip_test:
        check_settings()  # a wrong CIFAR-10G folder fails now, not after training
    stats = prepare_data(model, pipeline, fold_weights=not latest)
    trainer = make_trainer(model, pipeline, s)
    started = time.time()
    history = fit(run, trainer, pipeline, model, stats, state, history, latest, s)
    if not s.chief:
        return run
    finalise(run, model, pipeline, history, time.time() - started, s)
    publish_run(run, s)
    return run


def restore_state(run, s):
    """``(run.json state, newest intact checkpoint or None, corrupt newer ones)``; ``--clean`` empties the run first.

    A run with a checkpoint, or a complete one, continues only with the bindings it was trained with.
    """
    state = rundir.read_json(run / "run.json") or {}
    if s.clean and s.chief:
        rundir.clear(run)
        state = {}
    complete = state.get("status") == "complete"
    if complete and not s.resume:  # nothing will be restored: no need to read every tensor back
        latest, corrupt = tf.train.latest_checkpoint(str(run / "checkpoints")), []
    else:
        latest, corrupt = rundir.newest_intact_checkpoint(run)
    if corrupt:
        print(f"Checkpoint {', '.join(pathlib.Path(c).name for c in corrupt)} of {run.name} is corrupt or truncated; "
              f"resuming from the older {pathlib.Path(latest).name} (the epochs after it are trained again).",
              flush=True)
    if s.chief and (latest or complete):
        _check_same_config(run, epochs_may_change=s.resume or complete)
    return state, latest, corrupt


def prepare_data(model, pipeline, fold_weights):
    """Load the data at the model's input size and fix the statistics; fold them into pretrained weights."""
    stats = pipeline.prepare(model.input_shape[1])
    if pipeline.n_classes != model.output_shape[-1]:
        raise BioflowError(f"The data set {stats['dataset']!r} has {pipeline.n_classes} classes but the model's "
                           f"head has {model.output_shape[-1]}: set build_model.classes = {pipeline.n_classes}.")
    weights = _bound("build_model.weights")
    if weights and fold_weights:  # a resumed run restores its (already folded) weights from the checkpoint
        if stats["normalisation"] == "featurewise":
            fold_input_normalisation(model, weights, stats["mean"], stats["std"])
        else:
            print("Note: samplewise normalisation cannot be folded into the pretrained first layer; it keeps "
                  "its ImageNet weights as they are.", flush=True)
    return stats


def make_trainer(model, pipeline, s):
    """The optimiser and the distributed loop, made in the strategy's scope."""
    if pipeline.splits.n_train // s.global_batch == 0:
        raise BioflowError(f"The global batch of {s.global_batch} images (Fit.batch_size) is larger than the "
                           f"training set of {pipeline.splits.n_train} images; lower Fit.batch_size.")
    with s.strategy.scope():
        fit, execution = s.fit, s.execution
        opt, base_rate = make_optimizer(fit.optimizer, fit.learning_rate, fit.decay,
                                        execution.mixed_precision == "mixed_float16", update_rule=fit.update_rule)
        return Trainer(s.strategy, model, opt, base_rate, s.global_batch, plateau=fit.plateau,
                       jit_compile=execution.jit_compile, steps_model=_steps_model(model, fit))


def _steps_model(model, fit):
    """The model of every step's predictions when ``Fit.step_loss = 'mean'`` asks for it."""
    if fit.step_loss == "last":
        return None
    steps = step_model(model)
    if steps is None:
        raise BioflowError(f"Fit.step_loss = {fit.step_loss!r} weighs the losses of every time step, but "
                           f"{model.name} has one readout: read a BLT block out at every step with "
                           "BLTRecurrence.readout = 'every_step' (or keep Fit.step_loss = 'last').")
    return steps


def publish_run(run, s):
    """Publish a finished run when ``train.publish`` asks (the zoo's policy: once per name)."""
    if s.chief and s.publish:
        print(zoo_lib.publish_once(run, s.publish, s.zoo)[1])


def _checkpoint_epochs(latest):
    """The completed epochs that checkpoint ``latest`` holds (0 for None)."""
    if not latest:
        return 0
    return int(tf.train.load_variable(latest, "epoch/.ATTRIBUTES/VARIABLE_VALUE"))


#: Bindings that may change between the sessions of one run: where and how it runs, not what it trains.
RUN_SETTINGS = tuple(f"bioflow.train.{k}" for k in ("clean", "resume", "skip_test", "publish", "zoo", "workdir")) + (
    "bioflow.CIFAR10.data_dir", "bioflow.CIFAR10.download")
RUN_SETTING_PREFIXES = tuple(f"bioflow.{c}." for c in ("evaluate", "NoiseSuite", "pull", "Execution", "CIFAR10G",
                                                        "Outputs", "ExplainMethods"))


def _check_same_config(run, epochs_may_change):
    """Refuse to continue ``run`` with bindings that differ from those it was trained with."""
    path = run / "operative_config.gin"
    if not path.is_file():
        return
    before = safe_gin.bindings(path.read_text(), str(path))
    now = safe_gin.bindings(gin.operative_config_str(), "the current configuration")
    before = {current_key(k): v for k, v in before.items()}  # a run trained before a key was renamed
    ignored = set(RUN_SETTINGS) | ({"bioflow.Fit.epochs"} if epochs_may_change else set())
    differ = [k for k in sorted(set(before) | set(now))
              if k not in ignored and not k.startswith(RUN_SETTING_PREFIXES) and before.get(k) != now.get(k)]
    if differ:
        short = {k: k.removeprefix("bioflow.") for k in differ}
        lines = "\n".join(f"  {short[k]}: {before.get(k, '(unset)')} in the run, {now.get(k, '(unset)')} now"
                          for k in differ)
        hint = (" To train for more epochs, pass --resume." if differ == ["bioflow.Fit.epochs"] else "")
        raise BioflowError(f"{run} was trained with other bindings than the ones given now:\n{lines}\nContinuing "
                           "would mix two configurations in one run. Use another --label, --trial or --seed for the "
                           f"new configuration, or pass --clean to start this run over.{hint}")


@contextlib.contextmanager
def _disk_space(run):
    """Report a full disk as one clear error that names the file (the run stays resumable)."""
    try:
        yield
    except (OSError, tf.errors.OpError) as err:
        text = str(err)
        if getattr(err, "errno", None) != errno.ENOSPC and "No space left on device" not in text:
            raise
        path = getattr(err, "filename", None) or _path_in(text, run)
        raise BioflowError(f"No space left on device: {path}. Free some space, then rerun the same command to "
                           "resume from the last completed epoch.") from err


def _path_in(text, run):
    """The run's top-level file or folder that a TensorFlow error message names (e.g. checkpoints/), or the run."""
    for prefix in dict.fromkeys((str(run), str(run.resolve()))):
        match = re.search(re.escape(prefix) + r"/([^/\s;:]+)", text)
        if match:
            return run / match.group(1)
    return run


def _mark_stopped(run, err):
    """Record in ``run.json`` that the run failed or was stopped (best effort: the disk may be full)."""
    with contextlib.suppress(Exception):
        info = rundir.read_json(run / "run.json")
        if info and info.get("status") == "running":
            stopped = isinstance(err, (Interrupted, KeyboardInterrupt))
            write_json(run / "run.json", dict(info, status="interrupted" if stopped else "failed",
                                                     error=user_message(err)))


def fit(run, trainer, pipeline, model, stats, state, history, latest, s):
    """Restore the checkpoint and train the remaining epochs, committing each one; returns the history."""
    chief = s.chief
    ckpt_dir = run / "checkpoints" if chief else pathlib.Path(tempfile.mkdtemp(prefix=f"bioflow_{worker_id()}_"))
    manager = tf.train.CheckpointManager(trainer.checkpoint, str(ckpt_dir), max_to_keep=2)
    start_epoch = 0
    if latest:
        trainer.checkpoint.restore(latest).expect_partial()
        start_epoch = int(trainer.epoch.numpy())
        print(f"Resuming {run.name} from epoch {start_epoch + 1} (checkpoint {pathlib.Path(latest).name}, "
              f"{start_epoch} epochs completed).", flush=True)
    if chief:
        atomic_write(run / "operative_config.gin", gin.operative_config_str())
        write_json(run / "run.json", dict(
            {k: v for k, v in state.items() if k != "error"}, status="running", model=model.name,
            label=s.label, trial=s.trial, seed=s.seed, rng_seed=s.rng_seed, data_seed=s.data_seed,
            seeding=s.fit.seeding, weights=_bound("build_model.weights"),
            architecture=architecture.of(model).to_dict(), epochs=s.fit.epochs, epochs_completed=start_epoch,
            data=stats, strategy=s.execution.strategy, replicas=s.replicas, global_batch=s.global_batch,
            versions=_versions(), git_commit=git_commit()))
    writer = tf.summary.create_file_writer(str(run / "logs")) if s.execution.tensorboard and chief else None

    def on_epoch_end(row):
        history.append(row)
        if not chief:
            manager.save(checkpoint_number=row["epoch"] + 1)
            return
        rundir.commit_epoch(run, history, lambda: manager.save(checkpoint_number=row["epoch"] + 1))
        if writer is not None:
            with writer.as_default(step=row["epoch"]):
                for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr"):
                    tf.summary.scalar(key, row[key])

    def stop(signum, _frame):
        if trainer.stop_reason is not None:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        print(f"\n{signal.Signals(signum).name}: stopping after the current step…", flush=True)
        trainer.request_stop(signal.Signals(signum).name)

    # Handlers can only be set from the main thread (a Ray Train worker runs this in another one).
    in_main = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)} if in_main else {}
    try:
        trainer.fit(lambda e: pipeline.train_dataset(s.global_batch, e, s.data_seed),
                    lambda e: pipeline.validation_dataset(s.global_batch, e, s.data_seed), s.fit.epochs,
                    pipeline.splits.n_train // s.global_batch, on_epoch_end, progress=s.execution.progress)
    except BaseException as err:
        if chief:
            _mark_stopped(run, err)
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not chief:
        shutil.rmtree(ckpt_dir, ignore_errors=True)
    return history


def finalise(run, model, pipeline, history, seconds, s):
    """Save the model and learning curves, mark the run complete, and evaluate it (unless skipped)."""
    with atomic_path(run / "model.keras") as tmp_path:
        model.save(tmp_path)
    rundir.plot_learning_curves(run / "learning_curves.png", history, f"{s.label}: {model.name}")
    final = history[-1] if history else {}
    summary = rundir.read_json(run / "run.json")
    summary.update(status="complete", epochs=s.fit.epochs, epochs_completed=len(history),
                   seconds=summary.get("seconds", 0.0) + seconds,
                   final={k: final.get(k) for k in rundir.HISTORY_COLUMNS if k != "epoch"},
                   finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    write_json(run / "run.json", summary)
    if not s.skip_test:
        evaluate(run, data=pipeline)
    atomic_write(run / "operative_config.gin", gin.operative_config_str())
    print(f"\nRun complete: {run}\n"
          f"  model.keras, history.csv, learning_curves.png, run.json, operative_config.gin, checkpoints/"
          + ("" if s.skip_test else ", results/")
          + (", logs/" if s.execution.tensorboard else "")
          + f"\n  final val_accuracy {final.get('val_accuracy', float('nan')):.4f} after {len(history)} epochs")
