"""Batches straight from in-memory uint8 (or float) tensors: index, augment, convert, in that order.
This replaces a per-image Dataset + DataLoader in the hot loop (see benchmarks/)."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from .augment import random_crop, random_hflip
from .core import ClassData


def to_float(images: torch.Tensor, device=None, channels_last: bool = False) -> torch.Tensor:
    """[0, 1] float32 images: uint8 levels divided by 255, float images as they are (a copy, so
    that an in-place step on a batch never reaches the data set)."""
    if images.is_floating_point():
        x = images.to(device, dtype=torch.float32, non_blocking=True, copy=True)
    else:
        x = images.to(device, non_blocking=True).float().div_(255)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def batches(data: ClassData, batch_size: int, *, shuffle: bool = False,
            generator: torch.Generator | None = None, crop_padding: int = 0, hflip: bool = False,
            device=None, channels_last: bool = False,
            shard: tuple[int, int] = (0, 1)) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """`shard=(rank, world)`: this rank's equal share of one global order, the remainder
    dropped so that every rank takes the same number of steps (DDP needs that)."""
    order = torch.randperm(len(data), generator=generator) if shuffle else torch.arange(len(data))
    rank, size = shard
    if size > 1:
        order = order[: len(order) // size * size][rank::size]
    n = len(order)
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        if shuffle and len(idx) < 2:
            break  # a batch of one breaks BatchNorm and adds nothing
        x = data.images[idx]
        if crop_padding:
            x = random_crop(x, crop_padding, generator)
        if hflip:
            x = random_hflip(x, generator)
        yield to_float(x, device, channels_last), data.labels[idx].to(device, non_blocking=True)
