"""The corruption registry: name -> `Corruption`, filled where each corruption is defined."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

CORRUPTIONS: dict[str, Corruption] = {}


@dataclass(frozen=True)
class Corruption:
    name: str  # as the CIFAR-10-C file is named (`gaussian_noise.npy`)
    family: str  # noise, blur, weather, digital
    fn: Callable[..., torch.Tensor]  # (x (N, C, H, W) in [0, 1], severity 1..5, generator) -> same shape
    params: tuple  # the CIFAR-10-C table, one entry per severity
    extra: bool = False  # one of the four held-out extras (speckle, gaussian blur, spatter, saturate)
    needs: str | None = None  # files it cannot work without

    def __call__(self, x: torch.Tensor, severity: int, generator: torch.Generator | None = None, **kw) -> torch.Tensor:
        if severity not in range(1, 6):
            raise ValueError(f"{self.name}: severity must be 1..5, got {severity}")
        return self.fn(x, severity, generator, **kw)


def register_corruption(family: str, params, *, extra: bool = False, needs: str | None = None):
    def deco(fn):
        CORRUPTIONS[fn.__name__] = Corruption(fn.__name__, family, fn, tuple(params), extra, needs)
        return fn
    return deco


def param(name: str, severity: int):
    return CORRUPTIONS[name].params[severity - 1]
