"""SVHN cropped digits from the official train_32x32.mat / test_32x32.mat."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import CorruptDataError
from .core import ClassData
from .registry import DatasetSpec, register_dataset


def _read_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    import scipy.io

    try:
        mat = scipy.io.loadmat(path)
    except Exception as exc:  # scipy raises several types for a bad file
        raise CorruptDataError(f"{path}: not a readable MATLAB file ({exc})") from exc
    if "X" not in mat or "y" not in mat:
        raise CorruptDataError(f"{path}: expected variables 'X' and 'y'")
    x, y = np.asarray(mat["X"]), np.asarray(mat["y"]).reshape(-1).astype(np.int64)
    if x.ndim != 4 or x.shape[:3] != (32, 32, 3) or x.shape[3] != len(y):
        raise CorruptDataError(f"{path}: 'X' should be (32, 32, 3, N) with N = len(y), got {x.shape}")
    y[y == 10] = 0  # SVHN stores the digit 0 as label 10
    return np.ascontiguousarray(x.transpose(3, 2, 0, 1)).astype(np.uint8), y


def _read(folder: Path) -> tuple[ClassData, ClassData]:
    out = []
    for split in ("train", "test"):
        x, y = _read_mat(folder / f"{split}_32x32.mat")
        out.append(ClassData(torch.from_numpy(x), torch.from_numpy(y), [str(d) for d in range(10)],
                             name="svhn", meta={"source": str(folder)}))
    return out[0], out[1]


def _download(target: Path) -> None:
    from torchvision import datasets as tvd  # torchvision keeps the URLs and checksums

    for split in ("train", "test"):
        url, filename, md5 = tvd.SVHN.split_list[split]
        tvd.utils.download_url(url, str(target), filename, md5)


register_dataset(DatasetSpec(
    name="svhn",
    description="Street View House Numbers (cropped digits), 32x32 colour, 10 classes, 73k/26k",
    subdirs=("svhn", "SVHN"),
    system_dirs=(),
    is_present=lambda d: (d / "train_32x32.mat").is_file() and (d / "test_32x32.mat").is_file(),
    read=_read,
    download=_download,
    how_to_get="Run `classwise datasets --download svhn`, or put train_32x32.mat and "
               "test_32x32.mat in <data-dir>/svhn/.",
    default_arch="resnet20",
))
