"""DAFA, distance-aware fair adversarial training (Lee, Lee, Jang, Park, Bae and Yoon, "DAFA:
Distance-Aware Fair Adversarial Training", ICLR 2024), as the authors' code (rucy74/DAFA,
train.py, losses.py and utils.calculate_class_weights) runs it.

In the last warm-up epoch the loss records the softmax of its train-mode adversarial logits for
every training image; at that epoch's end, p_ij is their mean for class j over the images of
class i (the class similarity), and class i's weight, lambda = 1.0,

    W_i = 1 + lambda * sum_{j != i} ( p_ij p_jj    if p_ii < p_jj   (i is the harder of the two)
                                     -p_ji p_ii    otherwise ),

is fixed for the rest of the run (all 1 before). It scales class i's eps and PGD step, W_i eps
and W_i alpha (alpha 0.007 at eps 0.031), and its loss.

- TRADES base: the attack ascends the KL term in eval mode from x + 0.001 N(0, 1); the loss is
  1/N sum_i W_{y_i} CE(x_i) + beta 1/N sum_i KL_i (the KL unweighted), its forward passes
  adversarial, then clean.
- PGD base (their `madry_loss`): each step moves by W alpha and projects onto the W eps ball,
  then takes a second, unweighted step of alpha with the same gradient and projects onto the
  plain eps ball, from x + 0.001 N(0, 1); the loss is 1/N sum_i W_{y_i} CE(x'_i).

The weights are used as the formula gives them (a negative weight, never seen at lambda 1, would
turn a class's ball and loss around, as in their code). `warmup` defaults to the paper's 70 of
110 epochs scaled to the run (at least 1); give an integer to fix it."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ...config.methods import DafaParams
from ...errors import ClasswiseError
from .base import Difference, Objective, Statistics, Step, register_objective
from .zhang2019_trades import trades_inputs, trades_logits, trades_terms

PAPER_WARMUP = 70 / 110  # the authors' warm-up, as a share of their 110 epochs


def dafa_weights(similarity: np.ndarray, lam: float) -> torch.Tensor:
    """W from the C x C class similarity p (rows: true class; a row of NaN, a class with no
    training image, contributes nothing and keeps its weight 1)."""
    p = np.nan_to_num(np.asarray(similarity, dtype=np.float64))
    d = np.diag(p)
    harder = d[:, None] < d[None, :]  # [i, j]: class i is harder than class j
    gain = np.where(harder, p * d[None, :], -p.T * d[:, None])
    np.fill_diagonal(gain, 0)
    return torch.tensor(1 + lam * gain.sum(1), dtype=torch.float64)


def dafa_pgd_inputs(s: Step, eps: float, alpha: float, w: torch.Tensor) -> torch.Tensor:
    """Their `madry_loss` attack (L-inf): each step moves by w alpha and projects onto the w eps
    ball, then moves by alpha with the same gradient and projects onto the eps ball, then clips
    to [0, 1] (eval mode, from x + 0.001 N(0, 1))."""
    w = w.view(-1, *([1] * (s.x.ndim - 1)))

    def twice(x_adv, grad):
        sign = grad.sign()
        x_adv = torch.min(torch.max(x_adv + w * alpha * sign, s.x - w * eps), s.x + w * eps)
        x_adv = torch.min(torch.max(x_adv + alpha * sign, s.x - eps), s.x + eps)
        return x_adv.clamp(0, 1)

    return s.craft(s.x, s.y, init="normal", update=twice)


@register_objective
class Dafa(Objective):
    name = "dafa"
    paper = "Lee et al. 2024"
    code = "rucy74/DAFA@c60ba83 (train.py, losses.py, utils.py)"
    Params = DafaParams
    state = ("weights",)
    statistics = (Statistics("training", "mean adversarial softmax between classes over the last warm-up epoch's "
                                         "training batches"),)
    differences = (Difference("warmup", "the weights set after epoch 70, whatever the run's length",
                              "the default scales it to the run (70/110 of the epochs, equal at the authors' 110); "
                              "warmup=70 for theirs", "so that a short run reweights at all"),)

    def __init__(self, cfg, classes, class_counts):
        super().__init__(cfg, classes, class_counts)
        if self.p.base == "pgd" and cfg.norm != "linf":
            raise ClasswiseError("dafa with base pgd is the authors' L-inf attack; use --norm linf or base trades")
        self.weights = torch.ones(self.num_classes, dtype=torch.float64)
        self._sums = self._counts = None  # the warm-up epoch's softmax sums, on the device

    @property
    def warmup(self) -> int:
        return self.p.warmup if self.p.warmup is not None else max(1, round(PAPER_WARMUP * self.cfg.epochs))

    def preflight(self):
        if self.warmup >= self.cfg.epochs:
            return [f"dafa: the class weights are set after epoch {self.warmup}, the run's last "
                    f"({self.cfg.epochs}): they would never be used (lower --dafa-warmup)"]
        return []

    def loss(self, s: Step):
        w = self.weights.to(s.x.device, s.x.dtype)[s.y]
        eps, alpha = self.cfg.eps, self.cfg.attack_alpha
        if self.p.base == "trades":
            clean, adv, target = trades_logits(s.model, s.x, trades_inputs(s, eps=w * eps, alpha=w * alpha), "ac")
            ce, kl = trades_terms(clean, adv, s.y, target)
            loss = (w * ce).mean() + self.p.beta * kl.mean()
        else:
            adv = s.model(dafa_pgd_inputs(s, eps, alpha, w))
            loss = (w * F.cross_entropy(adv, s.y, reduction="none")).mean()
        if s.epoch == self.warmup:
            self._record(adv.detach(), s.y)
        return loss, adv

    def _record(self, logits, y):
        c = self.num_classes
        if self._sums is None:
            self._sums = torch.zeros(c, c, dtype=torch.float64, device=y.device)
            self._counts = torch.zeros(c, dtype=torch.float64, device=y.device)
        self._sums.index_add_(0, y, logits.softmax(1).double())
        self._counts += torch.bincount(y, minlength=c).double()

    def end_epoch(self, epoch, val, robust_key):
        if epoch == self.warmup and self._sums is not None:
            with np.errstate(invalid="ignore", divide="ignore"):
                p = (self._sums / self._counts[:, None]).cpu().numpy()
            self.weights = dafa_weights(p, self.p.lam)
            self._sums = self._counts = None
