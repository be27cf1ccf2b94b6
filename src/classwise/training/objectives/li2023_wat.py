"""WAT, worst-class adversarial training (Li and Liu, "WAT: Improve the Worst-class Robustness in
Adversarial Training", AAAI 2023), as the authors' code (boqili/WAT,
worst_class_adversarial_train.py) runs it: a no-regret Hedge over C + 1 experts, the C classes
and the average.

After each epoch, every validation image is attacked with the run's TRADES attack (PGD on the KL
term from x + 0.001 N(0, 1), last iterate, eval mode) and expert k's cost is its TRADES loss
CE(x) + beta KL(x || x') summed over class k (k = C: over all images, divided by C), times
C / (iterations x batch size) of the validation loader (the authors' normalisation: the mean
over the class on balanced data, the last batch counted full). Hedge, the costs summed over the
epochs so far, eta = 0.1:

    w = C * softmax(eta * sum_{epochs} cost),   w = 1 before the first validation.

The training loss of a batch weighs each image's TRADES loss l_i by its class's expert and adds
the average expert's (their "expected training loss in the decision set"):

    L = 1/N sum_i w_{y_i} l_i + w_C * 1/N sum_i l_i,

its forward passes clean then adversarial (the KL's target from the same clean pass)."""

from __future__ import annotations

import math

import numpy as np
import torch

from ...attacks import AttackSpec
from ...config.methods import WatParams
from .adversarial_base import per_image_loss
from .base import Difference, Objective, Statistics, Step, register_objective


def wat_costs(clean_loss: np.ndarray, robust_kl: np.ndarray, n: int, batch_size: int, beta: float) -> torch.Tensor:
    """C + 1 validation costs from the per-class sums of the clean cross-entropy and of KL(clean
    || adversarial) over n validation images read in batches of `batch_size`."""
    c = len(clean_loss)
    sums = np.asarray(clean_loss, dtype=np.float64) + beta * np.asarray(robust_kl, dtype=np.float64)
    denominator = math.ceil(n / batch_size) * batch_size
    return torch.tensor(np.append(sums * c, sums.sum()) / denominator, dtype=torch.float64)


def hedge_weights(cum_cost: torch.Tensor, eta: float) -> torch.Tensor:
    """C * softmax(eta * cumulative cost) over the C + 1 experts."""
    return (len(cum_cost) - 1) * torch.softmax(eta * cum_cost, 0)


@register_objective
class Wat(Objective):
    name = "wat"
    paper = "Li & Liu 2023"
    code = "boqili/WAT@62d1184 (worst_class_adversarial_train.py)"
    Params = WatParams
    state = ("cum_cost", "weights")
    statistics = (Statistics("validation", "per-class TRADES loss (clean CE + beta KL) under its own TRADES attack, "
                                           "every image, last iterate"),)
    differences = (Difference("base", "TRADES", "base=pgd: the experts weigh the cross-entropy on PGD inputs, "
                              "costed by PGD's cross-entropy", "to compare with PGD-AT arms"),)

    def __init__(self, cfg, classes, class_counts):
        super().__init__(cfg, classes, class_counts)
        self.cum_cost = torch.zeros(self.num_classes + 1, dtype=torch.float64)
        self.weights = torch.ones(self.num_classes + 1, dtype=torch.float64)

    def validation_attacks(self):
        trades = self.p.base == "trades"
        return [AttackSpec(name="pgd", eps=self.cfg.eps, steps=self.cfg.attack_steps, alpha=self.cfg.attack_alpha,
                           norm=self.cfg.norm, loss="kl" if trades else "ce", init="normal" if trades else "uniform",
                           iterate="last", images="all")]

    def end_epoch(self, epoch, val, robust_key):
        key = self.validation_attacks()[0].label
        sums = val.class_sums[key]
        if self.p.base == "trades":
            costs = wat_costs(val.class_sums["clean"]["loss"], sums["kl"], len(val.labels), self.cfg.batch_size,
                              self.p.beta)
        else:
            costs = wat_costs(sums["loss"], np.zeros_like(sums["loss"]), len(val.labels), self.cfg.batch_size, 0.0)
        self.cum_cost = self.cum_cost + costs
        self.weights = hedge_weights(self.cum_cost, self.p.eta)

    def describe_state(self):
        c = self.num_classes
        return {"weights": self.weights[:c].tolist(), "weight_average": float(self.weights[c]),
                "cum_cost": self.cum_cost[:c].tolist(), "cum_cost_average": float(self.cum_cost[c])}

    def loss(self, s: Step):
        per_image, adv = per_image_loss(s, self.p.base, self.p.beta, passes="ca")
        w = self.weights.to(per_image.device, per_image.dtype)
        return (w[s.y] * per_image).mean() + w[self.num_classes] * per_image.mean(), adv
