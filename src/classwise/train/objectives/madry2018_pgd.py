"""PGD adversarial training (Madry et al., "Towards Deep Learning Models Resistant to
Adversarial Attacks", ICLR 2018): cross-entropy on PGD examples, random start, steps of eps/4."""

from __future__ import annotations

from .base import Objective, Step, register_objective, weighted_ce


@register_objective
class PGD(Objective):
    name = "pgd"
    paper = "Madry et al. 2018"

    def loss(self, s: Step):
        logits = s.model(s.craft(s.x, s.y))
        return weighted_ce(logits, s.y), logits
