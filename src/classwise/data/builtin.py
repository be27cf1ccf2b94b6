"""Data sets that need no files: scikit-learn's bundled digits and a synthetic set for tests."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .core import ClassData, stratified_split
from .registry import DatasetSpec, register_dataset


def _read_digits(_folder=None) -> tuple[ClassData, ClassData]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    data = ClassData(torch.from_numpy(images), torch.from_numpy(bunch.target.astype(np.int64)),
                     [str(d) for d in range(10)], name="digits", meta={"source": "sklearn"})
    # the set has no official test split: a fixed stratified quarter serves as one
    return stratified_split(data, 0.25, seed=0)


def make_synthetic(num_classes: int = 10, shape=(1, 28, 28), n_train: int = 2000,
                   n_test: int = 500, seed: int = 0, name: str = "synthetic"):
    """Smooth random prototype per class plus noise that grows with the class index, so
    that classes differ in difficulty the way real ones do."""
    g = torch.Generator().manual_seed(seed)
    c, h, w = shape
    low = torch.rand(num_classes, c, max(h // 4, 2), max(w // 4, 2), generator=g)
    protos = F.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)
    classes = [f"class{i}" for i in range(num_classes)]

    def sample(n):
        labels = torch.arange(n) % num_classes
        labels = labels[torch.randperm(n, generator=g)]
        sigma = 0.15 + 0.35 * labels.float() / max(num_classes - 1, 1)
        x = protos[labels] + sigma[:, None, None, None] * torch.randn(n, c, h, w, generator=g)
        images = (x.clamp(0, 1) * 255).round().to(torch.uint8)
        return ClassData(images, labels.long(), classes, name=name, meta={"source": "synthetic"})

    return sample(n_train), sample(n_test)


register_dataset(DatasetSpec(
    name="digits",
    description="scikit-learn's bundled UCI handwritten digits, 8x8 grey, 10 classes, 1797 images",
    subdirs=(), system_dirs=(), is_present=lambda d: True, read=_read_digits,
    how_to_get="It ships with scikit-learn: `pip install scikit-learn`.", grey=True, builtin=True,
))

register_dataset(DatasetSpec(
    name="synthetic",
    description="generated class-conditional 28x28 grey images for tests, 10 classes, 2000/500",
    subdirs=(), system_dirs=(), is_present=lambda d: True, read=lambda _f: make_synthetic(),
    how_to_get="It is generated in memory.", grey=True, builtin=True,
))
