"""Inter-class cosine regulariser (Benz, Zhang, Karjauv and Kweon, "Robustness May Be at Odds with
Fairness", 2021: "a regularizer term to decrease the inter-class cosine similarity") on
adversarial training: with m_k the mean adversarial logit vector of the batch's images of class
k (centred: its mean over the C logits taken off, since softmax ignores a shared offset that
would otherwise count as similarity),

    L = l_base + gamma * mean_{i < j, both in the batch} cos(m_i, m_j).

gamma = 1.0: the mean cosine lies in [-1/(C-1), 1], so at gamma 1 the term is on the scale of
the cross-entropy (ln C when all class means coincide, as at initialisation) and stops
pulling once the class means are near-orthogonal; at 0.1 it would change the loss by a few
percent and barely move the class geometry within a short budget."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ...config.methods import CosineParams
from .adversarial_base import base_loss
from .base import Objective, Statistics, Step, register_objective


def class_mean_cosine(logits: torch.Tensor, y: torch.Tensor, num_classes: int, center: bool = True) -> torch.Tensor:
    """Mean over pairs of classes present in the batch of the cosine of their mean logit
    vectors (0 when fewer than two classes are present); no host sync."""
    onehot = F.one_hot(y, num_classes).to(logits.dtype)
    counts = onehot.sum(0)
    means = onehot.T @ logits / counts.clamp_min(1)[:, None]
    if center:
        means = means - means.mean(1, keepdim=True)
    unit = F.normalize(means, dim=1, eps=1e-12)
    cos = unit @ unit.T
    present = counts > 0
    pairs = (present[:, None] & present[None, :]).triu(1).to(logits.dtype)
    return (cos * pairs).sum() / pairs.sum().clamp_min(1)


@register_objective
class CosineReg(Objective):
    name = "cosine-reg"
    paper = "Benz et al. 2021"
    Params = CosineParams
    statistics = (Statistics("batch", "the batch's class-mean adversarial logits"),)

    def loss(self, s: Step):
        loss, logits = base_loss(s, self.p)
        return loss + self.p.gamma * class_mean_cosine(logits, s.y, self.num_classes, self.p.center), logits
