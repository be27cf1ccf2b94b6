"""DAFA, distance-aware fair adversarial training (Lee, Lee, Jang, Park, Bae and Yoon, "DAFA:
Distance-Aware Fair Adversarial Training", ICLR 2024), as the authors' code (rucy74/DAFA,
utils.calculate_class_weights and losses.py) runs it.

At the end of the warm-up, p_ij is the mean adversarial softmax probability of class j over
the images of class i (the class similarity), and class i's weight, lambda = 1.0,

    W_i = 1 + lambda * sum_{j != i} ( p_ij p_jj    if p_ii < p_jj   (i is the harder of the two)
                                     -p_ji p_ii    otherwise ),

is fixed for the rest of the run (all 1 before). It scales class i's eps and PGD step,
W_i eps and W_i alpha, and its loss: the cross-entropy on the adversarial image with PGD-AT,
the clean cross-entropy term with TRADES (the KL term unweighted, as their trades_loss).

The authors take p from the training set's adversarial examples in the last warm-up epoch;
here it is the epoch-end validation pass's class sums (`val.class_sums[robust_key]["probs"]`:
the run's PGD on the validation subset, images misclassified clean keeping their clean
softmax), so no second pass over the training data. `warmup` defaults to the paper's 70 of
110 epochs scaled to the run (at least 1); give an integer to fix it."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field

from .base import Objective, Params, Step, register_objective
from .zhang2019_trades import trades_inputs, trades_terms

PAPER_WARMUP = 70 / 110  # the authors' warm-up, as a share of their 110 epochs


class DafaParams(Params):
    base: Literal["pgd", "trades"] = Field(default="trades", description="adversarial training it reweights")
    lam: float = Field(default=1.0, ge=0, description="scale of the class weights (CIFAR-10 1.0, CIFAR-100 "
                                                      "and STL-10 1.5)")
    warmup: int | None = Field(default=None, ge=1, description="epochs before the weights are set (default: the "
                                                               "paper's 70/110 of the run, at least 1)")
    beta: float = Field(default=6.0, ge=0, description="TRADES KL weight (base trades)")


def dafa_weights(similarity: np.ndarray, lam: float) -> torch.Tensor:
    """W from the C x C class similarity p (rows: true class; a row of NaN, a class with no
    validation image, contributes nothing and keeps its weight 1)."""
    p = np.nan_to_num(np.asarray(similarity, dtype=np.float64))
    d = np.diag(p)
    harder = d[:, None] < d[None, :]  # [i, j]: class i is harder than class j
    gain = np.where(harder, p * d[None, :], -p.T * d[:, None])
    np.fill_diagonal(gain, 0)
    return torch.tensor(1 + lam * gain.sum(1), dtype=torch.float64)


@register_objective
class Dafa(Objective):
    name = "dafa"
    paper = "Lee et al. 2024"
    Params = DafaParams
    state = ("weights",)

    def __init__(self, cfg, classes, class_counts):
        super().__init__(cfg, classes, class_counts)
        self.weights = torch.ones(self.num_classes, dtype=torch.float64)

    @property
    def warmup(self) -> int:
        return self.p.warmup if self.p.warmup is not None else max(1, round(PAPER_WARMUP * self.cfg.epochs))

    def end_epoch(self, epoch, val, robust_key):
        if robust_key and epoch == self.warmup:
            self.weights = dafa_weights(val.class_mean(robust_key, "probs"), self.p.lam)

    def loss(self, s: Step):
        m = self.weights.to(s.x.device, s.x.dtype)[s.y]
        r = m.clamp_min(0)  # a weight below 0 (never seen at lambda 1) must not turn the ball inside out
        eps, alpha = self.cfg.eps * r, (self.cfg.attack_alpha or self.cfg.eps / 4) * r
        if self.p.base == "trades":
            x_adv = trades_inputs(s, eps=eps, alpha=alpha)
            logits_clean, logits_adv = s.model(s.x), s.model(x_adv)
            ce, kl = trades_terms(logits_clean, logits_adv, s.y)
            loss = (m * ce).mean() + self.p.beta * kl.mean()
        else:
            logits_adv = s.model(s.craft(s.x, s.y, eps=eps, alpha=alpha))
            loss = (m * F.cross_entropy(logits_adv, s.y, reduction="none")).mean()
        return loss, logits_adv
