"""`AttackSpec`: an attack as a value (config files, results), and `attack()` to run one."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import ConfigDict, Field, model_validator
from torch import nn

from ..precision import full_precision, lowered
from ..settings import Settings
from .core import AttackOutput, eval_mode, full, perturb


class AttackSpec(Settings):
    model_config = ConfigDict(frozen=True)

    name: Literal["fgsm", "pgd"] = "pgd"
    eps: float = Field(ge=0)
    steps: int = Field(default=20, ge=1)
    alpha: float | None = Field(default=None, gt=0, description="step size; default 2.5*eps/steps")
    norm: Literal["linf", "l2"] = "linf"
    random_start: bool = True
    restarts: int = Field(default=1, ge=1)
    loss: Literal["ce", "margin", "kl"] = Field(default="ce", description="ce, the CW margin, or TRADES's KL "
                                                "divergence from the clean prediction")
    init: Literal["uniform", "normal"] = Field(default="uniform", description="random start: uniform in the "
                                               "eps-ball, or x + 0.001 N(0, 1) (TRADES)")
    # how the fair-training papers' validation loops score an attack (FRL, WAT, CFA): every image
    # attacked, its last iterate counted; an evaluation's default keeps the first iterate that fools
    # and attacks the images the model gets right (the others need no attack)
    iterate: Literal["best", "last"] = Field(default="best", description="best: an image counts as fooled if "
                                             "any iterate fools it; last: only the last iterate counts")
    images: Literal["correct", "all"] = Field(default="correct", description="attack the correctly classified "
                                              "images only, or every image")

    @model_validator(mode="after")
    def _check(self):
        if self.norm == "linf" and self.eps > 1:
            raise ValueError(f"an linf eps above 1 is more than the whole [0, 1] pixel range, got {self.eps}; "
                             "give it in [0, 1], e.g. 8/255")
        return self

    @property
    def label(self) -> str:
        """Short name used as the key of this attack's results, e.g. `pgd20` or `fgsm`."""
        base = "fgsm" if self.name == "fgsm" else f"pgd{self.steps}"
        if self.norm != "linf":
            base += f"-{self.norm}"
        if self.loss != "ce":
            base += f"-{self.loss}"
        if self.init != "uniform" and self.effective_random_start:
            base += f"-{self.init}"
        if self.iterate != "best":
            base += f"-{self.iterate}"
        if self.images != "correct":
            base += f"-{self.images}"
        if self.restarts > 1:
            base += f"x{self.restarts}"
        return base

    def describe(self) -> str:
        return (f"{self.label}: {self.norm} eps={self.eps:.4g}, steps={self.effective_steps}, "
                f"alpha={self.effective_alpha:.4g}, random start={self.effective_random_start}, "
                f"restarts={self.restarts}, loss={self.loss}"
                + (f", start={self.init}" if self.init != "uniform" else "")
                + (f", iterate={self.iterate}, images={self.images}" if self.iterate != "best" or
                   self.images != "correct" else ""))

    @property
    def effective_steps(self) -> int:
        return 1 if self.name == "fgsm" else self.steps

    @property
    def effective_alpha(self) -> float:
        if self.alpha is not None:
            return self.alpha
        return self.eps if self.name == "fgsm" else 2.5 * self.eps / self.steps

    @property
    def effective_random_start(self) -> bool:
        return False if self.name == "fgsm" else self.random_start


class GradSafe(nn.Module):
    """`model` with an autograd path from input to output even where it has none of its own
    (thresholding, argmax, a step outside torch): such a model then shows the attacker what it
    really offers, a zero gradient, instead of crashing the evaluation."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        out = self.model(x)
        return out + 0.0 * x.sum() if x.requires_grad and not out.requires_grad else out


@torch.no_grad()
def fp32_verdict(model: nn.Module, run: AttackOutput, y: torch.Tensor, target: torch.Tensor | None,
                 batch_size: int | None) -> AttackOutput:
    """`run`'s examples read again in fp32, outside any autocast: the prediction and success an
    attack searched at a lower precision reports."""
    size = batch_size or max(len(y), 1)
    with full_precision(y.device):
        pred = torch.cat([model(run.x_adv[i:i + size]).argmax(1) for i in range(0, len(y), size)]) \
            if len(y) else run.pred
    success = pred.eq(target) if target is not None else pred.ne(y)
    return AttackOutput(run.x_adv, pred, success)


def attack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, spec: AttackSpec, *,
           target: torch.Tensor | None = None, early_stop: bool = True, batch_size: int | None = None,
           generator: torch.Generator | None = None) -> AttackOutput:
    """Run `spec` against `model` in eval mode; the model's weights and train/eval flags are
    the same afterwards. Restarts attack only the points no earlier restart fooled.
    `batch_size` bounds how many points go through the model at once (default: all).

    Under autocast (`precision.autocast`, e.g. `classwise evaluate --precision bf16`) the search's
    forward passes run at that precision, and its examples are then read again in fp32: the
    predictions and successes it reports are fp32's (`fp32_verdict`)."""
    low = lowered(x.device)
    with eval_mode(model):
        net = GradSafe(model).eval()  # the wrapper's own flag too: an attack in eval mode may run in parts
        reference = None
        if spec.loss == "kl":
            with torch.no_grad():
                reference = torch.softmax(full(model(x)), 1)
        out = None
        for _ in range(spec.restarts):
            todo = torch.arange(len(x), device=x.device) if out is None else (~out.success).nonzero().flatten()
            if todo.numel() == 0:
                break
            run = perturb(net, x[todo], y[todo], eps=spec.eps, steps=spec.effective_steps,
                          alpha=spec.effective_alpha, norm=spec.norm,
                          random_start=spec.effective_random_start, init=spec.init,
                          target=None if target is None else target[todo], loss=spec.loss,
                          reference=None if reference is None else reference[todo], last=spec.iterate == "last",
                          early_stop=early_stop, batch_size=batch_size, generator=generator)
            if low is not None:
                run = fp32_verdict(net, run, y[todo], None if target is None else target[todo], batch_size)
            if out is None:
                out = run
            else:
                out.x_adv[todo], out.pred[todo], out.success[todo] = run.x_adv, run.pred, run.success
        return out
