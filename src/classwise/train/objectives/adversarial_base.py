"""The adversarial training an objective builds on, chosen by its `base` parameter: PGD-AT
(Madry et al. 2018, cross-entropy on PGD examples), TRADES (Zhang et al. 2019, clean
cross-entropy + beta KL(clean || adversarial)) or FGSM-RS (Wong et al. 2020, one step of
1.25 eps from a random start: the base that fits a CPU budget). Reweighting, margins and
regularisers then act on the base's per-image loss, the way the long-tail papers modify
cross-entropy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from .base import Params, Step
from .zhang2019_trades import trades_inputs, trades_terms

Base = Literal["pgd", "trades", "fgsm-rs"]


class AdversarialParams(Params):
    base: Base = Field(default="pgd", description="adversarial training it modifies: pgd, trades or fgsm-rs")
    trades_beta: float = Field(default=6.0, ge=0, description="TRADES KL weight (base trades only)")


def base_inputs(s: Step, cfg, base: str) -> torch.Tensor:
    """The base method's adversarial inputs for the batch."""
    if base == "trades":
        return trades_inputs(s)
    if base == "fgsm-rs":
        return s.craft(s.x, s.y, steps=1, alpha=cfg.attack_alpha or 1.25 * cfg.eps)
    return s.craft(s.x, s.y)


def per_image_loss(s: Step, base: str, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(per-image loss of PGD-AT (cross-entropy on PGD inputs) or TRADES (clean cross-entropy
    + beta KL), logits on the adversarial inputs): what the reweighting methods weigh."""
    if base == "trades":
        logits_clean, logits_adv = s.model(s.x), s.model(trades_inputs(s))
        ce, kl = trades_terms(logits_clean, logits_adv, s.y)
        return ce + beta * kl, logits_adv
    logits_adv = s.model(s.craft(s.x, s.y))
    return F.cross_entropy(logits_adv, s.y, reduction="none"), logits_adv


def base_loss(s: Step, cfg, p: AdversarialParams, *, weights: torch.Tensor | None = None,
              transform: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
              x_adv: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(weighted mean of the base's per-image loss, logits on the adversarial inputs).

    `weights` (C,) multiply each image's loss by its class's weight (mean over the batch, so
    their scale matters); `transform(logits, y)` changes the logits the cross-entropy sees
    (LDAM's margins), on the adversarial logits for PGD-AT / FGSM-RS and on the clean ones for
    TRADES (its cross-entropy term)."""
    x_adv = base_inputs(s, cfg, p.base) if x_adv is None else x_adv
    if p.base == "trades":
        logits_clean, logits_adv = s.model(s.x), s.model(x_adv)
        ce, kl = trades_terms(logits_clean, logits_adv, s.y)
        if transform is not None:  # the margins enter the cross-entropy term only, not the KL
            ce = F.cross_entropy(transform(logits_clean, s.y), s.y, reduction="none")
        per_image = ce + p.trades_beta * kl
    else:
        logits_adv = s.model(x_adv)
        shown = logits_adv if transform is None else transform(logits_adv, s.y)
        per_image = F.cross_entropy(shown, s.y, reduction="none")
    if weights is not None:
        per_image = weights.to(per_image.device, per_image.dtype)[s.y] * per_image
    return per_image.mean(), logits_adv


def effective_counts(counts: torch.Tensor, robust_accuracy: torch.Tensor, floor: float) -> torch.Tensor:
    """Class difficulty as a count, for the long-tail formulas on balanced data: the number of
    training images of class k the model gets right under attack, estimated as n_k * a_k with
    a_k its validation robust accuracy, floored: a class the model never gets right counts as
    rare rather than absent, and the imbalance the counts express is at most 1/floor. The
    objectives' default floor 0.1 caps it at 10 (CIFAR-10-LT's milder ratio): at 0.01 a class at
    0% against classes at 50% got 40-50x their weight from class-balanced and, at train_limit
    2000 on Fashion-MNIST, FGSM-RS training collapsed the next epoch."""
    return counts.double() * robust_accuracy.double().clamp_min(floor)
