"""PGD adversarial training (Madry et al., "Towards Deep Learning Models Resistant to
Adversarial Attacks", ICLR 2018): cross-entropy on PGD examples, random start, steps of eps/4
(their CIFAR-10 2/255 at 8/255)."""

from __future__ import annotations

import torch.nn.functional as F

from .base import Objective, Statistics, Step, register_objective


@register_objective
class PGD(Objective):
    name = "pgd"
    paper = "Madry et al. 2018"
    statistics = (Statistics("batch", "none: the batch's own adversarial predictions"),)

    def loss(self, s: Step):
        logits = s.model(s.craft(s.x, s.y))
        return F.cross_entropy(logits, s.y), logits
