"""Uncertainty of per-class numbers: a stratified, paired bootstrap over test images, interval
verdicts, and the exact McNemar test per class.

The bootstrap resamples the images of each class with replacement, keeping the class sizes
(stratified), and applies the same resample to every run evaluated on those images (paired):
the differences between two arms then carry only the variation that is not shared. It is
vectorised through the images' joint outcome patterns: within a class, every image is one of
at most min(n_c, 2^R) patterns of right/wrong over the R runs, a resample of n_c images is one
multinomial draw of pattern counts (all resamples at once), and the per-run correct counts
follow by a matrix product.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import binomtest

STATS = ("mean", "worst", "std", "gap")  # summaries over classes, each a function of per-class accuracy


def bootstrap_class_accuracy(labels, correct, num_classes: int, *, resamples: int = 1000,
                             rng: np.random.Generator | int | None = 0) -> np.ndarray:
    """Per-class accuracy of every run in every resample, shape (resamples, R, C).

    `labels`: (n,) class of each image; `correct`: (R, n) bool, run r right on image i (all R
    runs evaluated on the same images, so the resample is paired across them). Classes with
    no images are NaN."""
    rng = np.random.default_rng(rng)
    labels = np.asarray(labels)
    correct = np.atleast_2d(np.asarray(correct, dtype=bool))
    runs = correct.shape[0]
    out = np.full((resamples, runs, num_classes), np.nan)
    for c in range(num_classes):
        rows = correct[:, labels == c]
        n_c = rows.shape[1]
        if n_c == 0:
            continue
        patterns, image_pattern = _patterns(rows)
        draws = _pattern_counts(rng, image_pattern, patterns.shape[1], resamples)  # (B, P) images per pattern
        out[:, :, c] = draws @ patterns.T / n_c  # (B, P) @ (P, R)
    return out


def _patterns(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct columns of a (R, n) bool matrix as a (R, P) float matrix, and the pattern
    of each image (n,)."""
    runs = rows.shape[0]
    if runs <= 62:  # one int64 code per image: np.unique on a vector is much faster than on rows
        codes = (rows.astype(np.int64) << np.arange(runs, dtype=np.int64)[:, None]).sum(0)
        uniq, inverse = np.unique(codes, return_inverse=True)
        patterns = (uniq[None, :] >> np.arange(runs, dtype=np.int64)[:, None]) & 1
        return patterns.astype(float), inverse.ravel()
    uniq, inverse = np.unique(rows.T, axis=0, return_inverse=True)
    return uniq.T.astype(float), inverse.ravel()


def _pattern_counts(rng: np.random.Generator, image_pattern: np.ndarray, n_patterns: int, size: int) -> np.ndarray:
    """`size` resamples of the images with replacement, as counts per pattern (size, P): a
    multinomial draw. With few patterns, P - 1 conditional binomial draws over all resamples at
    once; with many, drawn image indices counted per pattern (a binomial draw costs ~30 integer
    draws, so the cheaper way depends on P against the class size)."""
    n = image_pattern.size
    counts = np.bincount(image_pattern, minlength=n_patterns)
    if (n_patterns - 1) * 30 <= n:
        out = np.empty((size, n_patterns), dtype=np.int64)
        left, mass = np.full(size, n, dtype=np.int64), float(n)
        for j, k in enumerate(counts[:-1]):
            out[:, j] = rng.binomial(left, min(1.0, k / mass))
            left -= out[:, j]
            mass -= k
        out[:, -1] = left
        return out
    out = np.zeros((size, n_patterns), dtype=np.int64)
    step = max(1, 2**22 // n)  # resamples per chunk: bounded memory for big classes
    for b in range(0, size, step):
        rows = min(step, size - b)
        picked = image_pattern[rng.integers(0, n, size=(rows, n))]
        offsets = np.arange(rows)[:, None] * n_patterns
        out[b:b + rows] = np.bincount((picked + offsets).ravel(), minlength=rows * n_patterns).reshape(rows, -1)
    return out


def class_stats(acc: np.ndarray) -> dict[str, np.ndarray]:
    """Class mean, worst class, population std across classes and max-min gap over the last
    axis (classes), ignoring NaN classes."""
    if np.isnan(acc).any():
        low, high = np.nanmin(acc, -1), np.nanmax(acc, -1)
        return {"mean": np.nanmean(acc, -1), "worst": low, "std": np.nanstd(acc, -1), "gap": high - low}
    low, high = acc.min(-1), acc.max(-1)  # the nan-functions cost 10x on the bootstrap's large arrays
    return {"mean": acc.mean(-1), "worst": low, "std": acc.std(-1), "gap": high - low}


def percentile_interval(samples, confidence: float = 0.95) -> tuple[float, float]:
    """The percentile bootstrap interval of `samples` (1-D)."""
    alpha = (1 - confidence) / 2
    low, high = np.nanquantile(np.asarray(samples, dtype=float), [alpha, 1 - alpha])
    return float(low), float(high)


def weakest_probability(acc: np.ndarray) -> np.ndarray:
    """How often each class is the weakest, over every leading axis of `acc` (..., C); a tie
    splits its resample evenly between the tied classes, so the probabilities sum to one."""
    flat = acc.reshape(-1, acc.shape[-1])
    low = np.nanmin(flat, -1, keepdims=True)
    is_min = flat == low
    return (is_min / is_min.sum(-1, keepdims=True)).mean(0)


def verdict(low: float, high: float, up: str = "widens", down: str = "narrows") -> str:
    """What an interval of a difference supports: a direction only if it excludes zero."""
    if low > 0:
        return up
    if high < 0:
        return down
    return "no clear difference"


def mcnemar_exact(a_correct, b_correct) -> dict:
    """Exact McNemar test of two classifiers on the same images: a two-sided binomial test of
    the discordant pairs (right for one only) against p = 1/2."""
    a, b = np.asarray(a_correct, dtype=bool), np.asarray(b_correct, dtype=bool)
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    n = only_a + only_b
    p = 1.0 if n == 0 else float(binomtest(only_a, n, 0.5).pvalue)
    return {"n": int(a.size), "only_a": only_a, "only_b": only_b, "p_value": p}


def mcnemar_per_class(labels, a_correct, b_correct, classes: Sequence[str]) -> pd.DataFrame:
    """One exact McNemar test per class: class, n, right only for a, right only for b, p-value."""
    labels = np.asarray(labels)
    a, b = np.asarray(a_correct, dtype=bool), np.asarray(b_correct, dtype=bool)
    rows = [{"class": name, **mcnemar_exact(a[labels == c], b[labels == c])} for c, name in enumerate(classes)]
    return pd.DataFrame(rows, columns=["class", "n", "only_a", "only_b", "p_value"])
