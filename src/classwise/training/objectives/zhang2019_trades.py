"""TRADES (Zhang et al., "Theoretically Principled Trade-off between Robustness and Accuracy",
ICML 2019), as the authors' code (yaodongyu/TRADES, trades.py and train_trades_cifar10.py) runs
it: cross-entropy on clean images plus beta times the KL divergence between the clean and the
adversarial prediction,

    L = 1/N sum_i CE(f(x_i), y_i) + beta 1/N sum_i KL(softmax f(x_i) || softmax f(x'_i)),   beta = 6,

x' found by PGD-10 on that KL term in eval mode from x + 0.001 N(0, 1) (not clipped before the
first step), steps of 0.007 at eps 0.031 (0.2258 eps). The loss takes three train-mode forward
passes, in the authors' order: clean (for the cross-entropy), adversarial, clean again (for the
KL's target); train-mode BatchNorm updates its running statistics once per pass."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from ...config.methods import TradesParams
from .base import Objective, Statistics, Step, register_objective

# the train-mode forward passes of a TRADES step, as each released code orders them: "cac"
# clean, adversarial, clean again (TRADES, FRL, CFA), "ca" (WAT), "ac" (DAFA, FAT)
Passes = Literal["cac", "ca", "ac"]


def trades_inputs(s: Step, eps=None, alpha=None) -> torch.Tensor:
    """The TRADES adversarial input for the batch (eps / alpha may be per image)."""
    return s.craft(s.x, s.y, eps=eps, alpha=alpha, loss="kl", init="normal")


def trades_logits(model, x: torch.Tensor, x_adv: torch.Tensor, passes: Passes = "cac"):
    """(clean logits for the cross-entropy, adversarial logits, clean logits for the KL's
    target) from the forward passes in the given order."""
    if passes == "ac":
        adv = model(x_adv)
        clean = model(x)
        return clean, adv, clean
    clean = model(x)
    adv = model(x_adv)
    return clean, adv, model(x) if passes == "cac" else clean


def trades_terms(logits_clean: torch.Tensor, logits_adv: torch.Tensor, y: torch.Tensor,
                 logits_target: torch.Tensor | None = None):
    """Per-image (cross-entropy on the clean input, KL(clean || adversarial)); the KL's clean
    prediction from `logits_target` (the third pass) when given."""
    target = logits_clean if logits_target is None else logits_target
    ce = F.cross_entropy(logits_clean, y, reduction="none")
    kl = F.kl_div(F.log_softmax(logits_adv, 1), F.softmax(target, 1), reduction="none").sum(1)
    return ce, kl


@register_objective
class Trades(Objective):
    name = "trades"
    paper = "Zhang et al. 2019"
    code = "yaodongyu/TRADES@6e8e11b (trades.py)"
    Params = TradesParams
    statistics = (Statistics("batch", "none: the batch's own clean and adversarial predictions"),)

    def loss(self, s: Step):
        clean, adv, target = trades_logits(s.model, s.x, trades_inputs(s))
        ce, kl = trades_terms(clean, adv, s.y, target)
        return ce.mean() + self.p.beta * kl.mean(), adv
