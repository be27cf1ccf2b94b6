"""The adversarial training an objective builds on, chosen by its `base` parameter: PGD-AT
(Madry et al. 2018, cross-entropy on PGD examples), TRADES (Zhang et al. 2019, clean
cross-entropy + beta KL(clean || adversarial), as the authors' code runs it: see
zhang2019_trades.py) or FGSM-RS (Wong et al. 2020, one step of 1.25 eps from a random start: the
base that fits a CPU budget). Reweighting, margins and regularisers then act on the base's
per-image loss, the way the long-tail papers modify cross-entropy. The base loss is written
here once; every objective that weighs or transforms it calls `base_loss`."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ...config.methods import AdversarialParams
from .base import Step
from .zhang2019_trades import Passes, trades_inputs, trades_logits, trades_terms


def base_inputs(s: Step, base: str, eps=None, alpha=None) -> torch.Tensor:
    """The base method's adversarial inputs for the batch (eps and step may be per image)."""
    if base == "trades":
        return trades_inputs(s, eps=eps, alpha=alpha)
    if base == "fgsm-rs":
        return s.craft(s.x, s.y, steps=1, eps=eps, alpha=alpha)
    return s.craft(s.x, s.y, eps=eps, alpha=alpha)


def per_image_loss(s: Step, base: str, beta: float, *, x_adv: torch.Tensor | None = None, passes: Passes = "cac",
                   transform: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """(per-image loss of the base, logits on the adversarial inputs): the cross-entropy on the
    adversarial image (PGD-AT, FGSM-RS), or CE(x) + beta KL(x || x') (TRADES, its forward passes
    in the order `passes`). `transform(logits, y)` changes the logits the cross-entropy sees
    (LDAM's margins): the adversarial ones, or TRADES's clean ones (its cross-entropy term)."""
    x_adv = base_inputs(s, base) if x_adv is None else x_adv
    if base == "trades":
        clean, adv, target = trades_logits(s.model, s.x, x_adv, passes)
        _, kl = trades_terms(clean, adv, s.y, target)
        shown = clean if transform is None else transform(clean, s.y)
        return F.cross_entropy(shown, s.y, reduction="none") + beta * kl, adv
    adv = s.model(x_adv)
    shown = adv if transform is None else transform(adv, s.y)
    return F.cross_entropy(shown, s.y, reduction="none"), adv


def base_loss(s: Step, p: AdversarialParams, *, weights: torch.Tensor | None = None, normalise: bool = False,
              transform: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """(weighted mean of the base's per-image loss, logits on the adversarial inputs).

    `weights` (C,) multiply each image's loss by its class's weight: divided by the batch size
    (the cost-sensitive form, where the weights' scale matters), or with `normalise` by the sum
    of the batch's weights (PyTorch's `cross_entropy(weight=...)`, as LDAM-DRW's code has it)."""
    per_image, adv = per_image_loss(s, p.base, p.trades_beta, transform=transform)
    if weights is None:
        return per_image.mean(), adv
    w = weights.to(per_image.device, per_image.dtype)[s.y]
    return ((w * per_image).sum() / w.sum() if normalise else (w * per_image).mean()), adv


def effective_counts(counts: torch.Tensor, robust_accuracy: torch.Tensor, floor: float) -> torch.Tensor:
    """Class difficulty as a count, for the long-tail formulas on balanced data: the number of
    training images of class k the model gets right under attack, estimated as n_k * a_k with
    a_k its validation robust accuracy, floored: a class the model never gets right counts as
    rare rather than absent, and the imbalance the counts express is at most 1/floor. The
    objectives' default floor 0.1 caps it at 10 (CIFAR-10-LT's milder ratio): at 0.01 a class at
    0% against classes at 50% got 40-50x their weight from class-balanced and, at train_limit
    2000 on Fashion-MNIST, FGSM-RS training collapsed the next epoch."""
    return counts.double() * robust_accuracy.double().clamp_min(floor)


def imbalanced(counts: torch.Tensor, ratio: float = 1.5) -> bool:
    """Whether the training counts themselves are long-tailed (largest over smallest class at
    least `ratio`): then the long-tail methods use them as their papers do; on balanced data
    (a stratified subset's counts differ by one) the class difficulty stands in for them."""
    counts = counts.double()
    return bool(counts.min() > 0 and counts.max() / counts.min() >= ratio)
