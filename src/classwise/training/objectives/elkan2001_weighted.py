"""Cost-sensitive adversarial training (Elkan, "The Foundations of Cost-Sensitive Learning",
IJCAI 2001; Benz et al. 2021 propose a "higher weight on the vulnerable classes"): the base's
per-image loss times a per-class cost,

    L = 1/N sum_i w_{y_i} l(x_i, y_i),

with w fixed (`weights`: one number a class, or {class name: weight} with 1 for the classes
not named; used as given) or, when no weights are given, updated at each epoch end from the
validation robust error err_k = 1 - a_k of the epoch's model:

    w_k = max(err_k, floor)^power / mean_j max(err_j, floor)^power     (mean 1),

all 1 in the first epoch (nothing is measured yet)."""

from __future__ import annotations

import torch

from ...config.methods import WeightedParams
from ...errors import ClasswiseError
from .adversarial_base import base_loss
from .base import Objective, Statistics, Step, class_index, register_objective, robust_per_class


@register_objective
class Weighted(Objective):
    name = "weighted"
    paper = "Elkan 2001"
    Params = WeightedParams
    state = ("weights",)
    statistics = (Statistics("check", "per-class robust accuracy (adaptive weights; none with fixed weights)"),)

    def __init__(self, cfg, classes, class_counts):
        super().__init__(cfg, classes, class_counts)
        self.weights = torch.ones(self.num_classes, dtype=torch.float64)
        given = self.p.weights
        if isinstance(given, list):
            if len(given) != self.num_classes:
                raise ClasswiseError(f"weighted: {len(given)} weights given for {self.num_classes} classes")
            self.weights = torch.tensor(given, dtype=torch.float64)
        elif isinstance(given, dict):
            for key, w in given.items():
                self.weights[class_index(key, self.classes)] = w

    def loss(self, s: Step):
        return base_loss(s, self.p, weights=self.weights)

    def end_epoch(self, epoch, val, robust_key):
        if self.p.weights is None:
            self.weights = error_weights(robust_per_class(val, robust_key), self.p.power, self.p.floor)


def error_weights(accuracy: torch.Tensor, power: float, floor: float) -> torch.Tensor:
    """w_k proportional to max(1 - a_k, floor)^power, mean 1."""
    w = (1 - accuracy.double()).clamp_min(floor) ** power
    return w / w.mean()
