"""Per-class metrics and disparity summaries (the `MetricFrame.by_group` idea, by class)."""

from __future__ import annotations

from collections.abc import Sequence
from statistics import NormalDist

import numpy as np
import pandas as pd


def confusion_matrix(labels, preds, num_classes: int) -> np.ndarray:
    """Rows are true classes, columns predicted classes."""
    labels, preds = np.asarray(labels, dtype=np.int64), np.asarray(preds, dtype=np.int64)
    return np.bincount(labels * num_classes + preds, minlength=num_classes**2).reshape(num_classes, num_classes)


def wilson_interval(correct, n, confidence: float = 0.95):
    """Wilson score interval of a binomial proportion (arrays in, arrays out; NaN where n = 0)."""
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    k, n = np.asarray(correct, dtype=float), np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        # the interval holds p exactly; at k = 0 or k = n rounding can put a bound 1e-17 past it
        low, high = np.clip(np.minimum(centre - half, p), 0, 1), np.clip(np.maximum(centre + half, p), 0, 1)
    if low.ndim == 0:
        return float(low), float(high)
    return low, high


def per_class_table(labels, preds, classes: Sequence[str], confidence: float = 0.95) -> pd.DataFrame:
    """One row per class: n, correct, accuracy and its Wilson interval."""
    cm = confusion_matrix(labels, preds, len(classes))
    n = cm.sum(1)
    correct = np.diag(cm)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.where(n > 0, correct / np.maximum(n, 1), np.nan)
    low, high = wilson_interval(correct, n, confidence)
    return pd.DataFrame({"class": list(classes), "n": n.astype(int), "correct": correct.astype(int),
                         "accuracy": acc, "ci_low": low, "ci_high": high})


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
