"""Standard training: cross-entropy on clean images."""

from __future__ import annotations

from .base import Objective, Step, register_objective, weighted_ce


@register_objective
class Standard(Objective):
    name = "standard"
    paper = "-"
    adversarial = False

    def loss(self, s: Step):
        logits = s.model(s.x)
        return weighted_ce(logits, s.y), logits
