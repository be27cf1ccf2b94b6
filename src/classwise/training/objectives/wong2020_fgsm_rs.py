"""FGSM with a random start (Wong et al., "Fast is better than free", ICLR 2020): one step of
1.25 eps from a uniform point of the eps-ball."""

from __future__ import annotations

import torch.nn.functional as F

from ...config.methods import FgsmRsParams
from .base import Objective, Statistics, Step, register_objective


@register_objective
class FGSMRS(Objective):
    name = "fgsm-rs"
    paper = "Wong et al. 2020"
    Params = FgsmRsParams
    statistics = (Statistics("batch", "none: the batch's own adversarial predictions"),)

    def loss(self, s: Step):
        logits = s.model(s.craft(s.x, s.y, steps=1))
        return F.cross_entropy(logits, s.y), logits
