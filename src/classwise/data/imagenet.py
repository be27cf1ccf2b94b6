"""ImageNet validation set (`val/<wnid>/*.JPEG`, streamed with resize-256 / centre-crop-224),
Tiny-ImageNet (official layout, 64 px, in memory) and generic image folders."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from ..errors import CorruptDataError
from ..io import atomic_torch_save
from .core import ClassData
from .folder import FolderSource, class_tree
from .registry import DatasetSpec, register_dataset


def imagenet_names(wnids: list[str], folder: Path) -> dict[str, str]:
    """Human-readable names: LOC_synset_mapping.txt if the tree has one, else torchvision's
    list of the 1,000 categories (which follows the sorted-wnid order)."""
    for mapping in (folder / "LOC_synset_mapping.txt", folder.parent / "LOC_synset_mapping.txt"):
        if mapping.is_file():
            pairs = (line.split(" ", 1) for line in mapping.read_text().splitlines() if line.strip())
            return {w: n.split(",")[0].strip() for w, n in pairs}
    if len(wnids) == 1000:
        from torchvision.models import ResNet50_Weights

        return dict(zip(wnids, ResNet50_Weights.DEFAULT.meta["categories"], strict=True))
    return {}


def _read_imagenet(folder: Path):
    val = folder / "val"
    wnids = sorted(p.name for p in val.iterdir() if p.is_dir())
    return None, class_tree(val, "imagenet", 224, 256, imagenet_names(wnids, folder))


register_dataset(DatasetSpec(
    name="imagenet",
    description="ILSVRC-2012 validation set, val/<wnid>/*.JPEG, streamed at 224 px (1,000 classes)",
    subdirs=("imagenet", "ILSVRC2012", "imagenet/ILSVRC/Data/CLS-LOC"),
    system_dirs=(),
    is_present=lambda d: (d / "val").is_dir() and any(p.is_dir() for p in (d / "val").iterdir()),
    read=_read_imagenet,
    how_to_get="ImageNet needs an account at image-net.org; put the validation images in "
               "<data-dir>/imagenet/val/<wnid>/*.JPEG (valprep.sh sorts them into class folders).",
    hflip=True,
    default_arch="tv:resnet50",
))


# ---------------------------------------------------------------- Tiny-ImageNet
def _tiny_words(folder: Path) -> dict[str, str]:
    words = folder / "words.txt"
    if not words.is_file():
        return {}
    pairs = (line.split("\t", 1) for line in words.read_text().splitlines() if "\t" in line)
    return {w: n.split(",")[0].strip() for w, n in pairs}


def _tiny_files(folder: Path):
    wnids_file = folder / "wnids.txt"
    if wnids_file.is_file():
        wnids = sorted(w.strip() for w in wnids_file.read_text().split() if w.strip())
    else:
        wnids = sorted(p.name for p in (folder / "train").iterdir() if p.is_dir())
    index = {w: i for i, w in enumerate(wnids)}
    train = [(p, index[w]) for w in wnids for p in sorted((folder / "train" / w / "images").glob("*.JPEG"))]
    val = []
    for line in (folder / "val" / "val_annotations.txt").read_text().splitlines():
        parts = line.split("\t")
        if len(parts) < 2:
            continue
        if parts[1] not in index:
            raise CorruptDataError(f"{folder}/val/val_annotations.txt names unknown class {parts[1]}")
        val.append((folder / "val" / "images" / parts[0], index[parts[1]]))
    return wnids, train, val


def _cached(cache: Path, labels_of: dict[str, torch.Tensor]) -> dict | None:
    """The cached tensors if the cache holds what this tree decodes to; None (rebuild) when it
    is missing, truncated by a kill, or not ours (weights_only: a planted pickle runs nothing)."""
    if not cache.is_file():
        return None
    try:
        blob = torch.load(cache, map_location="cpu", weights_only=True)
        for split, expected in labels_of.items():
            images, labels = blob[split]
            if not (isinstance(images, torch.Tensor) and images.dtype == torch.uint8 and images.ndim == 4
                    and tuple(images.shape[1:]) == (3, 64, 64) and len(images) == len(expected)
                    and isinstance(labels, torch.Tensor) and torch.equal(labels, expected)):
                return None
        return blob
    except Exception:  # noqa: BLE001 - any unreadable cache is rebuilt from the images
        return None


def _read_tiny(folder: Path) -> tuple[ClassData, ClassData]:
    wnids, train, val = _tiny_files(folder)
    words = _tiny_words(folder)
    classes = [words.get(w, w) for w in wnids]
    key = hashlib.sha1(f"{folder.resolve()}:{len(train)}:{len(val)}".encode()).hexdigest()[:12]
    cache = Path.home() / ".cache" / "classwise" / f"tiny-imagenet-{key}.pt"
    # decoding 110,000 JPEGs takes minutes; the tensors load in seconds
    blob = _cached(cache, {s: torch.tensor([c for _, c in items], dtype=torch.long)
                           for s, items in (("train", train), ("val", val))})
    if blob is None:
        blob = {}
        for split, items in (("train", train), ("val", val)):
            src = FolderSource([p for p, _ in items], torch.tensor([c for _, c in items], dtype=torch.long),
                               classes, size=64, resize=None)
            blob[split] = (src.images_at(np.arange(len(src))), src.labels)
        atomic_torch_save(cache, blob)
    meta = {"source": str(folder), "wnids": wnids}
    return tuple(ClassData(blob[s][0], blob[s][1], classes, name="tiny-imagenet", meta=meta) for s in ("train", "val"))


register_dataset(DatasetSpec(
    name="tiny-imagenet",
    description="Tiny-ImageNet-200, 64x64 colour, 200 classes, 100k/10k (the labelled val set is the test set)",
    subdirs=("tiny-imagenet-200", "tiny-imagenet"),
    system_dirs=(),
    is_present=lambda d: (d / "train").is_dir() and (d / "val" / "val_annotations.txt").is_file(),
    read=_read_tiny,
    how_to_get="Unpack tiny-imagenet-200.zip (http://cs231n.stanford.edu/tiny-imagenet-200.zip) into <data-dir>/.",
    hflip=True,
    default_arch="preact-resnet18",
))


# ---------------------------------------------------------------- any class/image tree
def _native_size(files: list[Path], sample: int = 64) -> int | None:
    """The side of a tree's images when the ones sampled (up to `sample`, spread over the
    files) are all one square size below 224: such images are read as they are, not blown up
    to 224 px (81 images of 28 px took 20 s an epoch at 224, a ResNet-18 step per image)."""
    from PIL import Image

    sizes = set()
    for p in files[:: max(1, len(files) // sample)][:sample]:
        try:
            with Image.open(p) as img:
                sizes.add(img.size)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            return None  # reading it will say what is wrong with it
    if len(sizes) != 1:
        return None
    w, h = sizes.pop()
    return w if w == h and 8 <= w < 224 else None


def _read_imagefolder(folder: Path):
    """`train/` and `val/` (or `test/`) subtrees if present; else the whole tree is the test set.
    Images of one square size below 224 px are read at that size; others at 224 (resize 256,
    centre crop)."""
    from dataclasses import replace

    test_dir = next((folder / s for s in ("val", "test") if (folder / s).is_dir()), None)
    if (folder / "train").is_dir() and test_dir is not None:
        train = class_tree(folder / "train", "imagefolder")
        test = class_tree(test_dir, "imagefolder")
        if train.classes != test.classes:
            raise CorruptDataError(f"{folder}: train/ and {test_dir.name}/ hold different class folders")
        side = _native_size(train.files + test.files)
        if side:
            train, test = (replace(t, size=side, resize=None) for t in (train, test))
        return train.materialize(), test
    test = class_tree(folder, "imagefolder")
    side = _native_size(test.files)
    return None, replace(test, size=side, resize=None) if side else test


register_dataset(DatasetSpec(
    name="imagefolder",
    description="any <data-dir>/<class>/<image> tree (or train/ + val/ subtrees), 224 px (images of one square "
                "size below 224: that size)",
    subdirs=("",),
    system_dirs=(),
    is_present=lambda d: any(p.is_dir() for p in d.iterdir()) if d.is_dir() else False,
    read=_read_imagefolder,
    how_to_get="Point --data-dir at a folder with one subfolder of images per class.",
    needs_data_dir=True,
    default_arch="tv:resnet18",
))

