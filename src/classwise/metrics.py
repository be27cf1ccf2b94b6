"""Per-class metrics and disparity summaries (the `MetricFrame.by_group` idea, by class)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import binomtest
from sklearn.metrics import confusion_matrix as _sk_confusion


def confusion_matrix(labels, preds, num_classes: int) -> np.ndarray:
    """Rows are true classes, columns predicted classes."""
    return _sk_confusion(np.asarray(labels), np.asarray(preds), labels=np.arange(num_classes))


def wilson_interval(correct: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    if n == 0:
        return math.nan, math.nan
    ci = binomtest(int(correct), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def per_class_table(labels, preds, classes: Sequence[str], confidence: float = 0.95) -> pd.DataFrame:
    """One row per class: n, correct, accuracy and its Wilson interval."""
    cm = confusion_matrix(labels, preds, len(classes))
    n = cm.sum(1)
    correct = np.diag(cm)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.where(n > 0, correct / np.maximum(n, 1), np.nan)
    ci = [wilson_interval(k, m, confidence) for k, m in zip(correct, n, strict=True)]
    return pd.DataFrame({
        "class": list(classes), "n": n.astype(int), "correct": correct.astype(int), "accuracy": acc,
        "ci_low": [c[0] for c in ci], "ci_high": [c[1] for c in ci],
    })


def disparity(accuracy: Sequence[float], classes: Sequence[str]) -> dict:
    """Mean over classes, worst and best class, population std and max-min gap.
    Classes without examples (NaN) are left out; `worst_tied` lists every class at the minimum."""
    acc = np.asarray(accuracy, dtype=float)
    ok = ~np.isnan(acc)
    if not ok.any():
        raise ValueError("no class has any example")
    names = np.asarray(classes, dtype=object)[ok]
    vals = acc[ok]
    worst, best = int(np.argmin(vals)), int(np.argmax(vals))
    return {
        "mean": float(vals.mean()),
        "std": float(vals.std()),
        "gap": float(vals.max() - vals.min()),
        "worst_class": str(names[worst]), "worst": float(vals[worst]),
        "best_class": str(names[best]), "best": float(vals[best]),
        "worst_tied": [str(v) for v in names[vals == vals[worst]]],
    }
