"""A sweep's status files: ``WORKDIR/LABEL/sweep.json`` and ``sweep.csv``, one row per cell.

Both are rewritten atomically whenever a cell changes state, so that ``bioflow sweep --status``
(or a rerun) always reads a whole table.
"""
import json
import pathlib

import pandas as pd

from bioflow.errors import BioflowError
from bioflow.io import atomic_write, write_json

#: The columns every row has (the axes come after ``trial``).
COLUMNS = ("cell", "trial", "status", "attempts", "run_dir", "val_accuracy", "clean_accuracy", "zoo_entry", "error")


def folder_of(workdir, label):
    """Where a sweep's status files live: the label's folder of the run directories."""
    return pathlib.Path(workdir) / label


def read(folder):
    """``{cell id: row}`` from ``sweep.json`` (empty when there is none); a damaged file is an error."""
    path = pathlib.Path(folder) / "sweep.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
        rows = data["cells"]
        if not isinstance(rows, list) or not all(isinstance(r, dict) and isinstance(r.get("cell"), str)
                                                  for r in rows):
            raise ValueError("cells must be a list of objects with a 'cell' id")
    except (ValueError, KeyError, TypeError) as err:
        raise BioflowError(f"{path} is not a sweep status file ({err}); move it away to start the sweep afresh.") \
            from err
    return {r["cell"]: r for r in rows}


def write(folder, rows, axes, meta):
    """Write ``sweep.json`` (rows and ``meta``) and ``sweep.csv`` (one row per cell) atomically."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ordered = list(rows.values())
    write_json(folder / "sweep.json", dict(meta, axes=list(axes), cells=ordered))
    columns = ["cell", "trial", *axes, *[c for c in COLUMNS if c not in ("cell", "trial")]]
    table = pd.DataFrame([{c: row.get(c) for c in columns} for row in ordered], columns=columns)
    atomic_write(folder / "sweep.csv", table.to_csv(index=False))


def summary_line(rows):
    """``'4 cells: 3 complete, 1 failed'``."""
    counts = {}
    for row in rows.values():
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    return f"{len(rows)} cells: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
