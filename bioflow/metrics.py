"""Metrics: loss and accuracy over batches (training and evaluation), and the robustness summaries
of docs/science.md, "Results": AUC over levels, ratios to a reference, and trial statistics."""
import math
from typing import Sequence

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from bioflow.errors import BioflowError


def batch_totals(labels, probs, per_example=None) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """``(summed cross-entropy, correct predictions, examples)`` of one batch, as float32 tensors.

    ``per_example``: the batch's cross-entropy when the caller has it already (the training step).
    """
    if per_example is None:
        per_example = keras.losses.sparse_categorical_crossentropy(labels, probs)
    correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(probs, -1), tf.cast(labels, tf.int64)), tf.float32))
    return tf.reduce_sum(per_example), correct, tf.cast(tf.shape(labels)[0], tf.float32)


class LossAccuracy:
    """Running sums of :func:`batch_totals` over batches; :meth:`result` gives mean loss and accuracy."""

    def __init__(self):
        self.loss = self.correct = self.count = 0.0

    def add(self, totals) -> tuple[float, float, float]:
        """Add one batch's ``(loss sum, correct, examples)``; returns the totals as floats."""
        loss, correct, count = (float(t) for t in totals)
        self.loss, self.correct, self.count = self.loss + loss, self.correct + correct, self.count + count
        return loss, correct, count

    def result(self, what: str = "The data set") -> tuple[float, float]:
        """``(mean loss, accuracy)``; an error naming ``what`` when no example was added."""
        if self.count == 0:
            raise BioflowError(f"{what} is empty.")
        return self.loss / self.count, self.correct / self.count


def auc(levels: Sequence[float], accuracies: Sequence[float]) -> float:
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


def auc_table(perturbation: pd.DataFrame) -> pd.DataFrame:
    """AUC per (Model, Trial, Noise) from a tidy perturbation table (the columns of docs/science.md, "Results")."""
    rows = []
    keys = [k for k in ("Model", "Trial", "Set", "Noise") if k in perturbation.columns]
    for key, group in perturbation.groupby(keys, sort=False):
        rows.append(dict(zip(keys, key if isinstance(key, tuple) else (key,)),
                         AUC=auc(group["Level"], group["Accuracy"])))
    return pd.DataFrame(rows)


def ratio_to_reference(aucs: pd.DataFrame, reference: str, on: Sequence[str] = ("Noise",),
                       value: str = "AUC") -> pd.DataFrame:
    """Each model's mean ``value`` divided by the reference model's, per ``on`` group."""
    if reference not in set(aucs["Model"]):
        raise BioflowError(f"Reference model {reference!r} is not among {sorted(set(aucs['Model']))}.")
    means = aucs.groupby(["Model", *on], sort=False)[value].mean().reset_index()
    ref = means[means["Model"] == reference].drop(columns="Model").rename(columns={value: "Reference"})
    out = means.merge(ref, on=list(on))
    out["Ratio"] = out[value] / out["Reference"]
    return out


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """``(mean, half_width)`` of a two-sided Student-t confidence interval over trials (half width 0 for one)."""
    if not 0 < confidence < 1:
        raise BioflowError(f"confidence must be between 0 and 1, got {confidence!r}.")
    v = np.asarray(values, np.float64)
    if v.size == 0:
        raise BioflowError("mean_ci needs at least one value.")
    if v.size == 1:
        return float(v[0]), 0.0
    from scipy import stats  # here: scipy.stats takes a second to import, and only intervals need it

    t = stats.t.ppf((1 + confidence) / 2, df=v.size - 1)
    return float(v.mean()), float(t * v.std(ddof=1) / math.sqrt(v.size))


# -- common corruptions (docs/evaluation.md, "Common corruptions") -----------------------------------

def _errors_by_corruption(table):
    """``{corruption: errors 1 - accuracy, ordered by severity}`` of one model's corruption table."""
    if table.duplicated(["Corruption", "Severity"]).any():
        raise BioflowError("A corruption table must hold one row per (Corruption, Severity); average the trials "
                           "first.")
    return {c: 1.0 - g.sort_values("Severity")["Accuracy"].to_numpy(np.float64)
            for c, g in table.groupby("Corruption", sort=False)}


def corruption_summary(table: pd.DataFrame) -> dict:
    """One model's CIFAR-10-C numbers from its ``(Corruption, Severity, Accuracy)`` rows.

    * ``corruption_error[c]``: the mean error over c's severities (Hendrycks & Dietterich's
      unnormalised CE);
    * ``mean_corruption_error``: their mean over the corruptions;
    * ``mean_accuracy``: the accuracy over every corruption and severity (RobustBench's CIFAR-10-C
      number: every severity, all images).
    """
    errors = _errors_by_corruption(table)
    ce = {c: float(e.mean()) for c, e in errors.items()}
    return dict(corruption_error=ce, mean_corruption_error=float(np.mean(list(ce.values()))),
                mean_accuracy=float(table["Accuracy"].mean()))


def mce(table: pd.DataFrame, baseline: pd.DataFrame, clean: float | None = None,
        baseline_clean: float | None = None) -> dict:
    """mCE of a model against a baseline model (both ``(Corruption, Severity, Accuracy)`` rows).

    ``CE[c] = Σ_s E[s, c] / Σ_s E_base[s, c]`` and ``mCE`` their mean (Hendrycks & Dietterich 2019,
    with the baseline in place of AlexNet, which CIFAR does not have). With both clean accuracies,
    also ``relative CE[c] = Σ_s (E[s, c] − E_clean) / Σ_s (E_base[s, c] − E_base,clean)`` and the
    relative mCE. Only the corruptions and severities both tables hold count.
    """
    ours, theirs = _errors_by_corruption(table), _errors_by_corruption(baseline)
    shared = [c for c in ours if c in theirs and len(ours[c]) == len(theirs[c])]
    if not shared:
        raise BioflowError("The model and its baseline share no corruption with the same severities.")
    out = dict(ce={c: float(ours[c].sum() / theirs[c].sum()) for c in shared})
    out["mce"] = float(np.mean(list(out["ce"].values())))
    if clean is not None and baseline_clean is not None:
        def relative(c):  # NaN where the baseline's corruption errors equal its clean error
            below = float((theirs[c] - (1 - baseline_clean)).sum())
            return float((ours[c] - (1 - clean)).sum()) / below if below != 0 else float("nan")

        out["relative_ce"] = {c: relative(c) for c in shared}
        out["relative_mce"] = float(np.mean(list(out["relative_ce"].values())))
    return out
