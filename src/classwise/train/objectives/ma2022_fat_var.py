"""FAT, fairly adversarial training (Ma, Wang and Liu, "On the Tradeoff Between Robustness and
Fairness", NeurIPS 2022): the base's loss plus alpha times the variance of the per-class mean
losses in the batch,

    L = 1/N sum_i l_i + alpha * Var_k( mean_{i: y_i = k} l_i ),      alpha = 0.1,

with l_i the PGD-AT cross-entropy on the adversarial image (the authors' pgd_var.py) or the
per-image TRADES loss CE(x_i) + beta KL(x_i || x'_i). The variance is the unbiased one over
the classes present in the batch (torch.var, as their code); their buffer is 100 entries long
whatever the data set, so on 10 classes it also counts 90 zeros, which we leave out. It uses
only the batch's own losses: no state, no extra pass."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from .adversarial_base import per_image_loss
from .base import Objective, Params, Step, register_objective


class FatVarParams(Params):
    base: Literal["pgd", "trades"] = Field(default="pgd", description="adversarial training it regularises")
    alpha: float = Field(default=0.1, ge=0, description="weight of the variance of per-class losses")
    beta: float = Field(default=6.0, ge=0, description="TRADES KL weight (base trades)")


def class_loss_variance(per_image: torch.Tensor, y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Unbiased variance of the per-class mean losses over the classes present in the batch
    (0 when fewer than two are)."""
    sums = torch.zeros(num_classes, device=per_image.device, dtype=per_image.dtype).index_add(0, y, per_image)
    counts = torch.bincount(y, minlength=num_classes).to(per_image.dtype)
    present = counts > 0
    means = sums[present] / counts[present]
    return means.var() if means.numel() > 1 else per_image.new_zeros(())


@register_objective
class FatVar(Objective):
    name = "fat-var"
    paper = "Ma et al. 2022"
    Params = FatVarParams

    def loss(self, s: Step):
        per_image, logits_adv = per_image_loss(s, self.p.base, self.p.beta)
        var = class_loss_variance(per_image, s.y, self.num_classes)
        return per_image.mean() + self.p.alpha * var, logits_adv
