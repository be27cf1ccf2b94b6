"""Adversarial training with a targeted attack toward a vulnerable or critical class (Benz, Zhang,
Karjauv and Kweon, "Robustness May Be at Odds with Fairness", 2021: "a targeted attack by
choosing the vulnerable or important class as the target class"): a fraction `mix` of each batch
is crafted by targeted PGD toward class t,

    x' = argmin_{||x' - x|| <= eps} CE(f(x'), t),

the rest by untargeted PGD (images of class t itself always untargeted), and the model is
trained with cross-entropy on the true labels of all of them (PGD-AT otherwise). The
targeted images are the batch's first round(mix * N) (batches are shuffled). `target` is a
class (name or index) or "weakest": the class with the lowest validation robust accuracy,
chosen again at each epoch end; until the first validation there is none, so epoch 1 is plain
PGD-AT. `base` fgsm-rs crafts both kinds with one step of 1.25 eps."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ...attacks.core import PerImage
from ...config.methods import TargetedParams
from .base import Objective, Statistics, Step, class_index, register_objective, robust_per_class


@register_objective
class Targeted(Objective):
    name = "targeted"
    paper = "Benz et al. 2021"
    Params = TargetedParams
    state = ("target_class",)
    statistics = (Statistics("check", "per-class robust accuracy (target \"weakest\")"),)

    def __init__(self, cfg, classes, class_counts):
        super().__init__(cfg, classes, class_counts)
        self.weakest = self.p.target == "weakest"
        self.target_class = -1 if self.weakest else class_index(self.p.target, self.classes)

    def targeted_mask(self, y: torch.Tensor) -> torch.Tensor:
        """Which images of the batch are attacked toward the target."""
        first = torch.arange(len(y), device=y.device) < round(self.p.mix * len(y))
        return first & (y != self.target_class) if self.target_class >= 0 else torch.zeros_like(first)

    def loss(self, s: Step):
        mask = self.targeted_mask(s.y)
        t = self.target_class

        def objective(logits, rows):  # ascended: toward t for the masked images, away from y for the rest
            y = s.y[rows]
            away = F.cross_entropy(logits, y, reduction="none")
            if t < 0:
                return away
            toward = -F.cross_entropy(logits, torch.full_like(y, t), reduction="none")
            return torch.where(mask[rows], toward, away)

        steps = {"steps": 1} if self.p.base == "fgsm-rs" else {}
        # image by image: the attack may run in parts, one a CPU thread, as the base's does
        logits = s.model(s.craft(s.x, s.y, loss=PerImage(objective), **steps))
        return F.cross_entropy(logits, s.y), logits

    def end_epoch(self, epoch, val, robust_key):
        if self.weakest:
            self.target_class = int(torch.argmin(robust_per_class(val, robust_key)))
