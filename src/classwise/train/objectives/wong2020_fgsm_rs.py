"""FGSM with a random start (Wong et al., "Fast is better than free", ICLR 2020): one step of
1.25 eps from a uniform point of the eps-ball."""

from __future__ import annotations

from .base import Objective, Step, register_objective, weighted_ce


@register_objective
class FGSMRS(Objective):
    name = "fgsm-rs"
    paper = "Wong et al. 2020"

    def loss(self, s: Step):
        eps = self.cfg.eps
        logits = s.model(s.craft(s.x, s.y, steps=1, alpha=self.cfg.attack_alpha or 1.25 * eps))
        return weighted_ce(logits, s.y), logits
