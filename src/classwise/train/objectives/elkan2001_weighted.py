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
from pydantic import Field, field_validator

from ...errors import ClasswiseError
from .adversarial_base import AdversarialParams, base_loss
from .base import Objective, Statistics, Step, class_index, register_objective, robust_per_class


class WeightedParams(AdversarialParams):
    weights: list[float] | dict[str, float] | None = Field(
        default=None, description="fixed per-class weights: 1,1,2,... or Shirt=3,Coat=2 (default: from "
                                  "validation robust error, updated each epoch)")
    power: float = Field(default=1.0, ge=0, description="adaptive weights: w_k proportional to err_k^power")
    floor: float = Field(default=0.01, gt=0, le=1, description="adaptive weights: error floor, so no class "
                                                               "drops out of the loss")

    @field_validator("weights", mode="before")
    @classmethod
    def _named(cls, v):
        # the command line gives "Shirt=3,Coat=2" as a list of strings (or one string)
        items = [v] if isinstance(v, str) else v
        if isinstance(items, list) and items and all(isinstance(t, str) and "=" in t for t in items):
            try:
                return {k.strip(): float(w) for k, w in (t.split("=", 1) for t in items)}
            except ValueError as exc:
                raise ValueError(f"weights like Shirt=3,Coat=2: {exc}") from exc
        return v

    @field_validator("weights")
    @classmethod
    def _positive(cls, v):
        values = v.values() if isinstance(v, dict) else (v or [])
        if any(w < 0 for w in values):
            raise ValueError("weights must be >= 0")
        return v


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
