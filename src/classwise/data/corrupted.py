"""The published corrupted test sets in their official layout: one `<corruption>.npy` per
corruption holding the test set at severities 1..5 one after another (uint8, N*5 x H x W x C),
and `labels.npy` (N*5). Found as CIFAR-10-C/, CIFAR-100-C/ or Tiny-ImageNet-C/ under the
usual data roots."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import ClasswiseError, CorruptDataError
from .registry import search_roots

FOLDERS = {"cifar10": "CIFAR-10-C", "cifar100": "CIFAR-100-C", "tiny-imagenet": "Tiny-ImageNet-C"}


def find_corrupted(dataset: str, data_dir=None) -> Path | None:
    """The folder of `dataset`'s corrupted files under the data roots, if there is one."""
    folder = FOLDERS.get(dataset)
    if folder is None:
        return None
    for root in search_roots(data_dir):
        d = Path(root) / folder
        if (d / "labels.npy").is_file() and any(p.name != "labels.npy" for p in d.glob("*.npy")):
            return d
    return None


class CorruptedFiles:
    """Memory-mapped reads of one folder; cheap to make again (the arrays are cached)."""

    def __init__(self, path):
        self.path = Path(path)
        if not (self.path / "labels.npy").is_file():
            raise ClasswiseError(f"{self.path}: no labels.npy; expected the CIFAR-10-C layout "
                                 "(<corruption>.npy with severities 1-5 stacked, labels.npy)")

    def names(self) -> list[str]:
        return sorted(p.stem for p in self.path.glob("*.npy") if p.stem != "labels")

    @property
    def per_severity(self) -> int:
        n = len(_array(str(self.path / "labels.npy")))
        if n % 5:
            raise CorruptDataError(f"{self.path}/labels.npy: {n} labels is not 5 severities of one test set")
        return n // 5

    def labels(self, severity: int) -> np.ndarray:
        n = self.per_severity
        return np.asarray(_array(str(self.path / "labels.npy"))[(severity - 1) * n:severity * n], dtype=np.int64)

    def images(self, name: str, severity: int, idx=None) -> np.ndarray:
        """uint8 (len(idx), H, W, C) images of `name` at `severity` (all of them without idx)."""
        f = self.path / f"{name}.npy"
        if not f.is_file():
            raise ClasswiseError(f"{self.path}: no {name}.npy (has: {', '.join(self.names())})")
        arr = _array(str(f))
        n = self.per_severity
        if arr.dtype != np.uint8 or arr.ndim not in (3, 4) or len(arr) != 5 * n:
            raise CorruptDataError(f"{f}: expected uint8 ({5 * n}, H, W[, C]) images, got {arr.dtype} {arr.shape}")
        rows = np.arange(n) if idx is None else np.asarray(idx)
        out = np.asarray(arr[(severity - 1) * n + rows])
        return out[..., None] if out.ndim == 3 else out

    def check(self, labels: np.ndarray, shape: tuple[int, int, int]) -> None:
        """The files must hold this very test set, in its order."""
        n = self.per_severity
        if len(labels) != n or not np.array_equal(self.labels(1), labels):
            raise ClasswiseError(
                f"{self.path} holds the {n}-image test set in its order, not these {len(labels)} images: "
                "evaluate the whole test set (no --limit/--per-class) or corrupt in memory")
        first = self.images(self.names()[0], 1, [0])
        if tuple(first.shape[1:]) != (shape[1], shape[2], shape[0]):
            raise ClasswiseError(f"{self.path}: images are {first.shape[1:]}, the test set's are {shape}")


@lru_cache(maxsize=64)
def _array(path: str) -> np.ndarray:
    return np.load(path, mmap_mode="r")
