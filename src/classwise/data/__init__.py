"""Data: `ClassData` tensors, loaders registered by name, splits and batching."""

from __future__ import annotations

from dataclasses import dataclass

from . import builtin, cifar, constructed, idx, imagenet, svhn  # noqa: F401  (each registers its data sets)
from .builtin import make_synthetic
from .core import ClassData, per_class_subset, stratified_split, stratified_subset
from .folder import FolderSource
from .loader import batches, to_float
from .longtail import long_tailed
from .registry import DATASETS, DatasetSpec, get_spec, load_raw, search_roots


@dataclass
class Splits:
    train: ClassData | None  # None for evaluation-only data sets
    val: ClassData | None
    test: ClassData | FolderSource
    spec: DatasetSpec | None = None

    @property
    def classes(self) -> list[str]:
        return self.test.classes


def split(train: ClassData | None, test, val_size: int | float = 0.1, seed: int = 0,
          spec: DatasetSpec | None = None) -> Splits:
    """Carve a stratified validation split from the training set."""
    if train is None:
        return Splits(None, None, test, spec)
    train, val = stratified_split(train, val_size, seed=seed)
    return Splits(train, val, test, spec)


def load_dataset(name: str, data_dir=None, *, val_size: int | float = 0.1, seed: int = 0,
                 download: bool = False, imbalance: float | None = None) -> Splits:
    """The data set's training, validation and test sets. `imbalance` (default: the data set's
    own, 100 for cifar10-lt and cifar100-lt) cuts the training set to Cao et al.'s long tail of
    that ratio, after the balanced validation split is carved."""
    spec = get_spec(name)
    train, test = load_raw(name, data_dir, download=download)
    splits = split(train, test, val_size, seed, spec)
    rho = imbalance if imbalance is not None else spec.imbalance
    if rho is not None and splits.train is not None:
        splits.train = long_tailed(splits.train, rho, seed)
    return splits


__all__ = ["DATASETS", "ClassData", "DatasetSpec", "FolderSource", "Splits", "batches", "get_spec", "load_dataset",
           "load_raw", "make_synthetic", "per_class_subset", "search_roots", "split",
           "stratified_split", "stratified_subset", "to_float"]
