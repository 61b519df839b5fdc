"""The run directory: its layout, its lock and atomic writes of its files.

    <workdir>/<label>/<model>_t<trial>_s<seed>/
        operative_config.gin  history.csv  run.json  learning_curves.png  model.keras
        checkpoints/  logs/ (TensorBoard)  results/ (bioflow.evaluate)
        .lock  .lock.owner (while a process trains or evaluates it)

:func:`load_run` reads a finished run back: its model (Keras safe mode) and its ``run.json``.
"""
import contextlib
import csv
import datetime
import io
import json
import os
import pathlib
import shutil
import signal
import socket
import sys
import threading

import filelock
import keras
import pandas as pd

import bioflow.components  # noqa: F401  (registers bioflow's Keras layers, so that model.keras loads)
from bioflow import weights
from bioflow.errors import BioflowError
from bioflow.io import atomic_path, atomic_write
from bioflow.learning_curves import learning_curves
from bioflow.validation import safe_name

HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr")
LOCK, OWNER = ".lock", ".lock.owner"
#: The history with the epoch being committed, written before that epoch's checkpoint.
PENDING_HISTORY = ".history.pending.csv"


def check_path_name(value, what):
    """Return ``value`` if it can name a folder of a run (one safe path component), else raise."""
    return safe_name(value, what, " (runs stay inside --workdir)")


def run_dir(workdir, label, model_name, trial, seed):
    """The folder of one run; ``label`` and ``model_name`` must be single safe path components."""
    check_path_name(label, "The label")
    check_path_name(model_name, "The model name")
    return pathlib.Path(workdir) / label / f"{model_name}_t{trial}_s{seed}"


@contextlib.contextmanager
def locked(folder, action="train"):
    """Hold ``folder``'s lock (``folder/.lock``) while training or evaluating it.

    A second process stops at once with a message naming the holder's PID (from ``.lock.owner``).
    The same process may nest it (training, then evaluating): ``filelock``'s singleton lock is one
    object per path in a process, and counts its acquisitions.
    """
    folder = pathlib.Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(folder / LOCK), timeout=0, is_singleton=True, thread_local=False)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise BioflowError(f"{folder} is in use: {_owner(folder)}. Two processes must not share a run "
                           "directory; wait for that one to finish, or stop it.") from None
    if lock.lock_counter == 1:
        with contextlib.suppress(OSError):  # who holds it is for messages only (the disk may be full)
            atomic_write(folder / OWNER, json.dumps(dict(
                pid=os.getpid(), host=socket.gethostname(), action=action, command=" ".join(sys.argv),
                since=datetime.datetime.now().astimezone().isoformat(timespec="seconds"))) + "\n")
    try:
        yield folder
    finally:
        if lock.lock_counter == 1:
            with contextlib.suppress(OSError):
                (folder / OWNER).unlink()
        lock.release()


def _owner(folder):
    try:
        owner = json.loads((folder / OWNER).read_text())
        return (f"process {owner['pid']} on {owner['host']} holds it ({owner['action']} since {owner['since']}: "
                f"{owner['command']})")
    except (OSError, ValueError, KeyError, TypeError):
        return "another process holds its lock (its PID is not recorded yet)"


def is_empty(folder):
    """True when ``folder`` holds nothing but its lock files."""
    return all(p.name in (LOCK, OWNER) for p in pathlib.Path(folder).iterdir())


def clear(folder):
    """Delete everything in ``folder`` except its lock files (``--clean`` under the lock)."""
    for path in pathlib.Path(folder).iterdir():
        if path.name in (LOCK, OWNER):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


@contextlib.contextmanager
def sigterm_as_interrupt():
    """Turn SIGTERM into ``KeyboardInterrupt`` (main thread only), so cleanup code runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, _frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def read_json(path):
    """The JSON object in ``path``, None when the file does not exist; a clear error when it is corrupt."""
    path = pathlib.Path(path)
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text())
    except (ValueError, RecursionError) as err:  # includes an empty file and invalid UTF-8
        raise BioflowError(f"{path} is corrupt ({type(err).__name__}: {str(err)[:200]}). Restore it, or pass "
                           "--clean to start the run over.") from None
    if not isinstance(value, dict):
        raise BioflowError(f"{path} is corrupt: it holds a JSON {type(value).__name__}, not an object. Restore it, "
                           "or pass --clean to start the run over.")
    return value


def write_history(path, rows):
    """Write the per-epoch rows (dicts with HISTORY_COLUMNS) as CSV."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=HISTORY_COLUMNS)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k) for k in HISTORY_COLUMNS})
    atomic_write(path, buf.getvalue())


def read_history(path):
    """The rows of a history CSV (``[]`` when it does not exist); a clear error when it is corrupt."""
    path = pathlib.Path(path)
    if not path.is_file():
        return []
    try:
        with path.open() as f:
            return [{k: (int(v) if k == "epoch" else float(v)) for k, v in row.items()} for row in csv.DictReader(f)]
    except (ValueError, TypeError, csv.Error) as err:
        raise BioflowError(f"{path} is corrupt ({err}). Restore it, or pass --clean to start the run over.") from None


def committed_history(run, checkpoint_epochs, fell_back=False):
    """``history.csv`` of a run whose newest checkpoint holds ``checkpoint_epochs`` epochs.

    An epoch is committed by writing :data:`PENDING_HISTORY`, then its checkpoint, then renaming
    the pending file to ``history.csv``. A pending file that matches the checkpoint is therefore
    completed here, and one that runs ahead of it (the checkpoint was never written) is dropped.
    A ``history.csv`` that disagrees with the checkpoint is refused: the history is never cut,
    except after ``fell_back`` to an older checkpoint because the newest was corrupt: the epochs
    after it are lost with their checkpoint and are trained again.
    """
    run = pathlib.Path(run)
    pending = run / PENDING_HISTORY
    if pending.exists():
        if len(read_history(pending)) == checkpoint_epochs:
            os.replace(pending, run / "history.csv")
        else:
            pending.unlink()
    rows = read_history(run / "history.csv")
    if fell_back and len(rows) > checkpoint_epochs:
        rows = rows[:checkpoint_epochs]
        write_history(run / "history.csv", rows)
    if len(rows) != checkpoint_epochs or [r["epoch"] for r in rows] != list(range(len(rows))):
        where = (f"the newest checkpoint holds {checkpoint_epochs}" if checkpoint_epochs else
                 "there is no checkpoint (checkpoints/ is missing or empty)")
        raise BioflowError(f"{run / 'history.csv'} records {len(rows)} epochs, but {where}. Resuming would "
                           "retrain those epochs and lose their history; restore the checkpoints, or pass "
                           "--clean to start the run over.")
    return rows


def newest_intact_checkpoint(run):
    """``(path or None, [corrupt paths])``: the newest checkpoint of ``run`` whose every tensor reads back.

    A run keeps its last two checkpoints, so a truncated newest one (a disk that filled, a copy cut
    short) falls back to the one before it. When every checkpoint is corrupt, a
    :class:`BioflowError` names them and ``--clean``.
    """
    import tensorflow as tf

    folder = pathlib.Path(run) / "checkpoints"
    try:
        state = tf.train.get_checkpoint_state(str(folder))
    except (tf.errors.OpError, ValueError) as err:  # a damaged 'checkpoint' index file
        raise BioflowError(f"{folder / 'checkpoint'} is corrupt ({type(err).__name__}). Restore it, or pass --clean "
                           "to start the run over.") from None
    if state is None:
        return None, []
    paths = list(state.all_model_checkpoint_paths) or [state.model_checkpoint_path]
    corrupt = []
    for path in reversed(paths):
        try:
            reader = tf.train.load_checkpoint(path)
            for name in reader.get_variable_to_shape_map():
                reader.get_tensor(name)
            return path, corrupt
        except (tf.errors.OpError, ValueError, IndexError, OSError):
            corrupt.append(path)
    names = ", ".join(pathlib.Path(p).name for p in corrupt)
    raise BioflowError(f"Every checkpoint of {run} is corrupt or truncated ({names}), so the run cannot resume. "
                       "Pass --clean to start it over.")


def commit_epoch(run, rows, save_checkpoint):
    """Record ``rows`` (the history including the new epoch) and that epoch's checkpoint, in that order."""
    run = pathlib.Path(run)
    write_history(run / PENDING_HISTORY, rows)
    save_checkpoint()
    os.replace(run / PENDING_HISTORY, run / "history.csv")


def load_run(run_dir, force=False):
    """``(model, run_info)`` of a finished run directory, loading the model with Keras' safe mode.

    A run that is not complete (still training, stopped or failed) is refused unless ``force``:
    its ``model.keras`` would be an older model than its checkpoints.
    """
    run = pathlib.Path(run_dir)
    path = run / "model.keras"
    if not path.is_file():
        raise BioflowError(f"{run} has no model.keras: it is not a finished bioflow run (train it first, "
                           "or give the run directory that `bioflow train` printed).")
    info = read_json(run / "run.json")
    if not info or not isinstance(info.get("data"), dict):
        raise BioflowError(f"{run} has no run.json with the data statistics the model was trained with.")
    if info.get("status") != "complete" and not force:
        raise BioflowError(f"{run} is not a complete run (status {info.get('status')!r}): its model.keras may be "
                           "older than its training. Finish the run first, or pass --force (evaluate.force) to "
                           "evaluate that model.keras anyway.")
    try:
        model = keras.saving.load_model(path, safe_mode=True)
    except Exception as err:  # a truncated zip, a damaged weights file: Keras raises many types
        first = (str(err).splitlines() or [""])[0][:200]
        raise BioflowError(f"{path} is corrupt or truncated and cannot be loaded ({type(err).__name__}: {first}). "
                           "Restore it, or retrain the run with --clean.") from None
    weights.check_finite(model, str(path))
    return model, info


def plot_learning_curves(path, rows, title):
    """Loss and accuracy per epoch (training and validation) as a PNG, via Altair and vl-convert."""
    if not rows:
        return
    chart = learning_curves(pd.DataFrame(rows).assign(Model=title, Entry=title), width=260, height=180)
    with atomic_path(path) as tmp_png:
        chart.save(str(tmp_png), format="png")
