"""Image trees on disk: ImageNet's `val/<wnid>/*.JPEG`, Tiny-ImageNet's official layout, and
any `class/image` folder. Large sets are read in batches (`FolderSource`), never all at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import CorruptDataError
from .core import ClassData


def _load(path: Path, size: int, resize: int | None) -> torch.Tensor:
    from torchvision.transforms import functional as TF

    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
            if resize:  # the standard evaluation preprocessing: resize the short side, centre crop
                img = TF.center_crop(TF.resize(img, resize), size)
            elif img.size != (size, size):
                img = TF.resize(img, [size, size])
            return TF.pil_to_tensor(img)
    except Image.DecompressionBombError as exc:
        # PIL refuses images this large before decoding them: gigabytes of pixels, or an attack
        raise CorruptDataError(f"{path}: image too large to decode ({exc}); remove it or shrink it") from exc
    except (OSError, ValueError, SyntaxError) as exc:  # PIL raises these for broken or unknown files
        raise CorruptDataError(f"{path}: not a readable image ({exc})") from exc


@dataclass
class FolderSource:
    """Labelled image files, decoded on demand. Has what `evaluate` needs of a data set:
    `classes`, `labels`, `shape`, `images_at(indices)`, `subset(indices)`."""

    files: list[Path]
    labels: torch.Tensor
    classes: list[str]
    name: str = "imagefolder"
    size: int = 224
    resize: int | None = 256
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.files)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (3, self.size, self.size)

    def class_counts(self) -> torch.Tensor:
        return torch.bincount(self.labels, minlength=self.num_classes)

    def subset(self, index) -> FolderSource:
        index = np.asarray(index, dtype=np.int64)
        return replace(self, files=[self.files[i] for i in index], labels=self.labels[torch.as_tensor(index)])

    def images_at(self, index) -> torch.Tensor:
        paths = [self.files[i] for i in np.asarray(index, dtype=np.int64)]
        with ThreadPoolExecutor(max_workers=4) as pool:  # PIL decodes outside the GIL
            images = list(pool.map(lambda p: _load(p, self.size, self.resize), paths))
        return torch.stack(images) if images else torch.zeros(0, *self.shape, dtype=torch.uint8)

    def materialize(self) -> ClassData:
        """All images in memory, for training on a small tree."""
        return ClassData(self.images_at(np.arange(len(self))), self.labels.clone(), list(self.classes),
                         name=self.name, meta=dict(self.meta))


def class_tree(root: Path, name: str, size: int = 224, resize: int | None = 256,
               names: dict[str, str] | None = None) -> FolderSource:
    """`root/<class>/<image>` with torchvision's rules (sorted class folders, known extensions)."""
    from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

    try:
        folders, to_index = find_classes(str(root))
        samples = make_dataset(str(root), to_index, extensions=IMG_EXTENSIONS)
    except (FileNotFoundError, OSError) as exc:
        raise CorruptDataError(f"{root}: {exc}") from exc
    classes = [names.get(f, f) for f in folders] if names else folders
    return FolderSource([Path(p) for p, _ in samples], torch.tensor([c for _, c in samples], dtype=torch.long),
                        classes, name=name, size=size, resize=resize, meta={"source": str(root), "wnids": folders})
