"""WAT, worst-class adversarial training (Li and Liu, "WAT: Improve the Worst-class Robustness in
Adversarial Training", AAAI 2023), as the authors' code (worst_class_adversarial_training)
runs it: a no-regret Hedge over C + 1 experts, the C classes and the average.

After each epoch, expert k's cost is its validation loss: for k < C the mean over class k,
for k = C the mean over all images; with the TRADES base (the authors') the loss is
CE(x) + beta KL(x || x'), with PGD-AT the cross-entropy on the adversarial image. Hedge, with
the costs summed over the epochs so far and eta = 0.1:

    w = C * softmax(eta * sum_{epochs} cost).

The training loss of a batch weighs each image's base loss l_i by its class's expert and adds
the average expert (their "expected training loss in the decision set"):

    L = [1/N sum_i w_{y_i} l_i + w_C * 1/N sum_i l_i] * (C + 1) / (2C).

The last factor (ours) makes uniform weights give exactly the base loss, so WAT and its base
train at the same step size; the authors start from w = 1 (twice the base loss) before the
first validation, we from the Hedge of zero cost (uniform). The costs come from the trainer's
epoch-end validation pass (class sums of the clean and adversarial cross-entropy and of the KL
term), whose attack is the run's PGD rather than their TRADES attack."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import Field

from .adversarial_base import per_image_loss
from .base import Objective, Params, Step, register_objective


class WatParams(Params):
    base: Literal["pgd", "trades"] = Field(default="trades", description="adversarial training it reweights")
    eta: float = Field(default=0.1, gt=0, description="Hedge learning rate")
    beta: float = Field(default=6.0, ge=0, description="TRADES KL weight (base trades)")


def wat_costs(val, robust_key: str, base: str, beta: float) -> torch.Tensor:
    """C + 1 validation costs: each class's mean loss, then the mean over all images."""
    counts = np.bincount(val.labels, minlength=len(val.classes)).astype(float)
    sums = val.class_sums[robust_key]["loss"]
    if base == "trades":
        sums = val.class_sums["clean"]["loss"] + beta * val.class_sums[robust_key]["kl"]
    per_class = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
    return torch.tensor(np.append(per_class, sums.sum() / max(counts.sum(), 1)), dtype=torch.float64)


def hedge_weights(cum_cost: torch.Tensor, eta: float) -> torch.Tensor:
    """C * softmax(eta * cumulative cost) over the C + 1 experts."""
    return (len(cum_cost) - 1) * torch.softmax(eta * cum_cost, 0)


@register_objective
class Wat(Objective):
    name = "wat"
    paper = "Li & Liu 2023"
    Params = WatParams
    state = ("cum_cost", "weights")

    def __init__(self, cfg, classes, class_counts):
        super().__init__(cfg, classes, class_counts)
        self.cum_cost = torch.zeros(self.num_classes + 1, dtype=torch.float64)
        self.weights = hedge_weights(self.cum_cost, self.p.eta)

    def end_epoch(self, epoch, val, robust_key):
        if not robust_key:
            return
        self.cum_cost = self.cum_cost + wat_costs(val, robust_key, self.p.base, self.p.beta)
        self.weights = hedge_weights(self.cum_cost, self.p.eta)

    def describe_state(self):
        c = self.num_classes
        return {"weights": self.weights[:c].tolist(), "weight_average": float(self.weights[c]),
                "cum_cost": self.cum_cost[:c].tolist(), "cum_cost_average": float(self.cum_cost[c])}

    def loss(self, s: Step):
        per_image, logits_adv = per_image_loss(s, self.p.base, self.p.beta)
        w = self.weights.to(per_image.device, per_image.dtype)
        c = self.num_classes
        loss = ((w[s.y] * per_image).mean() + w[c] * per_image.mean()) * (c + 1) / (2 * c)
        return loss, logits_adv
