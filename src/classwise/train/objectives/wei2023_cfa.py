"""CFA, class-wise calibrated fair adversarial training (Wei, Wang, Guo and Wang, "CFA:
Class-wise Calibrated Fair Adversarial Training", CVPR 2023), as the authors' code
(PKU-ML/CFA, train.py and attack.py) runs it.

t_k is class k's robust accuracy on the previous epoch's own training batches (the logits the
objective trains on, counted as they go by; `source = "val"` takes the epoch-end validation
robust accuracy instead). From epoch `begin` + 1 on:

- CCM, class-wise margin: class k is attacked with eps_k = (lambda1 + t_k) eps, lambda1 = 0.5,
  at the run's fixed step (their 2/255 at 8/255);
- CCR, class-wise regularisation (TRADES base): class k's KL weight is
  b_k = (lambda2 + t_k) beta / (1 + (lambda2 + t_k) beta), lambda2 = 0.5, beta = 6, and the loss
  (1 + beta) * 1/N sum_i [(1 - b_{y_i}) CE(x_i) + b_{y_i} KL_i]. The authors' loss is the same
  without the factor (1 + beta), and so is their TRADES baseline (b = beta / (1 + beta));
  the factor makes the uniform case our TRADES loss exactly, at the same step size.
- FAWA, fairness-aware weight averaging: after every epoch whose worst-class validation robust
  accuracy reaches `threshold` (0.24, their default), w_fawa <- d w_fawa + (1 - d) w, d = 0.88
  (the first such epoch copies w); other epochs leave it. The run's final model is w_fawa once
  an epoch has passed (else the last iterate); checkpoint.pt and best_worst.pt keep the
  iterate, model.pt the average.

`begin` defaults to the paper's 10 of 200 epochs scaled to the run (5%, at least 1: a run of 3
epochs calibrates from epoch 2); give an integer to fix it."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from .base import Objective, Params, Step, register_objective, robust_per_class
from .zhang2019_trades import trades_inputs, trades_terms

PAPER_BEGIN = 10 / 200  # the authors' calibration start, as a share of their 200 epochs


class CfaParams(Params):
    base: Literal["pgd", "trades"] = Field(default="trades", description="adversarial training it calibrates "
                                                                          "(AT or TRADES)")
    lambda1: float = Field(default=0.5, ge=0, description="CCM: eps_k = (lambda1 + t_k) eps")
    lambda2: float = Field(default=0.5, ge=0, description="CCR: KL weight from (lambda2 + t_k) beta")
    beta: float = Field(default=6.0, ge=0, description="TRADES KL weight")
    ccm: bool = Field(default=True, description="class-wise eps")
    ccr: bool = Field(default=True, description="class-wise TRADES beta (base trades)")
    fawa: bool = Field(default=True, description="keep the fairness-aware weight average as the final model")
    threshold: float = Field(default=0.24, ge=0, le=1, description="FAWA: worst-class validation robust "
                                                                   "accuracy an epoch needs to be averaged")
    decay: float = Field(default=0.88, ge=0, lt=1, description="FAWA: EMA decay over epochs")
    begin: int | None = Field(default=None, ge=0, description="epochs before calibrating (default: the "
                                                              "paper's 10/200 of the run, at least 1)")
    source: Literal["train", "val"] = Field(default="train", description="t_k from the training batches "
                                                                         "(the authors) or validation")


def class_eps(t: torch.Tensor, lambda1: float, eps: float) -> torch.Tensor:
    """CCM: eps_k = (lambda1 + t_k) eps."""
    return (lambda1 + t) * eps


def class_beta(t: torch.Tensor, lambda2: float, beta: float) -> torch.Tensor:
    """CCR: b_k = (lambda2 + t_k) beta / (1 + (lambda2 + t_k) beta)."""
    r = (lambda2 + t) * beta
    return r / (1 + r)


def fawa_update(avg: dict | None, weights: dict, worst: float, threshold: float, decay: float) -> dict | None:
    """One epoch of FAWA: copy on the first epoch that passes, EMA on later ones, else unchanged.
    Integer buffers (BatchNorm's batch count) are taken from the model."""
    if worst < threshold:
        return avg
    if avg is None:
        return {k: v.detach().clone() for k, v in weights.items()}
    return {k: (decay * avg[k] + (1 - decay) * v.detach()) if v.is_floating_point() else v.detach().clone()
            for k, v in weights.items()}


@register_objective
class Cfa(Objective):
    name = "cfa"
    paper = "Wei et al. 2023"
    Params = CfaParams
    state = ("t", "fawa", "fawa_epochs")

    def __init__(self, cfg, classes, class_counts):
        super().__init__(cfg, classes, class_counts)
        c = self.num_classes
        self.t = torch.zeros(c, dtype=torch.float64)  # class-wise robust accuracy, of the last epoch
        self.fawa: dict | None = None
        self.fawa_epochs = 0
        self._correct = self._seen = None  # this epoch's training counts, on the device
        self._model = None  # the model of the last step, for FAWA

    @property
    def begin(self) -> int:
        return self.p.begin if self.p.begin is not None else max(1, round(PAPER_BEGIN * self.cfg.epochs))

    def loss(self, s: Step):
        calibrated = s.epoch > self.begin
        t = self.t.to(s.x.device, s.x.dtype)
        eps = class_eps(t, self.p.lambda1, self.cfg.eps)[s.y] if calibrated and self.p.ccm else None
        alpha = self.cfg.attack_alpha or self.cfg.eps / 4  # fixed step, as the authors' 2/255
        if self.p.base == "trades":
            x_adv = trades_inputs(s, eps=eps, alpha=alpha)
            logits_clean, logits_adv = s.model(s.x), s.model(x_adv)
            ce, kl = trades_terms(logits_clean, logits_adv, s.y)
            beta = self.p.beta
            b = class_beta(t, self.p.lambda2, beta)[s.y] if calibrated and self.p.ccr else beta / (1 + beta)
            loss = (1 + beta) * ((1 - b) * ce + b * kl).mean()
        else:
            logits_adv = s.model(s.craft(s.x, s.y, eps=eps, alpha=alpha))
            loss = F.cross_entropy(logits_adv, s.y)
        self._count(logits_adv.detach(), s.y)
        return loss, logits_adv

    def _count(self, logits, y):
        c = self.num_classes
        if self._seen is None:
            self._seen = torch.zeros(c, dtype=torch.long, device=y.device)
            self._correct = torch.zeros(c, dtype=torch.long, device=y.device)
        self._seen += torch.bincount(y, minlength=c)
        self._correct += torch.bincount(y[logits.argmax(1) == y], minlength=c)

    def after_step(self, model):
        self._model = model

    def end_epoch(self, epoch, val, robust_key):
        if self.p.source == "val" or self._seen is None:
            self.t = robust_per_class(val, robust_key)
        else:
            seen = self._seen.cpu().double()
            # a class absent from the epoch (a tiny subset) keeps its last value
            self.t = torch.where(seen > 0, self._correct.cpu().double() / seen.clamp_min(1), self.t)
        self._correct = self._seen = None
        if self.p.fawa and self._model is not None and robust_key:
            worst = float(robust_per_class(val, robust_key).min())
            before = self.fawa
            self.fawa = fawa_update(self.fawa, self._model.state_dict(), worst, self.p.threshold, self.p.decay)
            if self.fawa is not before:
                self.fawa_epochs += 1

    def final_weights(self, model):
        return self.fawa if self.p.fawa else None
