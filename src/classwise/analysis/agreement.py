"""Do the runs of a study agree on which classes are weak? Kendall's coefficient of concordance
W over all runs, pairwise Spearman correlations, overlap of the k weakest classes, and, per
factor of the study (architecture, optimisation, training method), whether runs that share
the factor's level agree more than runs that differ in it."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass
class Concordance:
    w: float
    chi2: float
    df: int
    p: float
    m: int  # raters (runs)
    n: int  # items (classes)


def kendall_w(scores: np.ndarray) -> Concordance:
    """Kendall's W of an (m runs x n classes) score matrix (e.g. per-class accuracy), each run
    ranking the classes; ties get average ranks and the tie-corrected denominator. The p-value
    is the chi-square approximation: m (n - 1) W ~ chi2(n - 1) under no agreement."""
    scores = np.asarray(scores, dtype=float)
    m, n = scores.shape
    ranks = np.vstack([stats.rankdata(row) for row in scores])
    totals = ranks.sum(0)
    s = float(((totals - totals.mean()) ** 2).sum())
    ties = sum(float((c ** 3 - c).sum()) for c in (np.unique(row, return_counts=True)[1] for row in scores))
    denom = m ** 2 * (n ** 3 - n) - m * ties
    w = 12 * s / denom if denom > 0 else float("nan")
    chi2 = m * (n - 1) * w
    return Concordance(w, chi2, n - 1, float(stats.chi2.sf(chi2, n - 1)) if w == w else float("nan"), m, n)


def spearman_matrix(scores: np.ndarray) -> np.ndarray:
    """Pairwise Spearman correlations between runs (rows of `scores`): Pearson on average ranks."""
    ranks = np.vstack([stats.rankdata(row) for row in np.asarray(scores, dtype=float)])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.corrcoef(ranks)


def weakest(scores_row: np.ndarray, k: int) -> set[int]:
    """The k lowest-scoring classes (ties broken by class index)."""
    return set(np.argsort(np.asarray(scores_row), kind="stable")[:k].tolist())


def topk_overlap(scores: np.ndarray, k: int) -> np.ndarray:
    """Pairwise share of the k weakest classes two runs have in common (1 = the same k)."""
    sets = [weakest(r, k) for r in scores]
    m = len(sets)
    out = np.ones((m, m))
    for i, j in itertools.combinations(range(m), 2):
        out[i, j] = out[j, i] = len(sets[i] & sets[j]) / k
    return out


def always_weak(scores: np.ndarray, k: int) -> list[int]:
    """Classes among the k weakest of every run."""
    sets = [weakest(r, k) for r in scores]
    return sorted(set.intersection(*sets)) if sets else []


@dataclass
class FactorAgreement:
    factor: str
    levels: list[str]
    within: float  # mean Spearman of pairs of runs at the same level of the factor
    across: float  # mean Spearman of pairs at different levels
    n_within: int
    n_across: int
    p: float  # permutation p-value of (within - across), the factor's labels shuffled over runs
    depends: bool | None  # None: no pair at the same level, so there is nothing to compare

    @property
    def delta(self) -> float:
        return self.within - self.across


# how much lower the agreement across a factor's levels must be, in Spearman rho, before the
# answer says the weak classes depend on that factor (ranks of 10 classes: one swap of
# neighbours costs ~0.01, so 0.1 is a real reordering)
DEPENDS_DELTA = 0.1


def _means(rho: np.ndarray, labels: list) -> tuple[float, float, int, int]:
    same, diff = [], []
    for i, j in itertools.combinations(range(len(labels)), 2):
        (same if labels[i] == labels[j] else diff).append(rho[i, j])
    return _nanmean(same), _nanmean(diff), len(same), len(diff)


def _nanmean(values: list) -> float:
    """Mean of the defined values, NaN (without numpy's warning) when none is: a run whose
    classes all score the same has no rank correlation."""
    finite = [v for v in values if not np.isnan(v)]
    return float(np.mean(finite)) if finite else float("nan")


def factor_agreement(rho: np.ndarray, labels: list, factor: str, *, permutations: int = 2000,
                     seed: int = 0) -> FactorAgreement:
    """Within- vs across-level agreement for one factor, `labels[i]` being run i's level. The
    p-value asks how often a random relabelling of the runs gives a within-across gap at least
    as large (all relabellings when there are few, else `permutations` random ones)."""
    labels = [str(v) for v in labels]
    within, across, n_w, n_a = _means(rho, labels)
    observed = within - across
    if not n_w or not n_a:
        return FactorAgreement(factor, sorted(set(labels)), within, across, n_w, n_a, float("nan"), None)
    rng = np.random.default_rng(seed)
    perms = ([list(p) for p in set(itertools.permutations(labels))]
             if len(labels) <= 8 else [list(rng.permutation(labels)) for _ in range(permutations)])
    gaps = []
    for p in perms:
        w, a, nw, na = _means(rho, p)
        if nw and na:
            gaps.append(w - a)
    p = float(np.mean(np.asarray(gaps) >= observed - 1e-12)) if gaps else float("nan")
    return FactorAgreement(factor, sorted(set(labels)), within, across, n_w, n_a, p, bool(observed >= DEPENDS_DELTA))
