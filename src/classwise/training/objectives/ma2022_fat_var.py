"""FAT, fairly adversarial training (Ma, Wang and Liu, "On the Tradeoff Between Robustness and
Fairness", NeurIPS 2022), as the authors' code (wzekai99/FAT, pgd_var.py and trades_var.py) runs
it: the base's loss plus alpha times the variance of the per-class mean adversarial
cross-entropies in the batch,

    L = L_base + alpha * Var(v),   v_k = mean_{i: y_i = k} CE(f(x'_i), y_i),   alpha = 0.1,

x' from PGD-10 on the cross-entropy (eval mode, uniform start, steps of 0.007 at eps 0.031) for
both bases. L_base is the mean adversarial cross-entropy (pgd), or TRADES's loss on those same
PGD inputs, its forward passes adversarial then clean (trades). Var is the unbiased variance
(torch.var) over the authors' buffer of `slots` = 100 entries: a class absent from the batch,
and on 10 classes 90 slots no class fills, count as 0 (at 10 classes this makes the term ~10x
what a variance over the classes alone gives: `present_only` takes that instead). It uses only
the batch's own losses: no state, no extra pass."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ...config.methods import FatVarParams
from .base import Difference, Objective, Statistics, Step, register_objective
from .zhang2019_trades import trades_logits, trades_terms


def class_loss_variance(per_image: torch.Tensor, y: torch.Tensor, num_classes: int, slots: int | None = None
                        ) -> torch.Tensor:
    """Unbiased variance of the per-class mean losses: over `max(slots, C)` entries with absent
    classes and unused slots at 0 (the authors' buffer), or with `slots=None` over the classes
    present in the batch (0 when fewer than two are)."""
    sums = torch.zeros(num_classes, device=per_image.device, dtype=per_image.dtype).index_add(0, y, per_image)
    counts = torch.bincount(y, minlength=num_classes).to(per_image.dtype)
    present = counts > 0
    if slots is None:
        means = sums[present] / counts[present]
        return means.var() if means.numel() > 1 else per_image.new_zeros(())
    buffer = per_image.new_zeros(max(slots, num_classes))
    buffer[:num_classes] = torch.where(present, sums / counts.clamp_min(1), 0)
    return buffer.var()


@register_objective
class FatVar(Objective):
    name = "fat-var"
    paper = "Ma et al. 2022"
    code = "wzekai99/FAT@80e29f6 (pgd_var.py, trades_var.py)"
    Params = FatVarParams
    statistics = (Statistics("batch", "the batch's per-class mean adversarial cross-entropy"),)
    differences = (Difference("present_only", "the variance over a 100-slot buffer, unfilled slots 0",
                              "present_only=true: over the classes present in the batch",
                              "the variance of what the paper defines, independent of the buffer's length"),)

    def loss(self, s: Step):
        x_adv = s.craft(s.x, s.y)
        if self.p.base == "trades":
            clean, adv, target = trades_logits(s.model, s.x, x_adv, passes="ac")
            ce, kl = trades_terms(clean, adv, s.y, target)
            base = ce.mean() + self.p.beta * kl.mean()
        else:
            adv = s.model(x_adv)
        adv_ce = F.cross_entropy(adv, s.y, reduction="none")
        if self.p.base == "pgd":
            base = adv_ce.mean()
        var = class_loss_variance(adv_ce, s.y, self.num_classes, None if self.p.present_only else self.p.slots)
        return base + self.p.alpha * var, adv
