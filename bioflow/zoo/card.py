"""Publishing: a finished run directory → a staged zoo entry with its ``card.json``.

The card records who made the entry (versions, git commit), what it was trained on (data set and
normalisation statistics), what it is (architecture, filter-bank, bottleneck and recurrence
settings, parameter counts), how well it does (headline metrics) and the sha256 and size of
every other file in the entry.
"""
import json
import pathlib
import shutil

import bioflow
from bioflow.errors import BioflowError
from bioflow.model import describe
from bioflow.summary import model_summary
from bioflow.zoo import naming
from bioflow.zoo.local import CARD, Zoo, sha256_file, utc_now

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


def architecture(model):
    """``describe(model)`` plus the settings of its filter-bank, bottleneck and recurrent layers."""
    arch = describe(model)
    arch.update(filter_bank=_layer_settings(model, "v1_"), bottleneck_layers=_layer_settings(model, "retina_"),
                recurrence_layers=_layer_settings(model, "recurrent_"))
    return json.loads(json.dumps(arch, default=str))  # tuples and numpy scalars → JSON types


def headline_metrics(run_dir, info):
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


def stage_run(run_dir, folder, name, version):
    """Copy a run's files into ``folder`` and write its ``card.json``. Returns the card."""
    from bioflow.evaluate import load_run

    run = pathlib.Path(run_dir)
    model, info = load_run(run)
    if info.get("status") != "complete":
        raise BioflowError(f"{run} is not a complete run (status {info.get('status')!r}); finish training first.")
    for rel in RUN_FILES:
        if not (run / rel).is_file():
            raise BioflowError(f"{run} has no {rel}; it cannot be published.")
        shutil.copy2(run / rel, folder / rel)
    if (run / "results").is_dir():
        shutil.copytree(run / "results", folder / "results")
    files = {p.relative_to(folder).as_posix(): dict(sha256=sha256_file(p), size=p.stat().st_size)
             for p in sorted(folder.rglob("*")) if p.is_file()}
    counts = model_summary(model)
    card = dict(
        name=name, version=version, created=utc_now(),
        versions=dict(info.get("versions", {}), published_with=bioflow.__version__),
        git_commit=info.get("git_commit"),
        run=dict(model=info.get("model", model.name), label=info.get("label"), trial=info.get("trial"),
                 seed=info.get("seed"), weights=info.get("weights"), epochs=info.get("epochs_completed"),
                 strategy=info.get("strategy"), global_batch=info.get("global_batch")),
        data=info["data"],
        architecture=architecture(model),
        parameters={k: counts[k] for k in ("total_params", "trainable_params", "non_trainable_params")},
        input_shape=list(model.input_shape[1:]),
        metrics=headline_metrics(run, info),
        files=files,
    )
    (folder / CARD).write_text(json.dumps(card, indent=2) + "\n")
    return card


def publish(run_dir, name, version=None, root=None):
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


def published_as(run_dir, name, root=None):
    """The version of ``name`` whose ``model.keras`` is this run's, or None."""
    zoo = Zoo(root)
    model = pathlib.Path(run_dir) / "model.keras"
    if not model.is_file():
        return None
    digest = sha256_file(model)
    for version in reversed(zoo.versions(name)):
        if zoo.card(f"{name}@{version}").get("files", {}).get("model.keras", {}).get("sha256") == digest:
            return version
    return None
