"""Class-targeted threats.

* `VictimSpec`: an attacker who goes after one class spends a bigger budget on its images:
  the untargeted attack with more restarts, its margin-loss (CW) twin, then a targeted attack
  towards each of the most likely other classes in turn (as APGD-T does); an image falls if
  any of them fools it, or if the same evaluation's untargeted run of that attack did.
* `IntoClassSpec`: push every image of the other classes into one chosen class (targeted).

Both leave per-sample predictions in an `EvalResult`; their per-class views (and the eps
curves) are in `classwise.evaluation.views`, recomputed from those records without attacking."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from ..errors import ClasswiseError
from .core import AttackOutput
from .spec import AttackSpec, attack


class VictimSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    threat: Literal["victim"] = "victim"
    victim: int = Field(ge=0, description="index of the class whose images are attacked")
    attack: AttackSpec
    targets: int = Field(default=9, ge=0, description="targeted runs towards the most likely other classes")
    restarts: int = Field(default=3, ge=1, description="restarts of the untargeted runs (at least the attack's)")

    @property
    def label(self) -> str:
        return f"victim{self.victim}-{self.attack.label}"

    def describe(self) -> str:
        return (f"{self.label}: images of class {self.victim} attacked with {self.attack.label} and its "
                f"margin-loss twin ({max(self.restarts, self.attack.restarts)} restarts each) and targeted runs "
                f"towards up to {self.targets} other classes; {self.attack.norm} eps={self.attack.eps:.4g}")


class IntoClassSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    threat: Literal["into"] = "into"
    target: int = Field(ge=0, description="index of the class the other images are pushed into")
    attack: AttackSpec

    @property
    def label(self) -> str:
        return f"into{self.target}-{self.attack.label}"

    def describe(self) -> str:
        return (f"{self.label}: images of every other class pushed into class {self.target} "
                f"(targeted {self.attack.label}, then its margin-loss twin); {self.attack.norm} "
                f"eps={self.attack.eps:.4g}")


Threat = VictimSpec | IntoClassSpec


def check_class(spec: Threat, num_classes: int) -> None:
    cls = spec.victim if isinstance(spec, VictimSpec) else spec.target
    if cls >= num_classes:
        raise ClasswiseError(f"{spec.label}: class index {cls} is out of range for {num_classes} classes")


def threat_rows(spec: Threat, y: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """Which images of a chunk the threat attacks."""
    if isinstance(spec, VictimSpec):
        return ((y == spec.victim) & (clean == y)).nonzero().flatten()
    return ((y != spec.target) & (clean != spec.target)).nonzero().flatten()


def _twins(spec: AttackSpec) -> list[AttackSpec]:
    return [spec] if spec.loss == "margin" else [spec, spec.model_copy(update={"loss": "margin"})]


def _merge(out: AttackOutput, todo: torch.Tensor, run: AttackOutput, hit: torch.Tensor) -> None:
    rows = todo[hit]
    out.x_adv[rows], out.pred[rows], out.success[rows] = run.x_adv[hit], run.pred[hit], True


def run_threat(spec: Threat, model: nn.Module, x: torch.Tensor, y: torch.Tensor, clean: torch.Tensor, *,
               batch_size: int | None = None, generator: torch.Generator | None = None,
               early_stop: bool = True) -> AttackOutput:
    """Attack the rows `threat_rows` chose. `success` marks the images the threat achieved
    (fooled / pushed into the target); `pred` is the adversarial prediction there and the
    clean prediction elsewhere."""
    kw = {"batch_size": batch_size, "generator": generator, "early_stop": early_stop}
    out = AttackOutput(x.clone(), clean.clone(), torch.zeros(len(x), dtype=torch.bool, device=x.device))
    if len(x) == 0:
        return out
    if isinstance(spec, IntoClassSpec):
        target = torch.full_like(y, spec.target)
        for s in _twins(spec.attack):
            todo = (~out.success).nonzero().flatten()
            if todo.numel():
                run = attack(model, x[todo], y[todo], s, target=target[todo], **kw)
                _merge(out, todo, run, run.success)
        return out
    untargeted = spec.attack.model_copy(update={"restarts": max(spec.restarts, spec.attack.restarts)})
    for s in _twins(untargeted):
        todo = (~out.success).nonzero().flatten()
        if todo.numel():
            run = attack(model, x[todo], y[todo], s, **kw)
            _merge(out, todo, run, run.success)
    with torch.no_grad():
        order = model(x).scatter(1, y[:, None], float("-inf")).argsort(1, descending=True)
    for k in range(min(spec.targets, order.shape[1] - 1)):
        todo = (~out.success).nonzero().flatten()
        if todo.numel() == 0:
            break
        run = attack(model, x[todo], y[todo], spec.attack, target=order[todo, k], **kw)
        # a targeted run that lands in a third class has fooled the model all the same
        _merge(out, todo, run, run.pred != y[todo])
    return out
