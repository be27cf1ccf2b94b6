"""CIFAR-100's superclasses: do errors stay inside the true superclass (a semantically close
class) more often than chance, and how does each superclass fare."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from .flow import counts


@dataclass
class WithinShare:
    errors: int
    within: int
    share: float  # within / errors
    chance: float  # the share if an error picked any other class at random
    p: float  # one-sided binomial test of share > chance

    @property
    def ratio(self) -> float:
        return self.share / self.chance if self.chance else float("nan")


def within_superclass(labels, pred, superclass_of: list[int], mask=None) -> WithinShare:
    """Share of the errors (pred != label, where `mask` holds) whose predicted class lies in the
    true class's superclass. Chance is, per error, (size of the true superclass - 1) / (C - 1):
    4/99 on CIFAR-100, where every superclass has 5 classes."""
    labels, pred = np.asarray(labels), np.asarray(pred)
    sup = np.asarray(superclass_of)
    wrong = pred != labels
    if mask is not None:
        wrong &= np.asarray(mask)
    y, p = labels[wrong], pred[wrong]
    n = len(y)
    inside = int((sup[y] == sup[p]).sum())
    size = np.bincount(sup, minlength=sup.max() + 1)
    chance = float(((size[sup[y]] - 1) / (len(sup) - 1)).mean()) if n else float("nan")
    pval = float(stats.binomtest(inside, n, chance, alternative="greater").pvalue) if n else float("nan")
    return WithinShare(n, inside, inside / n if n else float("nan"), chance, pval)


def superclass_table(labels, pred, superclass_of: list[int], superclasses: list[str]) -> list[dict]:
    """Per superclass: its images' fine accuracy and their superclass accuracy (prediction in
    the right superclass, whichever class)."""
    labels, pred = np.asarray(labels), np.asarray(pred)
    sup = np.asarray(superclass_of)
    out = []
    for s, name in enumerate(superclasses):
        rows = sup[labels] == s
        n = int(rows.sum())
        out.append({"superclass": name, "n": n,
                    "accuracy": float((pred[rows] == labels[rows]).mean()) if n else float("nan"),
                    "superclass_accuracy": float((sup[pred[rows]] == s).mean()) if n else float("nan")})
    return out


def superclass_flow(labels, pred, superclass_of: list[int], num_super: int, mask=None) -> np.ndarray:
    """Counts of errors from true superclass to predicted superclass (where `mask` holds)."""
    labels, pred = np.asarray(labels), np.asarray(pred)
    sup = np.asarray(superclass_of)
    wrong = pred != labels
    if mask is not None:
        wrong &= np.asarray(mask)
    return counts(sup[labels], sup[pred], num_super, mask=wrong)
