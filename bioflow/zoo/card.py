"""Publishing: a finished run directory → a staged zoo entry with its ``card.json``.

The card records who made the entry (versions, git commit), what it was trained on (data set and
normalisation statistics), what it is (architecture, filter-bank, bottleneck and recurrence
settings, parameter counts), how well it does (headline metrics) and the sha256 and size of
every other file in the entry.
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import stat

import keras

from bioflow import architecture as architecture_lib
from bioflow._version import __version__
from bioflow.errors import BioflowError
from bioflow.io import PathLike, atomic_write
from bioflow.training import rundir
from bioflow.zoo import checks, naming
from bioflow.zoo.local import CARD, Zoo, file_kind, sha256_file, utc_now, walk

#: Files copied from the run directory (``results/`` is copied whole when present).
RUN_FILES = ("model.keras", "operative_config.gin", "history.csv")
_LAYER_KEYS_DROPPED = ("name", "dtype", "trainable")


def _layer_settings(model, prefix):
    """``{layer name: config}`` of the layers whose name starts with ``prefix``."""
    out = {}
    for layer in model.layers:
        if layer.name.startswith(prefix):
            config = {k: v for k, v in layer.get_config().items() if k not in _LAYER_KEYS_DROPPED}
            out[layer.name] = dict(config, trainable=bool(layer.trainable))
    return out


def architecture(model: keras.Model, info: dict) -> dict:
    """The run's architecture record plus the settings of its filter-bank, bottleneck and recurrent layers."""
    arch = architecture_lib.read(info, model).to_dict()
    arch.update(filter_bank=_layer_settings(model, "v1_"), bottleneck_layers=_layer_settings(model, "retina_"),
                recurrence_layers=_layer_settings(model, "recurrent_"))
    return json.loads(json.dumps(arch, default=str))  # tuples and numpy scalars → JSON types


def headline_metrics(run_dir: PathLike, info: dict) -> dict:
    """Clean accuracy, CIFAR-10G accuracies and AUC per noise from ``results/robustness.json``."""
    robustness = pathlib.Path(run_dir) / "results" / "robustness.json"
    final = info.get("final") or {}
    metrics = dict(final_val_accuracy=final.get("val_accuracy"), clean_accuracy=None, n_images=None,
                   generalisation={}, auc={})
    if robustness.is_file():
        summary = json.loads(robustness.read_text())
        metrics.update(clean_accuracy=summary.get("clean_accuracy"), n_images=summary.get("n_images"),
                       generalisation=summary.get("generalisation", {}), auc=summary.get("auc", {}))
    return metrics


def publishable_files(run):
    """The run's files to publish (``RUN_FILES`` and all of ``results/``), relative to the run.

    Only regular files are published, and links are never followed: a symbolic link (which could
    point at a private key), a FIFO, a socket or a device is refused with its name.
    """
    run = pathlib.Path(run)
    files, bad = [], []

    def add(path):
        kind = file_kind(path)
        rel = path.relative_to(run).as_posix()
        if kind == "regular file":
            files.append(rel)
        elif kind == "symbolic link":
            bad.append(f"{rel} (a symbolic link to {os.readlink(path)})")
        elif kind != "directory":
            bad.append(f"{rel} (a {kind})")

    for rel in RUN_FILES:
        if file_kind(run / rel) == "missing":
            raise BioflowError(f"{run} has no {rel}; it cannot be published.")
        add(run / rel)
    if file_kind(run / "results") == "directory":
        for path in walk(run / "results"):
            add(path)
    elif file_kind(run / "results") != "missing":
        add(run / "results")
    if bad:
        raise BioflowError(f"{run} holds files that are not regular files: {', '.join(bad)}. bioflow publishes only "
                           "regular files and never follows links; remove them, or replace them with copies.")
    return files


def _copy_regular(src, dst):
    """Copy ``src`` to ``dst`` only if ``src`` is a regular file (opened without following a link)."""
    try:
        fd = os.open(src, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as err:
        raise BioflowError(f"Cannot publish {src}: {err.strerror} (it must be a regular file).") from err
    with os.fdopen(fd, "rb") as source:
        if not stat.S_ISREG(os.fstat(source.fileno()).st_mode):
            raise BioflowError(f"Cannot publish {src}: it is not a regular file.")
        dst.parent.mkdir(parents=True, exist_ok=True)
        with open(dst, "wb") as target:
            shutil.copyfileobj(source, target)


def stage_run(run_dir: PathLike, folder: pathlib.Path, name: str, version: str) -> dict:
    """Copy a run's files into ``folder`` and write its ``card.json``. Returns the card.

    The staged entry must pass the checks a pull makes (:mod:`bioflow.zoo.checks`), so that every
    published entry can be pulled.
    """
    run = pathlib.Path(run_dir)
    sources = publishable_files(run)
    model, info = rundir.load_run(run)
    for rel in sources:
        _copy_regular(run / rel, folder / rel)
    problems = checks.entry_problems(folder, str(run), model_loaded=True)  # load_run loaded and checked it
    if problems:
        reasons = "; ".join(p.rstrip(".") for p in problems)
        raise BioflowError(f"{run} cannot be published, because a pull would refuse it: {reasons}.")
    files = {rel: dict(sha256=sha256_file(folder / rel), size=(folder / rel).stat().st_size) for rel in sorted(sources)}
    counts = architecture_lib.parameter_counts(model)
    card = dict(
        name=name, version=version, created=utc_now(),
        versions=dict(info.get("versions", {}), published_with=__version__),
        git_commit=info.get("git_commit"),
        run=dict(model=info.get("model", model.name), label=info.get("label"), trial=info.get("trial"),
                 seed=info.get("seed"), weights=info.get("weights"), epochs=info.get("epochs_completed"),
                 strategy=info.get("strategy"), global_batch=info.get("global_batch")),
        data=info["data"],
        architecture=architecture(model, info),
        parameters=counts,
        input_shape=list(model.input_shape[1:]),
        metrics=headline_metrics(run, info),
        files=files,
    )
    atomic_write(folder / CARD, json.dumps(card, indent=2) + "\n")
    return card


def publish(run_dir: PathLike, name: str, version: str | None = None, root: PathLike | None = None) -> pathlib.Path:
    """Publish a finished run as ``name@version`` (default: the next minor version, or 1.0.0).

    The entry is staged inside the zoo, then renamed into place under the zoo's lock; an existing
    version is refused. Returns the entry's folder.
    """
    zoo = Zoo(root)
    naming.check_name(name)
    if version is not None:
        naming.check_version(version)
        if version in zoo.versions(name):  # early refusal; commit() checks again under the lock
            raise zoo.taken(name, version)
    with zoo.staging(f"publish-{name}-") as folder:
        stage_run(run_dir, folder, name, version or "pending")
        return zoo.commit(folder, name, version)


def published_as(run_dir: PathLike, name: str, root: PathLike | None = None) -> str | None:
    """The version of ``name`` whose ``model.keras`` is this run's, or None."""
    zoo = Zoo(root)
    model = pathlib.Path(run_dir) / "model.keras"
    if not model.is_file():
        return None
    digest = sha256_file(model)
    for version in reversed(zoo.versions(name)):
        try:
            card = zoo.card(f"{name}@{version}")
        except BioflowError:
            continue  # a corrupt card is no evidence either way
        if card["files"].get("model.keras", {}).get("sha256") == digest:
            return version
    return None


def check_publishable(run_dir: PathLike, spec: str, root: PathLike | None = None, clean: bool = False) -> None:
    """Refuse, before a run trains, a ``publish`` spec (``NAME[@VERSION]``) that could not be published.

    A bad name or version is an error, and so is a version that the zoo holds for another model
    (the run itself may already be it, unless ``clean`` retrains the run).
    """
    name, version = naming.parse_spec(spec)
    zoo = Zoo(root)
    this_run = None if clean else published_as(run_dir, name, root)
    if version in zoo.versions(name) and this_run != version:
        raise zoo.taken(name, version)


def publish_once(run_dir: PathLike, spec: str, root: PathLike | None = None) -> tuple[pathlib.Path | None, str]:
    """Publish a finished run as ``spec`` unless it is already in the zoo under that name.

    Returns ``(folder or None, message)``: a rerun of a published run publishes nothing.
    """
    name, version = naming.parse_spec(spec)
    existing = published_as(run_dir, name, root)
    if existing is not None:
        return None, f"This run is already in the zoo as {name}@{existing}."
    folder = publish(run_dir, name, None if version == naming.LATEST else version, root)
    return folder, f"Published to the zoo: {folder}"
