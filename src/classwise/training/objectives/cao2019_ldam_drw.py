"""LDAM with deferred re-weighting (Cao et al., "Learning Imbalanced Datasets with
Label-Distribution-Aware Margin Loss", NeurIPS 2019) on adversarial training, as the authors'
code (kaidic/LDAM-DRW, losses.py and cifar_train.py) computes it:

    L = sum_i w_{y_i} CE(s (cos theta_i - D_{y_i} e_{y_i}), y_i) / sum_i w_{y_i},   D_k = C / n_k^{1/4},

C chosen so that the largest margin is `max_margin` = 0.5, s = 30, cos theta the output of a
normalised-cosine last layer (their `NormedLinear`: features and class vectors each of unit
length; ours outputs s cos theta, so the logits an attack sees are on the loss's scale). The
weights are 1 until deferred re-weighting (DRW) starts, at epoch int(drw_at * epochs) + 1 (their
161st of 200, drw_at = 0.8), then the class-balanced (1 - b) / (1 - b^{n_k}), normalised to sum
C, b = 0.9999 (Cui et al. 2019); the loss is PyTorch's `cross_entropy(weight=w)`, whose mean
divides by the batch's weights.

On long-tailed data n_k are the training counts, as the paper's. On balanced data they are the
class difficulty as a count (`effective_counts`, see class-balanced): n_k := N_k * max(a_k,
floor) from the epoch's validation robust accuracy a_k, so the weakest class gets the largest
margin and, after the switch, the largest weight. Before the first validation n_k = N_k."""

from __future__ import annotations

import torch

from ...config.methods import LDAMParams
from .adversarial_base import base_loss, effective_counts
from .base import Difference, Objective, Statistics, Step, register_objective, robust_per_class
from .cui2019_class_balanced import COUNTS_DIFFERENCE, class_balanced_weights, uses_difficulty


def ldam_margins(counts: torch.Tensor, max_margin: float) -> torch.Tensor:
    """D_k proportional to n_k^{-1/4}, the largest equal to `max_margin`."""
    m = counts.double() ** -0.25
    return m * (max_margin / m.max())


def drw_active(epoch: int, epochs: int, drw_at: float) -> bool:
    """Whether epoch (from 1) is re-weighted: Cao et al.'s `epoch // 160` with 0-based epochs."""
    return epoch - 1 >= int(drw_at * epochs)


@register_objective
class LDAMDRW(Objective):
    name = "ldam-drw"
    paper = "Cao et al. 2019"
    code = "kaidic/LDAM-DRW@2536330 (losses.py, cifar_train.py)"
    Params = LDAMParams
    state = ("counts", "margins", "drw_weights")
    statistics = (Statistics("check", "per-class robust accuracy, as the class difficulty on balanced data "
                                      "(none on long-tailed data: the training counts)"),)
    differences = (Difference(*COUNTS_DIFFERENCE),
                   Difference("base", "standard training (LDAM on clean images)",
                              "LDAM on an adversarial base's cross-entropy (pgd by default; trades: its clean "
                              "cross-entropy term)", "the method is applied to adversarial training"),
                   Difference("cosine_head", "a normalised-cosine classifier, s cos theta",
                              "cosine_head=false: the architecture's linear layer, its logits standing in for "
                              "s cos theta", "to compare with the other arms on the same architecture"))

    def __init__(self, cfg, classes, class_counts):
        super().__init__(cfg, classes, class_counts)
        self._set(self.class_counts.clone())

    def _set(self, counts: torch.Tensor) -> None:
        self.counts = counts
        self.margins = ldam_margins(counts, self.p.max_margin)
        self.drw_weights = class_balanced_weights(counts, self.p.drw_beta)

    def transform(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The logits with s D_y taken off each image's true class."""
        shift = self.p.scale * self.margins.to(logits.device, logits.dtype)[y]
        return logits - torch.nn.functional.one_hot(y, logits.shape[1]).to(logits.dtype) * shift[:, None]

    def weights_at(self, epoch: int) -> torch.Tensor | None:
        return self.drw_weights if drw_active(epoch, self.cfg.epochs, self.p.drw_at) else None

    def loss(self, s: Step):
        return base_loss(s, self.p, weights=self.weights_at(s.epoch), normalise=True, transform=self.transform)

    def end_epoch(self, epoch, val, robust_key):
        if uses_difficulty(self.p.counts, self.class_counts):
            self._set(effective_counts(self.class_counts, robust_per_class(val, robust_key), self.p.floor))
