"""Model registry: name -> constructor(num_classes, in_channels, input_size, **kwargs).
Every model built by `create_model` takes images in [0, 1]; normalization is its first layer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ClasswiseError
from .heads import with_head

MODELS: dict[str, ModelEntry] = {}


@dataclass(frozen=True)
class ModelEntry:
    name: str
    build: Callable[..., nn.Module]
    description: str
    # parameter count as published (e.g. "36.5M"), for `reference_shape` and 10 classes
    published_params: str | None = None
    reference_shape: tuple[int, int, int] = (3, 32, 32)  # input the published count refers to
    min_size: int = 8


def register_model(name: str, description: str, published_params: str | None = None,
                   reference_shape=(3, 32, 32), min_size: int = 8):
    def deco(fn):
        MODELS[name] = ModelEntry(name, fn, description, published_params, tuple(reference_shape),
                                  min_size)
        return fn
    return deco


class Normalized(nn.Module):
    """(x - mean) / std in front of a network that expects standardised inputs."""

    def __init__(self, net: nn.Module, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x):
        return self.net((x - self.mean) / self.std)


def create_model(name: str, num_classes: int = 10, in_channels: int = 3, input_size: int = 32,
                 mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                 head: dict | None = None, **kwargs) -> nn.Module:
    """The architecture `name` for images in [0, 1], its output layer replaced as `head` says
    (see models/heads.py; a checkpoint's meta records it)."""
    for what, value, low in (("num_classes", num_classes, 1), ("in_channels", in_channels, 1),
                             ("input_size", input_size, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ClasswiseError(f"create_model: {what} must be a whole number of at least {low}, got {value!r}")
    check_arch(name)
    if name.startswith("tv:"):
        from .torchvision_models import IMAGENET_MEAN, IMAGENET_STD, build_torchvision

        net = with_head(build_torchvision(name[3:], num_classes), head)
        return Normalized(net, mean or IMAGENET_MEAN, std or IMAGENET_STD)
    if name not in MODELS:
        raise ClasswiseError(f"unknown architecture '{name}'; choose one of: {', '.join(sorted(MODELS))}, "
                             "or tv:<torchvision model> (e.g. tv:resnet50)")
    entry = MODELS[name]
    if input_size < entry.min_size:
        raise ClasswiseError(f"{name} needs inputs of at least {entry.min_size} px, got {input_size}")
    net = with_head(entry.build(num_classes=num_classes, in_channels=in_channels, input_size=input_size, **kwargs),
                    head)
    mean = [0.0] * in_channels if mean is None else list(mean)
    std = [1.0] * in_channels if std is None else list(std)
    if len(mean) != in_channels or len(std) != in_channels:
        raise ClasswiseError(f"mean/std need {in_channels} values, got {len(mean)}/{len(std)}")
    return Normalized(net, mean, std)


def check_arch(name: str) -> None:
    """Refuse an unknown architecture name without building anything (grids check every run
    this way before the first one starts)."""
    if not isinstance(name, str):
        raise ClasswiseError(f"an architecture is a name, got {name!r}")
    if name.startswith("tv:"):
        from .torchvision_models import torchvision_names

        if name[3:] not in torchvision_names():
            raise ClasswiseError(f"torchvision has no classification model '{name[3:]}' (from --arch {name}); "
                                 "see `classwise models` or torchvision.models.list_models()")
        return
    if name not in MODELS:
        raise ClasswiseError(f"unknown architecture '{name}'; choose one of: {', '.join(sorted(MODELS))}, "
                             "or tv:<torchvision model> (e.g. tv:resnet50)")


def published_range(text: str) -> tuple[float, float]:
    """"36.5M" -> (36.5e6, 0.05e6): the value and half a unit of its last printed digit."""
    scale = {"K": 1e3, "M": 1e6}.get(text[-1], 1.0)
    digits = text[:-1] if text[-1] in "KM" else text
    decimals = len(digits.split(".")[1]) if "." in digits else 0
    return float(digits) * scale, 0.5 * 10 ** -decimals * scale


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def flat_features(features: nn.Module, in_channels: int, input_size: int) -> int:
    """Width of `features`' flattened output for one image, found by a dry run."""
    with torch.no_grad():
        return features(torch.zeros(1, in_channels, input_size, input_size)).numel()
