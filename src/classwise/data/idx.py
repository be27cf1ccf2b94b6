"""MNIST and Fashion-MNIST from IDX files, gzipped or raw."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from ..errors import CorruptDataError
from .core import ClassData
from .registry import DatasetSpec, register_dataset

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_STEMS = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        raise CorruptDataError(f"{path}: cannot read IDX file ({exc})") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise CorruptDataError(f"{path}: not an IDX file (bad magic number)")
    dtype, ndim = np.dtype(_IDX_DTYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise CorruptDataError(
            f"{path}: IDX header promises shape {shape} ({expected} bytes) "
            f"but the file has {len(raw)} bytes; it is truncated or corrupt"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx")):
        if (folder / name).is_file():
            return folder / name
    return None


def _present(folder: Path) -> bool:
    return all(_find(folder, s) for pair in _STEMS.values() for s in pair)


def _reader(name: str, classes: list[str]):
    def read(folder: Path) -> tuple[ClassData, ClassData]:
        out = []
        for split, (img_stem, lbl_stem) in _STEMS.items():
            images = read_idx(_find(folder, img_stem))
            labels = read_idx(_find(folder, lbl_stem))
            if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
                raise CorruptDataError(
                    f"{folder}: {split} images {images.shape} and labels {labels.shape} "
                    "do not match (expected (N, H, W) and (N,))"
                )
            out.append(ClassData(
                torch.from_numpy(images.astype(np.uint8)).unsqueeze(1),
                torch.from_numpy(labels.astype(np.int64)),
                list(classes), name=name, meta={"source": str(folder), "split": split},
            ))
        return out[0], out[1]
    return read


def _downloader(tv_name: str):
    def download(target: Path) -> None:
        from torchvision import datasets as tvd  # torchvision keeps the URLs and checksums

        tv_class = getattr(tvd, tv_name)
        target.mkdir(parents=True, exist_ok=True)
        for filename, md5 in tv_class.resources:
            errors = []
            for mirror in tv_class.mirrors:
                try:
                    tvd.utils.download_url(mirror + filename, str(target), filename, md5)
                    break
                except Exception as exc:  # noqa: BLE001 - try the next mirror
                    errors.append(f"{mirror}: {exc}")
            else:
                raise OSError(f"{filename} could not be fetched from any mirror ({'; '.join(errors)})")
    return download


FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

register_dataset(DatasetSpec(
    name="fashion-mnist",
    description="Zalando Fashion-MNIST, 28x28 grey, 10 classes, 60k/10k",
    subdirs=("fashion-mnist", "FashionMNIST/raw", "fashion_mnist"),
    system_dirs=("/usr/share/datasets/fashion-mnist",),
    is_present=_present,
    read=_reader("fashion-mnist", FASHION_CLASSES),
    download=_downloader("FashionMNIST"),
    how_to_get="Install it with `apt-get install dataset-fashion-mnist` (Debian) or run "
               "`classwise datasets --download fashion-mnist`.",
    grey=True,
))

register_dataset(DatasetSpec(
    name="mnist",
    description="LeCun et al. MNIST digits, 28x28 grey, 10 classes, 60k/10k",
    subdirs=("mnist", "MNIST/raw"),
    system_dirs=("/usr/share/datasets/mnist",),
    is_present=_present,
    read=_reader("mnist", [str(d) for d in range(10)]),
    download=_downloader("MNIST"),
    how_to_get="Run `classwise datasets --download mnist`, or put the four IDX files "
               "(train-images-idx3-ubyte[.gz], ...) in <data-dir>/mnist/.",
    grey=True,
))
