"""FRL, Fair Robust Learning (Xu, Liu, Li, Jain and Tang, "To be Robust or to be Fair: Towards
Fairness in Adversarial Training", ICML 2021), reweight + remargin, as the authors' code
(hannxu123/fair_robust, frlrmrw.py and utils_frl2.py) fine-tunes a robust model with TRADES.

The fairness constraints, per class k, on the validation clean error E_k and boundary error
B_k = a_k - r_k (clean minus robust accuracy), against the overall E and B, with tolerance
tau = 0.07:

    g0_k = E_k - E - tau,    g1_k = B_k - B - tau.

At the start of every epoch, the first included, the model is evaluated on the validation set
(PGD-20 on the cross-entropy, steps of eps/4, uniform start, every image, last iterate, eval
mode) and the Lagrange multipliers move by gradient ascent on the constraint violations, the
reweighting ones projected back to {l >= 0, sum l <= lim} (lim = 0.5, clipped then rescaled as
their `normalize_lambda`):

    l0 <- proj(l0 + r1 g0),    l1 <- proj(l1 + 2 r1 g1),    l2 <- l2 + r2 g1,

r1 = 0.05 (halved at every 40th epoch), r2 = 0.2. The class weights of the clean and the boundary
term (their `cost_sensitive`, written for C classes) and the class-wise eps multiplier are

    w_k = 1/C + l_k - 1/C sum_j l_j,      m_k = clip(exp(2 l2_k), 0.98, 3),

and the loss, on TRADES inputs crafted at eps m_{y_i} eps with step max_i(m_{y_i}) eps/4,

    L = sum_i w0_{y_i} CE(x_i) / sum_i w0_{y_i} + beta sum_i w1_{y_i} KL_i / sum_i w1_{y_i},

beta = 1.5 (their default), its forward passes clean, adversarial, clean (as TRADES's). Give a
robust model as `init_weights` (e.g. a PGD or TRADES model.pt) to fine-tune as the paper does
(the authors: SGD lr 0.001, 40 epochs); from scratch it still works, as a constrained TRADES."""

from __future__ import annotations

import torch

from ...attacks import AttackSpec
from ...config.methods import STEP, FrlParams
from .base import Objective, Statistics, Step, register_objective
from .zhang2019_trades import trades_inputs, trades_logits, trades_terms


def frl_errors(val, robust_key: str) -> tuple[torch.Tensor, torch.Tensor, float, float]:
    """(per-class clean error, per-class boundary error, overall clean error, overall boundary
    error) as the authors' `evaluate` computes them: boundary = clean minus robust accuracy."""
    clean = torch.tensor(val.per_class("clean")["accuracy"].to_numpy(), dtype=torch.float64)
    robust = torch.tensor(val.per_class(robust_key)["accuracy"].to_numpy(), dtype=torch.float64)
    acc, acc_adv = val.accuracy("clean"), val.accuracy(robust_key)
    return 1 - clean, clean - robust, 1 - acc, acc - acc_adv


def project(lmbda: torch.Tensor, lim: float) -> torch.Tensor:
    """Clip at 0, then rescale onto sum = lim if the sum exceeds it."""
    lmbda = lmbda.clamp_min(0)
    total = lmbda.sum()
    return lim * lmbda / total if total > lim else lmbda


def frl_update(lmbda: torch.Tensor, clean_err, bndy_err, total_clean, total_bndy, *, tau, rate_weight, rate_margin,
               lim) -> torch.Tensor:
    """The multipliers (3C: clean weights, boundary weights, margins) after one update."""
    c = len(clean_err)
    g0 = clean_err - total_clean - tau
    g1 = bndy_err - total_bndy - tau
    l0 = project(lmbda[:c] + rate_weight * g0, lim)
    l1 = project(lmbda[c:2 * c] + 2 * rate_weight * g1, lim)
    l2 = lmbda[2 * c:] + rate_margin * g1
    return torch.cat([l0, l1, l2])


def frl_weights(lmbda: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(clean-term class weights, boundary-term class weights, eps multipliers)."""
    c = len(lmbda) // 3
    l0, l1, l2 = lmbda[:c], lmbda[c:2 * c], lmbda[2 * c:]
    w0 = 1 / c + l0 - l0.sum() / c
    w1 = 1 / c + l1 - l1.sum() / c
    return w0, w1, torch.exp(2 * l2).clamp(0.98, 3.0)


@register_objective
class Frl(Objective):
    name = "frl"
    paper = "Xu et al. 2021"
    code = "hannxu123/fair_robust@a80547d (frlrmrw.py, utils_frl2.py)"
    Params = FrlParams
    state = ("lmbda",)
    statistics = (Statistics("validation", "per-class clean and robust accuracy under its own PGD-20 (every image, "
                                           "last iterate)", when="start"),)

    def validation_attacks(self):
        return [AttackSpec(name="pgd", eps=self.cfg.eps, steps=self.p.val_steps, alpha=self.cfg.eps * STEP["pgd"],
                           norm=self.cfg.norm, iterate="last", images="all")]

    def __init__(self, cfg, classes, class_counts):
        super().__init__(cfg, classes, class_counts)
        self.lmbda = torch.zeros(3 * self.num_classes, dtype=torch.float64)

    def end_epoch(self, epoch, val, robust_key):
        clean_err, bndy_err, total_clean, total_bndy = frl_errors(val, self.validation_attacks()[0].label)
        # the multipliers are for epoch + 1; the authors halve r1 at every 40th epoch
        rate = self.p.rate_weight * 0.5 ** ((epoch + 1) // 40)
        new = frl_update(self.lmbda, clean_err, bndy_err, total_clean, total_bndy, tau=self.p.tau,
                         rate_weight=rate, rate_margin=self.p.rate_margin, lim=self.p.lim)
        c = self.num_classes
        if self.p.mode == "reweight":
            new[2 * c:] = 0
        elif self.p.mode == "remargin":
            new[:2 * c] = 0
        self.lmbda = new

    def describe_state(self):
        c = self.num_classes
        return {"lambda_clean": self.lmbda[:c].tolist(), "lambda_boundary": self.lmbda[c:2 * c].tolist(),
                "lambda_margin": self.lmbda[2 * c:].tolist()}

    def loss(self, s: Step):
        w0, w1, margin = (t.to(s.x.device, s.x.dtype) for t in frl_weights(self.lmbda))
        m = margin[s.y]
        x_adv = trades_inputs(s, eps=self.cfg.eps * m, alpha=self.cfg.attack_alpha * float(m.max()))
        clean, adv, target = trades_logits(s.model, s.x, x_adv)
        ce, kl = trades_terms(clean, adv, s.y, target)
        a, b = w0[s.y], w1[s.y]
        loss = (a * ce).sum() / a.sum() + self.p.beta * (b * kl).sum() / b.sum()
        return loss, adv
