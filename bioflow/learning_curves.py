"""The learning-curve chart: one Altair chart for a run's ``learning_curves.png`` and for reports."""
from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    import altair as alt

#: The history columns charted: (column prefix, split name) for each metric.
SPLITS = (("", "training"), ("val_", "validation"))
METRICS = ("loss", "accuracy")


def long_history(history: pd.DataFrame) -> pd.DataFrame:
    """``history.csv`` rows (with ``Model`` and ``Entry`` columns) → one row per (epoch, metric, split)."""
    frames = [pd.DataFrame({"Model": history["Model"], "Entry": history["Entry"], "Epoch": history["epoch"] + 1,
                            "Metric": metric, "Split": split, "Value": history[f"{prefix}{metric}"]})
              for metric in METRICS for prefix, split in SPLITS if f"{prefix}{metric}" in history]
    return pd.concat(frames, ignore_index=True)


def learning_curves(history: pd.DataFrame, width: int = 220, height: int = 130) -> alt.FacetChart | None:
    """Loss and accuracy per epoch, training and validation: one row of panels per ``Model``.

    ``history`` holds ``history.csv`` rows plus ``Model`` and ``Entry`` (the run or zoo entry each
    row comes from; entries of one model are drawn as separate lines). None when there is nothing to draw.
    """
    if history.empty or "loss" not in history:
        return None
    import altair as alt  # here: every bioflow process imports this module, few draw

    chart = alt.Chart(long_history(history)).mark_line(point=True).encode(
        x=alt.X("Epoch:Q"), y=alt.Y("Value:Q", title=None), color=alt.Color("Split:N", title="split"),
        detail="Entry:N",
        tooltip=["Entry:N", "Split:N", "Metric:N", "Epoch:Q", alt.Tooltip("Value:Q", format=".4f")])
    return chart.properties(width=width, height=height).facet(
        row=alt.Row("Model:N", title=None), column=alt.Column("Metric:N", title=None)).resolve_scale(y="independent")
