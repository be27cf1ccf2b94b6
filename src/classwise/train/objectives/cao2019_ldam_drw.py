"""LDAM with deferred re-weighting (Cao et al., "Learning Imbalanced Datasets with
Label-Distribution-Aware Margin Loss", NeurIPS 2019) on adversarial training:

    L = -log( e^{z_y - s D_y} / (e^{z_y - s D_y} + sum_{j != y} e^{z_j}) ),   D_k = C / n_k^{1/4},

C chosen so that the largest margin is `max_margin` = 0.5, s = 30; and deferred re-weighting
(DRW): from epoch int(drw_at * epochs) + 1 on (their 161st of 200, drw_at = 0.8) each image's
loss is weighted by the class-balanced weight (1 - b) / (1 - b^{n_k}) normalised to sum C,
b = 0.9999 (Cui et al. 2019).

The paper's head is cosine-normalised, its logits s cos(theta) with the margin subtracted
inside the scale; our heads are plain linear layers, whose logits z play the role of
s cos(theta), so the true class's logit is lowered by s D_y (15 for the hardest class).

On balanced data the counts are the class difficulty as a count (`effective_counts`):
n_k := N_k * max(a_k, floor) from the epoch's validation robust accuracy a_k, so the weakest
class gets the largest margin and, after the switch, the largest weight. Before the first
validation n_k = N_k (equal margins of max_margin on balanced data)."""

from __future__ import annotations

import torch
from pydantic import Field

from .adversarial_base import AdversarialParams, base_loss, effective_counts
from .base import Objective, Step, register_objective, robust_per_class
from .cui2019_class_balanced import class_balanced_weights


class LDAMParams(AdversarialParams):
    max_margin: float = Field(default=0.5, gt=0, description="largest margin D_k (before the scale s)")
    scale: float = Field(default=30.0, gt=0, description="s: the logit scale the margins are in units of")
    drw_at: float = Field(default=0.8, ge=0, le=1, description="deferred re-weighting from this fraction "
                                                                "of the epochs on (160/200)")
    drw_beta: float = Field(default=0.9999, ge=0, lt=1, description="class-balanced beta after the switch")
    floor: float = Field(default=0.1, gt=0, le=1, description="robust accuracy floor of the effective count "
                                                              "(the largest imbalance it expresses is 1/floor)")


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
    Params = LDAMParams
    state = ("counts", "margins", "drw_weights")

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
        return base_loss(s, self.cfg, self.p, weights=self.weights_at(s.epoch), transform=self.transform)

    def end_epoch(self, epoch, val, robust_key):
        self._set(effective_counts(self.class_counts, robust_per_class(val, robust_key), self.p.floor))
