"""Training methods: each maps a clean batch to the inputs the model is trained on. The
trainer hands them the model in the mode `TrainConfig.attack_bn` asks for."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..attacks import perturb
from ..config import TrainConfig

Method = Callable[[nn.Module, torch.Tensor, torch.Tensor, TrainConfig, torch.Generator], torch.Tensor]
METHODS: dict[str, Method] = {}


def register_method(name: str):
    def deco(fn: Method) -> Method:
        METHODS[name] = fn
        return fn
    return deco


@register_method("standard")
def standard(model, x, y, cfg, generator):
    return x


@register_method("pgd")
def pgd(model, x, y, cfg, generator):
    """Madry et al. (2018): PGD with a random start, `attack_steps` steps of eps/4."""
    alpha = cfg.attack_alpha or cfg.eps / 4
    return perturb(model, x, y, eps=cfg.eps, steps=cfg.attack_steps, alpha=alpha, norm=cfg.norm,
                   random_start=True, track=False, generator=generator).x_adv


@register_method("fgsm-rs")
def fgsm_rs(model, x, y, cfg, generator):
    """Wong et al. (2020): one FGSM step of 1.25*eps from a uniform random start."""
    alpha = cfg.attack_alpha or 1.25 * cfg.eps
    return perturb(model, x, y, eps=cfg.eps, steps=1, alpha=alpha, norm=cfg.norm,
                   random_start=True, track=False, generator=generator).x_adv
