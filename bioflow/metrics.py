"""Robustness summaries (docs/science.md, "Results"): AUC over levels, ratios to a reference, and trial statistics."""
import math

import numpy as np
import pandas as pd
from scipy import stats

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
    return float(np.trapezoid(accuracies[order], levels[order]))


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


def mean_ci(values, confidence=0.95):
    """``(mean, half_width)`` of a two-sided Student-t confidence interval over trials (half width 0 for one)."""
    if not 0 < confidence < 1:
        raise BioflowError(f"confidence must be between 0 and 1, got {confidence!r}.")
    v = np.asarray(values, np.float64)
    if v.size == 0:
        raise BioflowError("mean_ci needs at least one value.")
    if v.size == 1:
        return float(v[0]), 0.0
    t = stats.t.ppf((1 + confidence) / 2, df=v.size - 1)
    return float(v.mean()), float(t * v.std(ddof=1) / math.sqrt(v.size))
