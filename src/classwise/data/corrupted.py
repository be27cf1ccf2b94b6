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
        labels = _array(str(self.path / "labels.npy"))
        if labels.ndim != 1 or labels.dtype.kind not in "iu":
            raise CorruptDataError(f"{self.path}/labels.npy: expected one integer label per image, got "
                                   f"{labels.dtype} {labels.shape}")
        n = len(labels)
        if n % 5:
            raise CorruptDataError(f"{self.path}/labels.npy: {n} labels is not 5 severities of one test set")
        return n // 5

    def labels(self, severity: int) -> np.ndarray:
        n = self.per_severity
        return np.asarray(_array(str(self.path / "labels.npy"))[(severity - 1) * n:severity * n], dtype=np.int64)

    def array(self, name: str) -> np.ndarray:
        """The memory-mapped images of `name`, checked: uint8 (5 N, H, W[, C])."""
        f = self.path / f"{name}.npy"
        if not f.is_file():
            raise ClasswiseError(f"{self.path}: no {name}.npy (has: {', '.join(self.names())})")
        arr = _array(str(f))
        n = self.per_severity
        if arr.dtype != np.uint8 or arr.ndim not in (3, 4) or len(arr) != 5 * n:
            raise CorruptDataError(f"{f}: expected uint8 ({5 * n}, H, W[, C]) images, got {arr.dtype} {arr.shape}")
        return arr

    def images(self, name: str, severity: int, idx=None) -> np.ndarray:
        """uint8 (len(idx), H, W, C) images of `name` at `severity` (all of them without idx)."""
        arr = self.array(name)
        n = self.per_severity
        rows = np.arange(n) if idx is None else np.asarray(idx)
        out = np.asarray(arr[(severity - 1) * n + rows])
        return out[..., None] if out.ndim == 3 else out

    def check(self, labels: np.ndarray, shape: tuple[int, int, int], names=None) -> None:
        """The files must hold this very test set, in its order; each of `names` (default: every
        file) is checked too (header, dtype, size), before any work."""
        n = self.per_severity
        if len(labels) != n or not np.array_equal(self.labels(1), labels):
            raise ClasswiseError(
                f"{self.path} holds the {n}-image test set in its order, not these {len(labels)} images: "
                "evaluate the whole test set (no --limit/--per-class) or corrupt in memory")
        for name in self.names() if names is None else names:
            arr = self.array(name)
            got = tuple(arr.shape[1:]) if arr.ndim == 4 else (*arr.shape[1:], 1)
            if got != (shape[1], shape[2], shape[0]):
                raise ClasswiseError(f"{self.path}/{name}.npy: images are {got} (H, W, C), the test set's are "
                                     f"{(shape[1], shape[2], shape[0])}")


@lru_cache(maxsize=64)
def _array(path: str) -> np.ndarray:
    """The file memory-mapped, or one line saying why it cannot be: not a .npy file, a pickled
    (object) array, which is refused, or fewer bytes than its header says (truncated)."""
    try:
        with open(path, "rb") as fh:
            magic = fh.read(6)
        if magic != b"\x93NUMPY":
            raise CorruptDataError(f"{path} is not a NumPy .npy file; get the published file again")
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        text = str(exc)
        why = ("holds Python objects (an object array), which are not read" if "object" in text or "pickle" in text
               else "is truncated (shorter than its header says)" if "length" in text or "size" in text
               else f"cannot be read ({text.splitlines()[0] if text else type(exc).__name__})")
        raise CorruptDataError(f"{path} {why}; get the published file again") from None
    if not isinstance(arr, np.ndarray):
        raise CorruptDataError(f"{path} is not a single NumPy array (.npz?); expected the published .npy file")
    return arr
