"""The objective interface and its registry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, ValidationError
from torch import nn

from ...attacks import eval_mode, perturb
from ...attacks.fold import folded
from ...config import TrainConfig
from ...errors import ClasswiseError

OBJECTIVES: dict[str, type[Objective]] = {}


class Params(BaseModel):
    """An objective's own settings, with its paper's defaults; unknown keys are refused."""

    model_config = ConfigDict(extra="forbid")


def register_objective(cls: type[Objective]) -> type[Objective]:
    OBJECTIVES[cls.name] = cls
    return cls


def objective_class(name: str) -> type[Objective]:
    if name not in OBJECTIVES:
        raise ClasswiseError(f"unknown method '{name}'; choose one of: {', '.join(OBJECTIVES)} "
                             "(see `classwise methods`)")
    return OBJECTIVES[name]


def objective_params(name: str, params: dict | None) -> dict:
    """`params` validated against the objective's sub-config, with every default filled in."""
    cls = objective_class(name)
    try:
        return cls.Params(**(params or {})).model_dump()
    except ValidationError as exc:
        parts = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ClasswiseError(f"method '{name}': {'; '.join(parts)} "
                             f"(its parameters: {', '.join(cls.Params.model_fields) or 'none'})") from exc


@dataclass
class Step:
    """What an objective sees of one training batch. `model` is the network being trained (in
    train mode, DDP-wrapped under torchrun); `craft` runs an attack on it the way the run's
    `attack_bn` says; `epoch` counts from 1."""

    model: nn.Module
    x: torch.Tensor
    y: torch.Tensor
    craft: Callable[..., torch.Tensor]
    epoch: int


class Objective:
    """Base class. Subclasses set `name`, `paper`, `adversarial`, `Params`, implement `loss`,
    and keep per-class state as tensors listed in `state` (saved in checkpoints)."""

    name: ClassVar[str]
    paper: ClassVar[str] = ""
    adversarial: ClassVar[bool] = True
    Params: ClassVar[type[BaseModel]] = Params
    state: ClassVar[tuple[str, ...]] = ()

    def __init__(self, cfg: TrainConfig, classes: list[str], class_counts: torch.Tensor):
        self.cfg = cfg
        self.p = self.Params(**cfg.method_params)
        self.classes = list(classes)
        self.num_classes = len(classes)
        self.class_counts = class_counts.double()

    def loss(self, s: Step) -> tuple[torch.Tensor, torch.Tensor]:
        """(scalar loss to minimise, logits on the inputs trained on, for the training accuracy)."""
        raise NotImplementedError

    def preflight(self) -> list[str]:
        """Settings that are valid one by one but make the method a no-op within this run (a
        warm-up that ends after the last epoch): one line each. The constructor has already
        refused what cannot run at all (an unknown class)."""
        return []

    def end_epoch(self, epoch: int, val, robust_key: str | None) -> None:
        """Update per-class state from the epoch's validation `EvalResult` (per-sample
        predictions and per-class sums of logits, softmax and loss, clean and under attack)."""

    def after_step(self, model: nn.Module) -> None:
        """Called after every optimizer step (weight averaging)."""

    def final_weights(self, model: nn.Module) -> dict | None:
        """Weights to keep as the run's model instead of the last iterate, if the method says so."""
        return None

    def describe_state(self) -> dict[str, Any]:
        """The per-class state (tensors with a row per class) and plain numbers, for metrics.jsonl;
        bulkier state (averaged weights) stays in the checkpoint only."""
        out = {}
        for k, v in self.state_dict().items():
            if torch.is_tensor(v) and v.ndim and v.shape[0] == self.num_classes:
                out[k] = v.tolist()
            elif isinstance(v, int | float | bool | str):
                out[k] = v
        return out

    def state_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.state}

    def load_state_dict(self, state: dict) -> None:
        for k in self.state:
            setattr(self, k, state[k])


def make_objective(cfg: TrainConfig, classes: list[str], class_counts: torch.Tensor) -> Objective:
    return objective_class(cfg.method)(cfg, classes, class_counts)


def class_index(value: str | int, classes: list[str]) -> int:
    """A class given by name or index."""
    if isinstance(value, str) and value in classes:
        return classes.index(value)
    if (isinstance(value, int) or str(value).isdigit()) and 0 <= int(value) < len(classes):
        return int(value)
    shown = ", ".join(classes[:12]) + (", ..." if len(classes) > 12 else "")
    raise ClasswiseError(f"no class '{value}': give a class name ({shown}) or an index below {len(classes)}")


def crafter(attacked: nn.Module, cfg: TrainConfig, generator: torch.Generator) -> Callable[..., torch.Tensor]:
    """An attack on the model being trained, in the BatchNorm mode `cfg.attack_bn` asks for.
    Defaults: the run's eps, norm and PGD steps, step eps/4; any may be given per call, eps and
    alpha per image."""

    def craft(x, y, *, eps=None, alpha=None, steps=None, loss="ce", target=None, random_start=True, start=None):
        """`loss`: "ce", "margin", a callable logits -> per-image objective, or "kl": the KL
        divergence from the model's own clean prediction, as TRADES ascends it."""
        eps = cfg.eps if eps is None else eps
        steps = cfg.attack_steps if steps is None else steps
        alpha = (cfg.attack_alpha or eps / 4) if alpha is None else alpha

        def run(model):
            objective = loss
            if loss == "kl":
                with torch.no_grad():
                    p_clean = F.softmax(model(x), 1)
                def objective(logits):
                    return F.kl_div(F.log_softmax(logits, 1), p_clean, reduction="none").sum(1)
            return perturb(model, x, y, eps=eps, steps=steps, alpha=alpha, norm=cfg.norm, random_start=random_start,
                           target=target, loss=objective, track=False, generator=generator, start=start).x_adv

        if cfg.attack_bn == "eval":
            with eval_mode(attacked):
                return run(folded(attacked))
        return run(attacked)

    return craft


def weighted_ce(logits: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy with per-class weights on the samples, normalised by the batch size (the
    weights' scale matters, as in the cost-sensitive formulations)."""
    if weights is None:
        return F.cross_entropy(logits, y)
    return (weights.to(logits.device, logits.dtype)[y] * F.cross_entropy(logits, y, reduction="none")).mean()


def robust_per_class(val, robust_key: str | None) -> torch.Tensor:
    """Validation robust (else clean) accuracy per class as a tensor."""
    key = robust_key if robust_key else "clean"
    return torch.tensor(val.per_class(key)["accuracy"].to_numpy(), dtype=torch.float64)
