"""The objective interface and its registry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from ...attacks import eval_mode, perturb
from ...attacks.fold import folded
from ...config import TrainConfig
from ...config.methods import METHODS, MethodParams
from ...errors import ClasswiseError

OBJECTIVES: dict[str, type[Objective]] = {}


def register_objective(cls: type[Objective]) -> type[Objective]:
    """Add a training method; its `Params` join the config's registry, so that a run config
    naming it validates (a built-in method's are there already, without importing train/)."""
    if METHODS.setdefault(cls.name, cls.Params) is not cls.Params:  # else the config would resolve other defaults
        raise TypeError(f"objective '{cls.name}': Params must be config.methods.METHODS['{cls.name}']")
    OBJECTIVES[cls.name] = cls
    return cls


def objective_class(name: str) -> type[Objective]:
    if name not in OBJECTIVES:
        raise ClasswiseError(f"unknown method '{name}'; choose one of: {', '.join(OBJECTIVES)} "
                             "(see `classwise methods`)")
    return OBJECTIVES[name]


@dataclass(frozen=True)
class Statistics:
    """The per-class statistics an objective adapts from, so that the trainer supplies them from
    the passes it already makes (no second pass over the training data) and `classwise methods`
    can say what each method reads.

    `source`: "batch" (the step's own batch, nothing kept), "training" (the epoch's training
    batches, counted by the objective as they go by), "check" (the trainer's per-epoch
    validation check: its PGD on the images the model gets right, first fooling iterate), or
    "validation" (the objective's own attack, `Objective.validation_attacks`, run in the same
    validation pass). `when`: "end" of each epoch, or "start" (before each epoch from the model
    then, the first included: the trainer also checks the model before it trains)."""

    source: Literal["batch", "training", "check", "validation"]
    what: str
    when: Literal["end", "start"] = "end"


@dataclass(frozen=True)
class Difference:
    """A way this objective can depart from its authors' released code: always behind a named
    parameter, off by default (`classwise methods --differences` lists them)."""

    parameter: str
    authors: str
    option: str
    why: str


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
    """Base class. Subclasses set `name`, `paper`, `adversarial`, `Params` (the method's settings,
    in config/methods.py), `statistics`, implement `loss`, and keep per-class state as tensors
    listed in `state` (saved in checkpoints). `code` names the authors' released code the default
    reproduces, and `differences` what a parameter can change from it."""

    name: ClassVar[str]
    paper: ClassVar[str] = ""
    code: ClassVar[str] = ""
    adversarial: ClassVar[bool] = True
    Params: ClassVar[type[MethodParams]] = MethodParams
    state: ClassVar[tuple[str, ...]] = ()
    statistics: ClassVar[tuple[Statistics, ...]] = ()
    differences: ClassVar[tuple[Difference, ...]] = ()

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

    def validation_attacks(self) -> list:
        """The attacks (`AttackSpec`s) its "validation" statistics need, run in the trainer's
        validation pass next to the check's own; their results come in `end_epoch`'s `val` under
        each spec's label."""
        return []

    def end_epoch(self, epoch: int, val, robust_key: str | None) -> None:
        """Update per-class state from the epoch's validation `EvalResult` (per-sample
        predictions and per-class sums of logits, softmax and loss, clean and under attack).
        An objective whose statistics come at the epoch's start gets them as `end_epoch` of
        the epoch before (epoch 0: the model before training)."""

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
    """An attack on the model being trained, in the BatchNorm mode `cfg.attack_bn` asks for,
    its random draws from `generator`. Defaults: the run's eps, norm, steps and step (resolved
    from the method, see `TrainConfig.resolved`); any may be given per call, eps and step per
    image."""

    def craft(x, y, *, eps=None, alpha=None, steps=None, loss="ce", target=None, random_start=True,
              init="uniform", update=None):
        """`loss`: "ce", "margin", a callable logits -> per-image objective, or "kl": the KL
        divergence from the model's own clean prediction, as TRADES ascends it (its start
        `init="normal"`: x + 0.001 N(0, 1)); `update(x_adv, grad)` replaces a step and its
        projection."""
        eps = cfg.eps if eps is None else eps
        steps = cfg.attack_steps if steps is None else steps
        alpha = cfg.attack_alpha if alpha is None else alpha

        def run(model):
            reference = None
            if loss == "kl":
                with torch.no_grad():
                    reference = F.softmax(model(x), 1)
            return perturb(model, x, y, eps=eps, steps=steps, alpha=alpha, norm=cfg.norm, random_start=random_start,
                           init=init, target=target, loss=loss, reference=reference, track=False,
                           generator=generator, update=update).x_adv

        if cfg.attack_bn == "eval":
            with eval_mode(attacked):
                return run(folded(attacked))
        return run(attacked)

    return craft


def robust_per_class(val, robust_key: str | None) -> torch.Tensor:
    """Validation robust (else clean) accuracy per class as a tensor."""
    key = robust_key if robust_key else "clean"
    return torch.tensor(val.per_class(key)["accuracy"].to_numpy(), dtype=torch.float64)
