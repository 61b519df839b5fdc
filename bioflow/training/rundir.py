"""The run directory: its layout and atomic writes of its files.

    <workdir>/<label>/<model>_t<trial>_s<seed>/
        operative_config.gin  history.csv  run.json  learning_curves.png  model.keras
        checkpoints/  logs/ (TensorBoard)  results/ (bioflow.evaluate)
"""
import csv
import io
import json
import os
import pathlib
import tempfile

HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr")


def run_dir(workdir, label, model_name, trial, seed):
    """The folder of one run."""
    return pathlib.Path(workdir) / label / f"{model_name}_t{trial}_s{seed}"


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


_MODE = 0o666 & ~_umask()  # what open() would give; mkstemp alone gives 0600


def atomic_write(path, data):
    """Write ``data`` (str or bytes) to ``path`` through a temp file and a rename."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _MODE)
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path, obj):
    atomic_write(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path):
    path = pathlib.Path(path)
    return json.loads(path.read_text()) if path.is_file() else None


def write_history(path, rows):
    """Write the per-epoch rows (dicts with HISTORY_COLUMNS) as CSV."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=HISTORY_COLUMNS)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k) for k in HISTORY_COLUMNS})
    atomic_write(path, buf.getvalue())


def read_history(path):
    path = pathlib.Path(path)
    if not path.is_file():
        return []
    with path.open() as f:
        return [{k: (int(v) if k == "epoch" else float(v)) for k, v in row.items()} for row in csv.DictReader(f)]


def plot_learning_curves(path, rows, title):
    """Loss and accuracy per epoch (training and validation) as a PNG, via Altair and vl-convert."""
    import altair as alt
    import pandas as pd

    if not rows:
        return
    df = pd.DataFrame(rows)
    long = pd.concat([
        pd.DataFrame({"epoch": df["epoch"] + 1, "value": df[f"{prefix}{m}"], "metric": m,
                      "split": "validation" if prefix else "training"})
        for m in ("loss", "accuracy") for prefix in ("", "val_")])
    chart = alt.Chart(long).mark_line(point=True).encode(
        x=alt.X("epoch:Q", title="epoch"), y=alt.Y("value:Q", title=None), color="split:N",
        tooltip=["epoch", "split", "metric", alt.Tooltip("value:Q", format=".4f")],
    ).properties(width=260, height=180).facet(column=alt.Column("metric:N", title=None)).resolve_scale(
        y="independent").properties(title=title)
    with tempfile.TemporaryDirectory(dir=pathlib.Path(path).parent) as tmp:
        tmp_png = pathlib.Path(tmp) / "curves.png"
        chart.save(str(tmp_png), format="png")
        os.replace(tmp_png, path)
