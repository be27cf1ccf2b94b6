"""Class-balanced loss (Cui et al., "Class-Balanced Loss Based on Effective Number of
Samples", CVPR 2019) on adversarial training: each image's loss is weighted by the inverse
effective number of its class,

    E_n = (1 - beta^n) / (1 - beta),   w_k = (1 - beta) / (1 - beta^{n_k}),  scaled so sum_k w_k = C,

beta = 0.9999 (the authors' CIFAR-10 scripts, richardaecn/class-balanced-loss), the batch's loss
the mean of w_{y_i} l_i (TensorFlow's default weighted reduction in their code).

On long-tailed data n_k are the training counts, as the paper's. On balanced data the counts
carry no signal (all weights 1), so n_k is then the class's *difficulty* as a count (see
`adversarial_base.effective_counts`): n_k := N_k * max(a_k, floor), N_k its training images and
a_k the validation robust accuracy of the epoch's model: a class the model gets right under
attack only 20% of the time counts as a fifth of its images (`counts`: "auto" chooses by the
data, "data" or "difficulty" force one). Before the first validation n_k = N_k."""

from __future__ import annotations

import torch

from ...config.methods import ClassBalancedParams
from .adversarial_base import base_loss, effective_counts, imbalanced
from .base import Difference, Objective, Statistics, Step, register_objective, robust_per_class

COUNTS_DIFFERENCE = ("counts", "the training set's class counts (on balanced data every weight is 1: the base "
                     "method)", "auto: on balanced data, the class difficulty as a count (n_k a_k from the "
                     "validation robust accuracy), updated each epoch; counts=data for the authors'",
                     "Benz et al. apply the long-tail methods to balanced data, where counts say nothing")


def class_balanced_weights(counts: torch.Tensor, beta: float) -> torch.Tensor:
    """(1 - beta) / (1 - beta^n_k), normalised to sum C (Cui et al. 2019, eq. 4 and their code)."""
    w = (1 - beta) / (1 - torch.pow(torch.tensor(beta, dtype=torch.float64), counts.double()))
    return w / w.sum() * len(counts)


def uses_difficulty(counts_rule: str, class_counts: torch.Tensor) -> bool:
    return counts_rule == "difficulty" or (counts_rule == "auto" and not imbalanced(class_counts))


@register_objective
class ClassBalanced(Objective):
    name = "class-balanced"
    paper = "Cui et al. 2019"
    code = "richardaecn/class-balanced-loss@1d78572 (src/cifar_main.py)"
    Params = ClassBalancedParams
    state = ("counts", "weights")
    statistics = (Statistics("check", "per-class robust accuracy, as the class difficulty on balanced data "
                                      "(none on long-tailed data: the training counts)"),)
    differences = (Difference(*COUNTS_DIFFERENCE),
                   Difference("base", "standard training (cross-entropy on clean images)",
                              "the cross-entropy (or TRADES loss) of an adversarial base, pgd by default",
                              "the method is applied to adversarial training"))

    def __init__(self, cfg, classes, class_counts):
        super().__init__(cfg, classes, class_counts)
        self.counts = self.class_counts.clone()
        self.weights = class_balanced_weights(self.counts, self.p.beta)

    def loss(self, s: Step):
        return base_loss(s, self.p, weights=self.weights)

    def end_epoch(self, epoch, val, robust_key):
        if uses_difficulty(self.p.counts, self.class_counts):
            self.counts = effective_counts(self.class_counts, robust_per_class(val, robust_key), self.p.floor)
            self.weights = class_balanced_weights(self.counts, self.p.beta)
