"""Long-tailed training sets: Cao et al.'s exponential profile ("Learning Imbalanced Datasets
with Label-Distribution-Aware Margin Loss", NeurIPS 2019; CIFAR-10-LT and CIFAR-100-LT), on any
labelled set: class k keeps

    n_k = int(n_max * rho^(-k / (C - 1))),   rho = n_max / n_min (the imbalance ratio),

n_max the first class's count (on a balanced set: every class's; otherwise the largest any
class can supply its share of), the images chosen by a seeded shuffle within each class.
Only the training images are cut: the validation split is carved before (balanced, as the
test set), so every class is checked on the same number of images."""

from __future__ import annotations

import numpy as np

from ..errors import ClasswiseError
from .core import ClassData


def long_tail_counts(n_max: int, num_classes: int, rho: float) -> list[int]:
    """Cao et al.'s `get_img_num_per_cls` with imb_type "exp" (rho = 1 / imb_factor)."""
    if num_classes < 2:
        return [n_max] * num_classes
    return [int(n_max * rho ** (-k / (num_classes - 1))) for k in range(num_classes)]


def long_tailed(data: ClassData, rho: float, seed: int = 0) -> ClassData:
    """The subset of `data` with the exponential profile of ratio `rho` (>= 1) over its classes
    in label order; the ratio and the counts are recorded in `meta`."""
    if not rho >= 1:
        raise ClasswiseError(f"the imbalance ratio is the largest class over the smallest: at least 1, got {rho}")
    labels = data.labels.numpy()
    have = np.bincount(labels, minlength=data.num_classes)
    share = rho ** (-np.arange(data.num_classes) / max(data.num_classes - 1, 1))
    n_max = int(min(have / share))
    want = [min(int(w), int(h)) for w, h in zip(long_tail_counts(n_max, data.num_classes, rho), have, strict=True)]
    if min(want) < 1:
        raise ClasswiseError(f"{data.name}: at ratio {rho:g} the last class keeps no image (n_max {have.max()}); "
                             "use a smaller --imbalance")
    rng = np.random.default_rng(seed)
    keep = np.concatenate([rng.permutation(np.flatnonzero(labels == k))[:n] for k, n in enumerate(want)])
    out = data.subset(np.sort(keep))
    out.meta = {**data.meta, "imbalance": rho, "class_counts": want}
    return out
