"""One critical class (Benz, Zhang, Karjauv and Kweon, "Robustness May Be at Odds with Fairness",
2021, their second scenario: "a certain class is critical and the target is to increase the
accuracy and/or robustness for that class while minimizing the decrease for other classes"):
cost-sensitive adversarial training (Elkan 2001) with weight W on the critical class c and 1 on
every other,

    L = 1/N sum_i w_{y_i} l(x_i, y_i),   w_c = W (default 5), w_k = 1 otherwise,

l the base method's per-image loss (PGD-AT by default)."""

from __future__ import annotations

import torch

from ...config.methods import CriticalParams
from ...errors import ClasswiseError
from .adversarial_base import base_loss
from .base import Objective, Statistics, Step, class_index, register_objective


@register_objective
class Critical(Objective):
    name = "critical"
    paper = "Benz et al. 2021"
    Params = CriticalParams
    statistics = (Statistics("batch", "none: a fixed weight on one class"),)
    benchmark_params = {"critical": 0}  # benchmarks/objectives.py: any class will do for timing

    def __init__(self, cfg, classes, class_counts):
        super().__init__(cfg, classes, class_counts)
        if self.p.critical is None:
            raise ClasswiseError("method critical needs its class: --critical NAME (or method_params "
                                 "{critical = NAME}), e.g. the weakest class of a plain adversarial run")
        self.index = class_index(self.p.critical, self.classes)
        self.weights = torch.ones(self.num_classes, dtype=torch.float64)
        self.weights[self.index] = self.p.critical_weight

    def loss(self, s: Step):
        return base_loss(s, self.p, weights=self.weights)
