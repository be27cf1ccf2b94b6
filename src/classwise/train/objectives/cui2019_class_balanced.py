"""Class-balanced loss (Cui et al., "Class-Balanced Loss Based on Effective Number of
Samples", CVPR 2019) on adversarial training: each image's loss is weighted by the inverse
effective number of its class,

    E_n = (1 - beta^n) / (1 - beta),   w_k = (1 - beta) / (1 - beta^{n_k}),  scaled so sum_k w_k = C,

beta = 0.999 (the paper's choice for CIFAR-10-LT is in {0.9, 0.99, 0.999, 0.9999}).

On balanced data counts carry no signal, so n_k is the class's *difficulty* as a count (see
`adversarial_base.effective_counts`): n_k := N_k * max(a_k, floor), N_k its training images
and a_k the validation robust accuracy of the epoch's model: a class the model gets right
under attack only 20% of the time counts as a fifth of its images. Before the first
validation n_k = N_k (all weights 1 on balanced data). With thousands of images a class and
beta = 0.999, beta^{n_k} is small and the weights stay near 1 unless a class is weak; a
smaller beta flattens them further, beta -> 1 approaches inverse-count (1 / n_k) weights."""

from __future__ import annotations

import torch
from pydantic import Field

from .adversarial_base import AdversarialParams, base_loss, effective_counts
from .base import Objective, Step, register_objective, robust_per_class


class ClassBalancedParams(AdversarialParams):
    beta: float = Field(default=0.999, ge=0, lt=1, description="effective-number beta")
    floor: float = Field(default=0.1, gt=0, le=1, description="robust accuracy floor of the effective count "
                                                              "(the largest imbalance it expresses is 1/floor)")


def class_balanced_weights(counts: torch.Tensor, beta: float) -> torch.Tensor:
    """(1 - beta) / (1 - beta^n_k), normalised to sum C (Cui et al. 2019, eq. 4 and their code)."""
    w = (1 - beta) / (1 - torch.pow(torch.tensor(beta, dtype=torch.float64), counts.double()))
    return w / w.sum() * len(counts)


@register_objective
class ClassBalanced(Objective):
    name = "class-balanced"
    paper = "Cui et al. 2019"
    Params = ClassBalancedParams
    state = ("counts", "weights")

    def __init__(self, cfg, classes, class_counts):
        super().__init__(cfg, classes, class_counts)
        self.counts = self.class_counts.clone()
        self.weights = class_balanced_weights(self.counts, self.p.beta)

    def loss(self, s: Step):
        return base_loss(s, self.cfg, self.p, weights=self.weights)

    def end_epoch(self, epoch, val, robust_key):
        self.counts = effective_counts(self.class_counts, robust_per_class(val, robust_key), self.p.floor)
        self.weights = class_balanced_weights(self.counts, self.p.beta)
