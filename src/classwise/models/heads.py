"""Output layers other than an architecture's own linear one, swapped in by `create_model(...,
head=...)` and recorded in a checkpoint's meta so that every later load builds the same
network."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ClasswiseError


class CosineHead(nn.Module):
    """s cos(theta): the cosine between the unit feature vector and each class's unit weight
    vector, times `scale`. The weight is (features, classes), as LDAM-DRW's `NormedLinear` (Cao
    et al. 2019) keeps it, initialised as theirs: uniform(-1, 1), each class column renormed."""

    def __init__(self, in_features: int, out_features: int, scale: float = 30.0):
        super().__init__()
        self.scale = scale
        self.weight = nn.Parameter(torch.empty(in_features, out_features).uniform_(-1, 1).renorm_(2, 1, 1e-5)
                                   .mul_(1e5))

    def forward(self, x):
        return self.scale * F.normalize(x, dim=1).mm(F.normalize(self.weight, dim=0))

    def extra_repr(self) -> str:
        return f"in_features={self.weight.shape[0]}, out_features={self.weight.shape[1]}, scale={self.scale}"


def with_head(net: nn.Module, head: dict | None) -> nn.Module:
    """`net` with its last nn.Linear replaced as `head` says ({"kind": "cosine", "scale": s})."""
    if not head:
        return net
    if head.get("kind") != "cosine":
        raise ClasswiseError(f"unknown output layer {head!r}; the one known is {{'kind': 'cosine', 'scale': s}}")
    name, last = next(((n, m) for n, m in reversed(list(net.named_modules())) if isinstance(m, nn.Linear)),
                      (None, None))
    if last is None:
        raise ClasswiseError(f"{type(net).__name__} has no linear output layer to replace with a cosine one")
    parent = net.get_submodule(name.rpartition(".")[0]) if "." in name else net
    setattr(parent, name.rpartition(".")[2], CosineHead(last.in_features, last.out_features, float(head["scale"])))
    return net
