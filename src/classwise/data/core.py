"""`ClassData`: a whole labelled image set in memory as tensors, plus class names."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch

from ..errors import ClasswiseError, CorruptDataError


@dataclass
class ClassData:
    # (N, C, H, W): uint8 levels, or float32 in [0, 1] for images that are not multiples of
    # 1/255 (constructed data sets, see analysis/features.py); never quantised
    images: torch.Tensor
    labels: torch.Tensor  # int64, (N,)
    classes: list[str]
    name: str = ""
    # CIFAR-100 style coarse labels: superclasses[i] is the name of superclass i and
    # superclass_of[c] the superclass index of fine class c.
    superclasses: list[str] | None = None
    superclass_of: list[int] | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.images.dtype not in (torch.uint8, torch.float32) or self.images.ndim != 4:
            raise CorruptDataError(
                f"{self.name or 'data'}: images must be uint8 or float32 (N, C, H, W), "
                f"got {self.images.dtype} {tuple(self.images.shape)}"
            )
        if self.images.is_floating_point() and self.images.numel() and not (
                float(self.images.min()) >= 0 and float(self.images.max()) <= 1):
            raise CorruptDataError(f"{self.name or 'data'}: float images must lie in [0, 1], got "
                                   f"[{float(self.images.min()):.4g}, {float(self.images.max()):.4g}]")
        if self.labels.dtype != torch.int64 or self.labels.shape != (self.images.shape[0],):
            raise CorruptDataError(
                f"{self.name or 'data'}: labels must be int64 with one per image, "
                f"got {self.labels.dtype} {tuple(self.labels.shape)} for "
                f"{self.images.shape[0]} images"
            )
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= len(self.classes)):
            low, high, c = int(self.labels.min()), int(self.labels.max()), len(self.classes)
            bad = low if low < 0 else high  # name the label that is out of range, negative or too large
            raise CorruptDataError(
                f"{self.name or 'data'}: labels must be class indices 0..{c - 1} (one per class of the {c}), "
                f"got {bad} ({int(((self.labels < 0) | (self.labels >= c)).sum())} label(s) outside)"
            )

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(self.images.shape[1:])

    def images_at(self, index) -> torch.Tensor:
        return self.images[torch.as_tensor(index, dtype=torch.long)]

    def subset(self, index) -> ClassData:
        index = torch.as_tensor(index, dtype=torch.long)
        return replace(self, images=self.images[index], labels=self.labels[index])

    def class_counts(self) -> torch.Tensor:
        return torch.bincount(self.labels, minlength=self.num_classes)

    def channel_stats(self) -> tuple[list[float], list[float]]:
        """Per-channel mean and std in [0, 1] units, for the normalization inside a model."""
        # float images are in [0, 1] already; `.float()` would alias them, so no in-place division
        x = self.images if self.images.is_floating_point() else self.images.float().div_(255)
        mean = x.mean(dim=(0, 2, 3))
        std = x.std(dim=(0, 2, 3)).clamp_min(1e-3)
        return mean.tolist(), std.tolist()


def stratified_split(data: ClassData, size: int | float, seed: int = 0):
    """Split off `size` examples (or that fraction, but at least one per class), keeping every
    class's share."""
    if not size:
        return data, data.subset([])
    if isinstance(size, float) and size < 1 and round(size * len(data)) < data.num_classes < len(data):
        size = data.num_classes  # a tiny set: one example of each class rather than an error
    from sklearn.model_selection import train_test_split  # imported here: it takes a second

    index = np.arange(len(data))
    try:
        keep, held = train_test_split(
            index, test_size=size, stratify=data.labels.numpy(), random_state=seed
        )
    except ValueError as exc:
        raise ClasswiseError(f"cannot carve a stratified split of {size} from "
                             f"{len(data)} examples of {data.name}: {exc}") from exc
    return data.subset(np.sort(keep)), data.subset(np.sort(held))


def stratified_subset(data, n: int, seed: int = 0):
    """A stratified subset of `n` examples (all of them if there are no more than `n`)."""
    return data if n >= len(data) else stratified_split(data, n, seed=seed)[1]


def per_class_subset(data: ClassData, per_class: int, seed: int = 0) -> ClassData:
    """The first `per_class` examples of every class after a seeded shuffle: equal counts,
    unlike a random subset, which leaves rare draws with one or two examples."""
    if isinstance(per_class, bool) or not isinstance(per_class, int | np.integer) or per_class < 1:
        raise ClasswiseError(f"per-class count must be a whole number of at least 1, got {per_class!r}")
    rng = np.random.default_rng(seed)
    labels = data.labels.numpy()
    chosen = []
    for c in range(data.num_classes):
        idx = np.flatnonzero(labels == c)
        if len(idx) < per_class:
            raise ClasswiseError(
                f"{data.name}: class '{data.classes[c]}' has {len(idx)} examples, "
                f"fewer than --per-class {per_class}"
            )
        chosen.append(rng.permutation(idx)[:per_class])
    return data.subset(np.sort(np.concatenate(chosen)))
