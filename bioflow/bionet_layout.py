"""The original code's CSV result layout (BioNet and the dissertation's fork): read and written.

Reading: ``bioflow report --published DIR`` takes CSV files in either layout the original code left:

* ``model.py``'s: ``results/<label>/metrics/<model>_perturb_<set>_s<seed>.csv``,
  ``<model>_generalise_s<seed>.csv`` and the training logs (Keras' CSVLogger);
* the dissertation's unified one: ``results/metrics/{cifar10, generalisation, perturbed_cifar,
  perturbed_generalisation}/*.csv``.

Files are recognised by their columns, not their names (:data:`KINDS`). The original's noise
and set names are mapped to bioflow's (:data:`NOISES`, :data:`SETS`); an unknown one is an
error that names the file, the row and the known names. Everything in the files is hostile
input, as a zoo entry is: bounded in size, damaged rows named, and shown escaped.

Writing: :func:`write` puts an evaluation's tables in ``model.py``'s layout
(``bioflow evaluate --layout bionet``), so that the original's own analysis scripts read them.
"""
from __future__ import annotations

import dataclasses
import os
import pathlib
import re

import numpy as np
import pandas as pd

from bioflow.errors import BioflowError, choices

#: The original's noise names → bioflow's.
NOISES = {"Uniform": "uniform", "Salt and Pepper": "salt_and_pepper", "High Pass": "high_pass",
          "Low Pass": "low_pass", "Contrast": "contrast", "Phase Scrambling": "phase_scrambling",
          "Darken": "darken", "Brighten": "brighten", "Rotation": "rotation", "Invert": "invert"}
#: The original's set names → bioflow's (the CIFAR-10G sets keep theirs).
CIFAR10G_SETS = ("line_drawings", "line_drawings_inverted", "contours", "contours_inverted", "silhouettes",
                 "silhouettes_inverted")
SETS = {"CIFAR10": "test", **{s: s for s in CIFAR10G_SETS}}
#: The columns that say what a file holds.
KINDS = {
    "perturbation": ("Model", "Convolution", "Base", "Weights", "Trial", "Seed", "Set", "Noise", "LI", "Level",
                     "Loss", "Accuracy"),
    "generalisation": ("Model", "Convolution", "Base", "Weights", "Trial", "Seed", "Set", "Type", "Inverted", "Loss",
                       "Accuracy"),
    "history": ("epoch", "acc", "loss", "val_acc", "val_loss"),
}
MAX_FILES = 10_000
MAX_FILE_BYTES = 64 << 20
MAX_ROWS = 1_000_000


@dataclasses.dataclass
class Published:
    """The published results of one or more folders, in bioflow's tidy columns."""

    perturbation: pd.DataFrame
    generalisation: pd.DataFrame
    history: pd.DataFrame
    models: list  # one dict per published model: Model, Convolution, Base, Trials, CleanAccuracy, Source
    problems: list


def _key(text):
    """A name as bioflow spells a convolution or base: ``'VGG16'`` → ``'vgg16'``, ``'ALL-CNN'`` → ``'allcnn'``."""
    return re.sub(r"[^a-z0-9]", "", str(text).lower())


def _csv_files(folder):
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise BioflowError(f"--published {folder} is not a folder of published results.")
    files = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            if name.lower().endswith(".csv"):
                files.append(pathlib.Path(dirpath) / name)
                if len(files) > MAX_FILES:
                    raise BioflowError(f"--published {folder} holds more than {MAX_FILES:,} CSV files; give the "
                                       "folder of one study's results.")
    return files


def _read(path, problems):
    """``(kind, table)`` of one CSV file, or ``(None, None)`` with the reason in ``problems``."""
    if path.is_symlink() or not path.is_file():
        problems.append(f"{path}: not a regular file, skipped.")
        return None, None
    if path.stat().st_size > MAX_FILE_BYTES:
        problems.append(f"{path}: larger than {MAX_FILE_BYTES >> 20} MiB, skipped.")
        return None, None
    try:
        table = pd.read_csv(path, nrows=MAX_ROWS + 1)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
        problems.append(f"{path}: not a readable table ({type(err).__name__}), skipped.")
        return None, None
    if len(table) > MAX_ROWS:
        problems.append(f"{path}: more than {MAX_ROWS:,} rows, skipped.")
        return None, None
    table.columns = [str(c).strip() for c in table.columns]
    for kind, columns in KINDS.items():
        if set(columns) <= set(table.columns):
            return kind, table
    problems.append(f"{path}: its columns ({', '.join(map(str, table.columns[:8]))}) are none of the original's "
                    "layouts (perturbation, generalisation or training history), skipped.")
    return None, None


def _numeric(table, columns, path, problems):
    """``table`` without the rows whose ``columns`` are not finite numbers; each dropped row is named."""
    bad = np.zeros(len(table), bool)
    for column in columns:
        values = pd.to_numeric(table[column], errors="coerce")
        bad |= ~np.isfinite(values.to_numpy(dtype=float))
        table[column] = values
    for row in np.flatnonzero(bad)[:5]:
        problems.append(f"{path}, row {row + 2}: {', '.join(columns)} must be numbers; the row is left out.")
    if bad.sum() > 5:
        problems.append(f"{path}: {int(bad.sum()) - 5} more damaged rows are left out.")
    return table[~bad]


def _mapped(table, column, names, path, what):
    """``table[column]`` mapped through ``names``; an unknown value names the file, the row and the known names."""
    values = table[column].astype(str).str.strip()
    unknown = ~values.isin(list(names))
    if unknown.any():
        row = int(np.flatnonzero(unknown.to_numpy())[0])
        raise BioflowError(f"{path}, row {row + 2}: unknown {what} {values.iloc[row]!r}; the known {what}s are "
                           f"{choices(names)}.")
    return values.map(names)


def read(folders, renames=None):
    """Read every published CSV file under ``folders`` (:class:`Published`).

    ``renames`` maps a published model name to the one to show (``{'Gabor_VGG16': 'Baseline'}``): the
    same model may go by two names in two folders, and a training log names its model only by its
    file name (``Gabor_VGG16_1_baseline.csv`` → ``baseline``).
    """
    renames = dict(renames or {})
    problems, pert, gen, hist, logs = [], [], [], [], []
    for folder in folders:
        for path in _csv_files(folder):
            kind, table = _read(path, problems)
            if kind is None:
                continue
            source = f"published:{pathlib.Path(folder).name}/{path.relative_to(folder).as_posix()}"
            if kind == "history":
                logs.append((path.stem, _numeric(table, list(KINDS["history"]), path, problems), source))
                continue
            numeric = ["Level", "LI", "Accuracy", "Loss", "Trial"] if kind == "perturbation" else \
                ["Accuracy", "Loss", "Trial"]
            table = _numeric(table, numeric, path, problems)
            table["Model"] = table["Model"].astype(str).str.strip().map(lambda m: renames.get(m, m))
            table["Convolution"] = table["Convolution"].map(_key)
            table["Base"] = table["Base"].map(_key)
            table["Trial"] = table["Trial"].astype(int)
            table["Entry"] = source
            table["Set"] = _mapped(table, "Set", SETS, path, "set")
            if kind == "perturbation":
                table["Noise"] = _mapped(table, "Noise", NOISES, path, "noise")
                table["LI"] = table["LI"].astype(int)
                pert.append(table)
            else:
                table["Inverted"] = table["Inverted"].astype(str).str.strip().str.lower() == "true"
                gen.append(table)
    known = {m for t in pert + gen for m in t["Model"]} | set(renames)
    for stem, table, source in logs:
        model = _history_model(stem, known)
        hist.append(pd.DataFrame(dict(Model=renames.get(model, model), Entry=source,
                                      epoch=table["epoch"].astype(int), loss=table["loss"], accuracy=table["acc"],
                                      val_loss=table["val_loss"], val_accuracy=table["val_acc"])))
    perturbation = pd.concat(pert, ignore_index=True) if pert else pd.DataFrame(columns=list(KINDS["perturbation"]))
    generalisation = pd.concat(gen, ignore_index=True) if gen else pd.DataFrame(
        columns=list(KINDS["generalisation"]))
    history = pd.concat(hist, ignore_index=True) if hist else pd.DataFrame(columns=["Model", "Entry", "epoch"])
    if perturbation.empty and generalisation.empty and history.empty:
        raise BioflowError(f"No published results found in {', '.join(map(str, folders))}: no CSV file there has the "
                           "columns of the original's perturbation, generalisation or training-history files.")
    return Published(perturbation, generalisation, history, _models(perturbation, generalisation, history), problems)


def _history_model(stem, known):
    """The model a training log belongs to, from its file name: ``model.py`` named it ``<model>_<trial>``
    (a model of the other tables), the dissertation by hand ``…_<trial>_<name>`` (``…_1_baseline``)."""
    base = re.sub(r"_\d+$", "", stem)
    return base if base in known else stem.rsplit("_", 1)[-1]


def _models(perturbation, generalisation, history):
    """One row per published model: its architecture, trial count and clean accuracy (the unperturbed
    test set: the level 0 row of its uniform noise, LI 0)."""
    rows = {}
    for table in (perturbation, generalisation):
        for model, group in table.groupby("Model", sort=False):
            rows.setdefault(model, dict(Model=model, Convolution=group["Convolution"].iloc[0],
                                        Base=group["Base"].iloc[0], Trials=int(group["Trial"].nunique()),
                                        CleanAccuracy=None, Source=group["Entry"].iloc[0]))
    for model, group in history.groupby("Model", sort=False):
        rows.setdefault(model, dict(Model=model, Convolution=None, Base=None, Trials=1, CleanAccuracy=None,
                                    Source=group["Entry"].iloc[0]))
    if not perturbation.empty:
        clean = perturbation[(perturbation["Set"] == "test") & (perturbation["Noise"] == "uniform")
                             & (perturbation["LI"] == 0)]
        for model, group in clean.groupby("Model"):
            rows[model]["CleanAccuracy"] = float(group["Accuracy"].mean())
    return list(rows.values())


def original_auc(levels, accuracies_by_level):
    """The AUC that the original's ``utils.calc_aucs`` computes: trial 1's levels in file order paired with
    the mean accuracies grouped and sorted by level, integrated by the trapezoid rule (scikit-learn's
    ``auc``, which takes the sign of a decreasing x). For noises listed in decreasing order (high pass,
    low pass's inverse, contrast, darken) it integrates a different curve than bioflow's AUC."""
    x, y = np.asarray(levels, np.float64), np.asarray(accuracies_by_level, np.float64)
    if x.shape != y.shape or x.size < 2:
        raise BioflowError(f"The original's AUC needs as many levels as accuracies (at least 2), got {x.size} and "
                           f"{y.size}.")
    steps = np.diff(x)
    if np.all(steps >= 0):
        direction = 1.0
    elif np.all(steps <= 0):
        direction = -1.0
    else:
        raise BioflowError(f"The original's AUC needs monotonic levels, got {x.tolist()}.")
    return float(direction * np.trapezoid(y, x))


def original_aucs(perturbation):
    """``Model, Noise, OriginalAUC``: :func:`original_auc` of every model and noise of a perturbation table
    (its ``Set`` = test rows), levels taken in the table's row order as the original read its file."""
    rows = []
    table = perturbation[perturbation["Set"] == "test"] if "Set" in perturbation else perturbation
    for (model, noise_name), group in table.groupby(["Model", "Noise"], sort=False):
        first = group[group["Trial"] == group["Trial"].min()]
        means = group.groupby("Level")["Accuracy"].mean()  # sorted by level, as pandas groups
        if len(means) != len(first):
            continue
        rows.append(dict(Model=model, Noise=noise_name, OriginalAUC=original_auc(first["Level"], means.to_numpy())))
    return pd.DataFrame(rows, columns=["Model", "Noise", "OriginalAUC"])


def _original_name(text, known):
    """bioflow's spelling of a convolution or base → the original's (``'vgg16'`` → ``'VGG16'``)."""
    return known.get(_key(text), str(text))


#: bioflow's convolutions and bases in the original's spelling (its ``--convolution`` and ``--base``).
CONVOLUTIONS = {_key(n): n for n in ("Original", "Low-pass", "DoG", "Gabor", "Combined")} | {"lowpass": "Low-pass"}
BASES = {"vgg16": "VGG16", "vgg19": "VGG19", "resnet50": "ResNet50", "allcnn": "ALL-CNN"}


def write(folder, perturbation, generalisation, history=None, model=None, trial=1, seed=42):
    """Write an evaluation in ``model.py``'s layout under ``folder``:
    ``metrics/<model>_<trial>_perturb_<set>_s<seed>.csv`` (one per set: ``cifar10`` and each CIFAR-10G
    set), ``metrics/<model>_<trial>_generalise_s<seed>.csv`` and ``logs/<model>_<trial>.csv`` (the
    training history in Keras 2's CSVLogger columns)."""
    folder = pathlib.Path(folder)
    noise_names = {v: k for k, v in NOISES.items()}
    set_names = {v: k for k, v in SETS.items()}
    stem = f"{model}_{trial}"
    from bioflow.io import atomic_write

    def original(table):
        out = table.copy()
        out["Convolution"] = out["Convolution"].map(lambda c: _original_name(c, CONVOLUTIONS))
        out["Base"] = out["Base"].map(lambda b: _original_name(b, BASES))
        out["Set"] = out["Set"].map(lambda s: set_names.get(s, s))
        return out

    pert = original(perturbation)
    unknown = sorted(set(perturbation["Noise"]) - set(noise_names))
    if unknown:
        raise BioflowError(f"The original's layout has no name for the noises {', '.join(unknown)}; it knows "
                           f"{choices(noise_names)}.")
    pert["Noise"] = perturbation["Noise"].map(noise_names)
    for set_name, rows in pert.groupby("Set", sort=False):
        name = "cifar10" if set_name == "CIFAR10" else set_name
        atomic_write(folder / "metrics" / f"{stem}_perturb_{name}_s{seed}.csv",
                     rows[list(KINDS["perturbation"])].to_csv(index=False))
    if not generalisation.empty:
        atomic_write(folder / "metrics" / f"{stem}_generalise_s{seed}.csv",
                     original(generalisation)[list(KINDS["generalisation"])].to_csv(index=False))
    if history is not None and not history.empty:
        logged = pd.DataFrame(dict(epoch=history["epoch"], acc=history["accuracy"], loss=history["loss"],
                                   val_acc=history["val_accuracy"], val_loss=history["val_loss"]))
        atomic_write(folder / "logs" / f"{stem}.csv", logged.to_csv(index=False))
