"""Standard training: cross-entropy on clean images."""

from __future__ import annotations

import torch.nn.functional as F

from .base import Objective, Statistics, Step, register_objective


@register_objective
class Standard(Objective):
    name = "standard"
    paper = "-"
    adversarial = False
    statistics = (Statistics("batch", "none"),)

    def loss(self, s: Step):
        logits = s.model(s.x)
        return F.cross_entropy(logits, s.y), logits
