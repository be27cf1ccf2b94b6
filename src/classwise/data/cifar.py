"""CIFAR-10 and CIFAR-100 from the official python layouts."""

from __future__ import annotations

import pickle
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ..errors import CorruptDataError
from .core import ClassData
from .registry import DatasetSpec, register_dataset


class _SafeUnpickler(pickle.Unpickler):
    """The CIFAR batches are pickles; accept only what they contain (dicts, lists, bytes and
    numpy arrays), so that a planted file cannot run code."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype"),
                ("_codecs", "encode")}  # how Python 3 writes bytes at pickle protocol 2

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def load_pickle(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            obj = _SafeUnpickler(fh, encoding="latin1").load()
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError) as exc:
        raise CorruptDataError(f"{path}: not a readable CIFAR batch ({exc})") from exc
    if not isinstance(obj, dict):
        raise CorruptDataError(f"{path}: expected a dict, found {type(obj).__name__}")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _images(batch: dict, path: Path) -> np.ndarray:
    data = np.asarray(batch.get("data"))
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise CorruptDataError(f"{path}: 'data' should be (N, 3072) uint8, got {data.shape}")
    return data.astype(np.uint8).reshape(-1, 3, 32, 32)


def _names(values) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def _field(obj: dict, key: str, path: Path):
    if key not in obj:
        raise CorruptDataError(f"{path}: no '{key}' entry (it has {', '.join(map(str, obj)) or 'none'}); "
                               "the file is not an official CIFAR batch, get the archive again")
    return obj[key]


def _labels(batch: dict, key: str, path: Path, n: int) -> np.ndarray:
    try:
        labels = np.asarray(_field(batch, key, path), dtype=np.int64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise CorruptDataError(f"{path}: '{key}' is not a list of class indices ({exc})") from exc
    if len(labels) != n:
        raise CorruptDataError(f"{path}: {len(labels)} '{key}' for {n} images; the file is corrupt")
    return labels


def _read_cifar10(folder: Path) -> tuple[ClassData, ClassData]:
    classes = _names(_field(load_pickle(folder / "batches.meta"), "label_names", folder / "batches.meta"))
    splits = []
    for files in ([f"data_batch_{i}" for i in range(1, 6)], ["test_batch"]):
        images, labels = [], []
        for f in files:
            batch = load_pickle(folder / f)
            images.append(_images(batch, folder / f))
            labels.append(_labels(batch, "labels", folder / f, len(images[-1])))
        splits.append(ClassData(torch.from_numpy(np.concatenate(images)),
                                torch.from_numpy(np.concatenate(labels)), classes,
                                name="cifar10", meta={"source": str(folder)}))
    return splits[0], splits[1]


def _read_cifar100(folder: Path) -> tuple[ClassData, ClassData]:
    meta = load_pickle(folder / "meta")
    classes = _names(_field(meta, "fine_label_names", folder / "meta"))
    supers = _names(_field(meta, "coarse_label_names", folder / "meta"))
    splits, superclass_of = [], [-1] * len(classes)
    for f in ("train", "test"):
        batch = load_pickle(folder / f)
        images = _images(batch, folder / f)
        n = len(images)
        fine = _labels(batch, "fine_labels", folder / f, n)
        coarse = _labels(batch, "coarse_labels", folder / f, n)
        if n and (fine.min() < 0 or fine.max() >= len(classes) or coarse.min() < 0 or coarse.max() >= len(supers)):
            raise CorruptDataError(f"{folder / f}: labels outside the {len(classes)} classes / {len(supers)} "
                                   "superclasses of meta; the files do not belong together")
        for c, s in zip(fine.tolist(), coarse.tolist(), strict=True):
            if superclass_of[c] not in (-1, s):
                raise CorruptDataError(f"{folder / f}: class {c} belongs to two superclasses")
            superclass_of[c] = s
        splits.append(ClassData(torch.from_numpy(images), torch.from_numpy(fine),
                                classes, name="cifar100", superclasses=supers,
                                superclass_of=superclass_of, meta={"source": str(folder)}))
    return splits[0], splits[1]


def _downloader(tv_name: str):
    def download(target: Path) -> None:
        from torchvision import datasets as tvd  # torchvision keeps the URLs and checksums

        tv_class = getattr(tvd, tv_name)
        # the archive unpacks into its own folder (cifar-10-batches-py/ ...) beside `target`
        tvd.utils.download_and_extract_archive(tv_class.url, str(target.parent),
                                               filename=tv_class.filename, md5=tv_class.tgz_md5)
    return download


CIFAR10 = register_dataset(DatasetSpec(
    name="cifar10",
    description="CIFAR-10, 32x32 colour, 10 classes, 50k/10k",
    subdirs=("cifar-10-batches-py", "cifar10/cifar-10-batches-py"),
    system_dirs=(),
    is_present=lambda d: all((d / f).is_file() for f in
                             ["batches.meta", "test_batch"] + [f"data_batch_{i}" for i in range(1, 6)]),
    read=_read_cifar10,
    download=_downloader("CIFAR10"),
    how_to_get="Run `classwise datasets --download cifar10`, or unpack "
               "cifar-10-python.tar.gz into <data-dir>/.",
    hflip=True,
    default_arch="resnet20",
))

CIFAR100 = register_dataset(DatasetSpec(
    name="cifar100",
    description="CIFAR-100, 32x32 colour, 100 classes in 20 superclasses, 50k/10k",
    subdirs=("cifar-100-python", "cifar100/cifar-100-python"),
    system_dirs=(),
    is_present=lambda d: all((d / f).is_file() for f in ("meta", "train", "test")),
    read=_read_cifar100,
    download=_downloader("CIFAR100"),
    how_to_get="Run `classwise datasets --download cifar100`, or unpack "
               "cifar-100-python.tar.gz into <data-dir>/.",
    hflip=True,
    default_arch="resnet20",
))

# Cao et al.'s long-tailed variants: the same files, the training set cut to ratio 100 by default
# (--imbalance); the validation and test sets stay balanced
for _base in (CIFAR10, CIFAR100):
    register_dataset(replace(_base, name=f"{_base.name}-lt", imbalance=100.0,
                             description=f"{_base.description.split(',')[0]}-LT: its training set long-tailed "
                                         "(ratio 100 unless --imbalance), validation and test balanced"))
