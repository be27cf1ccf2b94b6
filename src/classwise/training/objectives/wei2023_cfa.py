"""CFA, class-wise calibrated fair adversarial training (Wei, Wang, Guo and Wang, "CFA:
Class-wise Calibrated Fair Adversarial Training", CVPR 2023), as the authors' code
(PKU-ML/CFA, train.py and attack.py) runs it.

t_k is class k's robust accuracy on the previous epoch's own training batches, as their
`CW_log` counts it: C * correct_k / N, N the images of the epoch (correct_k / n_k on balanced
data), from the logits the loss trains on (`source = "val"` takes the epoch-end validation robust
accuracy instead). From epoch `begin` + 1 on:

- CCM, class-wise margin: class k is attacked with eps_k = (lambda1 + t_k) eps, lambda1 = 0.5,
  at the run's fixed step (their 2/255 at 8/255);
- CCR, class-wise regularisation (TRADES base): class k's KL weight is
  b_k = (lambda2 + t_k) beta / (1 + (lambda2 + t_k) beta), lambda2 = 0.5, beta = 6, and the loss
  1/N sum_i [(1 - b_{y_i}) CE(x_i) + b_{y_i} KL_i]; before calibrating (and without CCR) b =
  beta / (1 + beta), so their TRADES is TRADES's loss divided by 1 + beta. Its forward passes are
  TRADES's: clean, adversarial, clean.
- After each step, one more train-mode pass over the clean batch (their `train_epoch` logs clean
  accuracy with it; BatchNorm's running statistics take it in).
- The PGD-AT base crafts in train mode (their `attack_pgd` runs on the model `train_epoch` left in
  train mode: BatchNorm's batch statistics, and every attack step updates the running ones), from
  a uniform start, and trains on the mean cross-entropy.
- FAWA, fairness-aware weight averaging: after every epoch whose worst-class validation robust
  accuracy (PGD-10, steps of eps/4, every image, last iterate: their `eval_epoch`) reaches
  `threshold` (0.24), w_fawa <- d w_fawa + (1 - d) w, d = 0.88 (the first such epoch copies w);
  other epochs leave it. The run's final model is w_fawa once an epoch has passed (else the last
  iterate); checkpoint.pt and best_worst.pt keep the iterate, model.pt the average.

`begin` defaults to the authors' 10 of 200 epochs as a share of the run (5%, at least 1: a run of
3 epochs calibrates from epoch 2); give an integer to fix it."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ...attacks import AttackSpec
from ...config.methods import STEP, CfaParams
from .base import Difference, Objective, Statistics, Step, register_objective, robust_per_class
from .zhang2019_trades import trades_inputs, trades_logits, trades_terms

PAPER_BEGIN = 10 / 200  # the authors' calibration start, as a share of their 200 epochs


def class_eps(t: torch.Tensor, lambda1: float, eps: float) -> torch.Tensor:
    """CCM: eps_k = (lambda1 + t_k) eps."""
    return (lambda1 + t) * eps


def class_beta(t: torch.Tensor, lambda2: float, beta: float) -> torch.Tensor:
    """CCR: b_k = (lambda2 + t_k) beta / (1 + (lambda2 + t_k) beta)."""
    r = (lambda2 + t) * beta
    return r / (1 + r)


def class_share(val, key: str) -> torch.Tensor:
    """C * correct_k / N under attack `key`: their CW_log's per-class robust accuracy (the class's
    accuracy on a balanced set)."""
    labels, preds = val.labels, val.preds(key)
    correct = torch.bincount(torch.as_tensor(labels[preds == labels]), minlength=len(val.classes)).double()
    return len(val.classes) * correct / len(labels)


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
    code = "PKU-ML/CFA@071f333 (train.py, attack.py)"
    Params = CfaParams
    state = ("t", "fawa", "fawa_epochs")
    statistics = (Statistics("training", "per-class robust accuracy on the epoch's own training batches (t_k)"),
                  Statistics("validation", "the worst class's robust accuracy under PGD-10 (every image, last "
                                           "iterate), for FAWA"))
    differences = (Difference("source", "t_k from the epoch's training batches", "source=val: t_k from the "
                              "validation check", "a held-out estimate of each class's robustness"),
                   Difference("begin", "calibration from epoch 10, whatever the run's length",
                              "the default scales it to the run (5% of the epochs, equal at the authors' 200); "
                              "begin=10 for theirs", "so that a short run calibrates at all"))

    def validation_attacks(self):
        return [AttackSpec(name="pgd", eps=self.cfg.eps, steps=10, alpha=self.cfg.eps * STEP["pgd"],
                           norm=self.cfg.norm, iterate="last", images="all")]

    def preflight(self):
        if self.p.begin is not None and self.p.begin >= self.cfg.epochs and (self.p.ccm or self.p.ccr):
            return [f"cfa: calibration begins after epoch {self.p.begin}, but the run has {self.cfg.epochs} epochs: "
                    "CCM and CCR would never act (lower --cfa-begin)"]
        return []

    def __init__(self, cfg, classes, class_counts):
        super().__init__(cfg, classes, class_counts)
        c = self.num_classes
        self.t = torch.zeros(c, dtype=torch.float64)  # class-wise robust accuracy, of the last epoch
        self.fawa: dict | None = None
        self.fawa_epochs = 0
        self._correct = self._seen = None  # this epoch's training counts, on the device
        self._x = None  # the last batch, for the pass after the step
        self._model = None  # the model of the last step, for FAWA

    @property
    def begin(self) -> int:
        return self.p.begin if self.p.begin is not None else max(1, round(PAPER_BEGIN * self.cfg.epochs))

    def loss(self, s: Step):
        calibrated = s.epoch > self.begin
        t = self.t.to(s.x.device, s.x.dtype)
        eps = class_eps(t, self.p.lambda1, self.cfg.eps)[s.y] if calibrated and self.p.ccm else None
        beta = self.p.beta
        if self.p.base == "trades":
            clean, adv, target = trades_logits(s.model, s.x, trades_inputs(s, eps=eps))
            ce, kl = trades_terms(clean, adv, s.y, target)
            b = class_beta(t, self.p.lambda2, beta)[s.y] if calibrated and self.p.ccr else beta / (1 + beta)
            loss = ((1 - b) * ce + b * kl).mean()
        else:
            adv = s.model(s.craft(s.x, s.y, eps=eps))
            loss = F.cross_entropy(adv, s.y)
        self._count(adv.detach(), s.y)
        self._x = s.x
        return loss, adv

    def _count(self, logits, y):
        c = self.num_classes
        if self._seen is None:
            self._seen = torch.zeros(c, dtype=torch.long, device=y.device)
            self._correct = torch.zeros(c, dtype=torch.long, device=y.device)
        self._seen += torch.bincount(y, minlength=c)
        self._correct += torch.bincount(y[logits.argmax(1) == y], minlength=c)

    def after_step(self, model):
        # their train_epoch logs clean accuracy with one more train-mode pass after the step: BatchNorm's
        # running statistics take it in
        if self._x is not None:
            with torch.no_grad():
                model(self._x)
        self._model = model

    def end_epoch(self, epoch, val, robust_key):
        if self.p.source == "val" or self._seen is None:
            self.t = robust_per_class(val, robust_key)
        else:
            # C correct_k / N, as their CW_log (a class absent from the epoch counts 0)
            self.t = self.num_classes * self._correct.cpu().double() / float(self._seen.sum())
        self._correct = self._seen = None
        if self.p.fawa and self._model is not None:
            worst = float(class_share(val, self.validation_attacks()[0].label).min())
            before = self.fawa
            self.fawa = fawa_update(self.fawa, self._model.state_dict(), worst, self.p.threshold, self.p.decay)
            if self.fawa is not before:
                self.fawa_epochs += 1

    def final_weights(self, model):
        return self.fawa if self.p.fawa else None
