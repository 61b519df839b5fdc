"""Robustness summaries (docs/science.md, "Results"): AUC over levels, ratios to a reference, and trial statistics."""
import math

import numpy as np
import pandas as pd

from bioflow.errors import BioflowError


def auc(levels, accuracies):
    """Area under the accuracy-versus-level curve by the trapezoid rule over the level values.

    Levels are sorted first, so decreasing level lists (high pass, contrast, darken) give a
    positive area.
    """
    levels, accuracies = np.asarray(levels, np.float64), np.asarray(accuracies, np.float64)
    if levels.shape != accuracies.shape or levels.size < 2:
        raise BioflowError(f"AUC needs at least two (level, accuracy) pairs of equal length, got {levels.size} "
                           f"levels and {accuracies.size} accuracies.")
    order = np.argsort(levels)
    x, y = levels[order], accuracies[order]
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2))


def auc_table(perturbation):
    """AUC per (Model, Trial, Noise) from a tidy perturbation table (the columns of docs/science.md, "Results")."""
    rows = []
    keys = [k for k in ("Model", "Trial", "Set", "Noise") if k in perturbation.columns]
    for key, group in perturbation.groupby(keys, sort=False):
        rows.append(dict(zip(keys, key if isinstance(key, tuple) else (key,)),
                         AUC=auc(group["Level"], group["Accuracy"])))
    return pd.DataFrame(rows)


def ratio_to_reference(aucs, reference, on=("Noise",), value="AUC"):
    """Each model's mean ``value`` divided by the reference model's, per ``on`` group."""
    if reference not in set(aucs["Model"]):
        raise BioflowError(f"Reference model {reference!r} is not among {sorted(set(aucs['Model']))}.")
    means = aucs.groupby(["Model", *on], sort=False)[value].mean().reset_index()
    ref = means[means["Model"] == reference].drop(columns="Model").rename(columns={value: "Reference"})
    out = means.merge(ref, on=list(on))
    out["Ratio"] = out[value] / out["Reference"]
    return out


# Two-sided 95% Student t quantiles for 1..30 degrees of freedom.
_T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


def mean_ci(values, confidence=0.95):
    """``(mean, half_width)`` of a Student-t confidence interval over trials (half width 0 for one)."""
    if confidence != 0.95:
        raise BioflowError("Only 95% confidence intervals are supported.")
    v = np.asarray(values, np.float64)
    if v.size == 0:
        raise BioflowError("mean_ci needs at least one value.")
    if v.size == 1:
        return float(v[0]), 0.0
    t = _T95[v.size - 2] if v.size - 1 <= len(_T95) else 1.960  # normal quantile beyond 30 df
    return float(v.mean()), float(t * v.std(ddof=1) / math.sqrt(v.size))
