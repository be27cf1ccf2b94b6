"""Cross-class similarity as the research plan defines it: the cosine similarity between the
mean logit vectors (or mean penultimate features) of two true classes. A class that sits
close to another in the model's eyes should be easier to push into it; the rank correlation
between each class's similarity to its nearest other class and its error says whether it is."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


def cosine_matrix(means: np.ndarray) -> np.ndarray:
    """Cosine similarity between the rows of `means` (classes x dimensions); NaN for a class
    with a zero or missing mean."""
    means = np.asarray(means, dtype=float)
    norms = np.linalg.norm(means, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        unit = means / norms[:, None]
    return unit @ unit.T


def nearest(sim: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each class's most similar other class (index) and that similarity."""
    off = np.asarray(sim, dtype=float).copy()
    np.fill_diagonal(off, -np.inf)
    off = np.where(np.isnan(off), -np.inf, off)
    idx = off.argmax(1)
    val = off[np.arange(len(off)), idx]
    return idx, np.where(np.isfinite(val), val, np.nan)


@dataclass
class RankCorrelation:
    rho: float
    p: float
    n: int


def rank_correlation(x, y) -> RankCorrelation:
    """Spearman's rho with its two-sided p-value, over the classes where both are known."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = ~(np.isnan(x) | np.isnan(y))
    if ok.sum() < 3 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
        return RankCorrelation(float("nan"), float("nan"), int(ok.sum()))
    res = stats.spearmanr(x[ok], y[ok])
    return RankCorrelation(float(res.statistic), float(res.pvalue), int(ok.sum()))


def class_means(sums: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Per-class means from per-class sums (rows: true classes) and the per-sample labels."""
    n = np.bincount(np.asarray(labels), minlength=num_classes).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(sums, dtype=float) / n[:, None]
