"""Where errors and adversarial examples go: the clean confusion matrix and the adversarial
flow matrix (true class -> class predicted after the attack, among the images the model got
right before it), row-normalised, the largest flows by name, how symmetric they are, and the
clusters of classes that the model mixes up."""

from __future__ import annotations

import numpy as np
from scipy.sparse.csgraph import connected_components


def counts(labels: np.ndarray, pred: np.ndarray, num_classes: int, mask: np.ndarray | None = None) -> np.ndarray:
    """counts[t, p]: images of true class t predicted as p (only where `mask` holds)."""
    labels, pred = np.asarray(labels), np.asarray(pred)
    if mask is not None:
        labels, pred = labels[mask], pred[mask]
    out = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(out, (labels, pred), 1)
    return out


def row_normalise(m: np.ndarray) -> np.ndarray:
    rows = m.sum(1, keepdims=True).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(rows > 0, m / np.where(rows > 0, rows, 1), 0.0)


def adversarial_flow(labels, clean_pred, adv_pred, num_classes: int) -> np.ndarray:
    """Counts over the images classified correctly before the attack: the diagonal holds the
    ones that survived it, row t off the diagonal where the fooled images of class t went."""
    labels = np.asarray(labels)
    return counts(labels, adv_pred, num_classes, mask=np.asarray(clean_pred) == labels)


def fooled_share(flow: np.ndarray) -> np.ndarray:
    """Row t: the share of class t's fooled images that end up in each other class (rows of
    classes with no fooled image are zero)."""
    off = flow.astype(float).copy()
    np.fill_diagonal(off, 0)
    return row_normalise(off)


def top_flows(m: np.ndarray, classes: list[str], k: int = 5) -> list[dict]:
    """The k largest off-diagonal cells of a counts matrix, with the share of the row's errors
    (or fooled images) and of the row's images that each one is."""
    off = m.astype(float).copy()
    np.fill_diagonal(off, 0)
    errors, totals = off.sum(1), m.sum(1)
    order = np.argsort(-off, axis=None, kind="stable")[:k]
    out = []
    for flat in order:
        t, p = divmod(int(flat), m.shape[1])
        if off[t, p] <= 0:
            break
        out.append({"true": classes[t], "pred": classes[p], "count": int(off[t, p]),
                    "share_of_errors": float(off[t, p] / errors[t]), "share_of_class": float(off[t, p] / totals[t])})
    return out


def symmetry(m: np.ndarray) -> float:
    """1 - sum|P - P^T| / sum(P + P^T) over the off-diagonal cells of the row-normalised matrix
    P: 1 when every flow t -> p is matched by as large a flow p -> t, 0 when all flows go one
    way. Row-normalising first keeps a class with more images from weighing more."""
    p = row_normalise(m)
    np.fill_diagonal(p, 0)
    total = (p + p.T).sum()
    return float(1 - np.abs(p - p.T).sum() / total) if total > 0 else float("nan")


# a pair of classes belongs to one confusion cluster when at least this share of either
# class's images goes to the other (on Fashion-MNIST this joins the upper-body garments and
# the shoes, and leaves trousers and bags alone)
CLUSTER_SHARE = 0.05


def clusters(m: np.ndarray, classes: list[str], threshold: float = CLUSTER_SHARE) -> list[list[str]]:
    """Groups of two or more classes linked by confusion of at least `threshold` of a class's
    images (connected components of that graph), largest first."""
    p = row_normalise(m)
    np.fill_diagonal(p, 0)
    link = np.maximum(p, p.T) >= threshold
    _, comp = connected_components(link, directed=False)
    groups = [[classes[i] for i in np.flatnonzero(comp == c)] for c in np.unique(comp)]
    return sorted((g for g in groups if len(g) > 1), key=len, reverse=True)
