"""TRADES (Zhang et al., "Theoretically Principled Trade-off between Robustness and Accuracy",
ICML 2019): cross-entropy on clean images plus beta times the KL divergence between the clean
and the adversarial prediction, the adversarial input found by PGD-10 on that KL term from
x + 0.001 N(0, 1), steps of eps/4 (the authors' 0.007 at eps 0.031), beta = 6."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field

from .base import Objective, Params, Step, register_objective


class TradesParams(Params):
    beta: float = Field(default=6.0, ge=0, description="weight of the KL term")


def trades_inputs(s: Step, eps=None, alpha=None) -> torch.Tensor:
    """The TRADES adversarial input for the batch (eps / alpha may be per image)."""
    start = s.x + 0.001 * torch.randn(s.x.shape, device=s.x.device, dtype=s.x.dtype)
    return s.craft(s.x, s.y, eps=eps, alpha=alpha, loss="kl", start=start.clamp(0, 1))


def trades_terms(logits_clean: torch.Tensor, logits_adv: torch.Tensor, y: torch.Tensor):
    """Per-image (cross-entropy on the clean input, KL(clean || adversarial))."""
    ce = F.cross_entropy(logits_clean, y, reduction="none")
    kl = F.kl_div(F.log_softmax(logits_adv, 1), F.softmax(logits_clean, 1), reduction="none").sum(1)
    return ce, kl


@register_objective
class Trades(Objective):
    name = "trades"
    paper = "Zhang et al. 2019"
    Params = TradesParams

    def loss(self, s: Step):
        x_adv = trades_inputs(s)
        # two passes, as the authors' code: train-mode BatchNorm sees each batch on its own
        logits_clean, logits_adv = s.model(s.x), s.model(x_adv)
        ce, kl = trades_terms(logits_clean, logits_adv, s.y)
        return ce.mean() + self.p.beta * kl.mean(), logits_adv
