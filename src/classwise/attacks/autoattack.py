"""AutoAttack (Croce & Hein, 2020) through the authors' own code, packaged on PyPI as
`pyautoattack` (optional extra `classwise[autoattack]`). We use it rather than re-implement
APGD/FAB/Square so that our numbers are the field's numbers; this module only adapts it:
per-sample predictions out, the package's own warnings (its gradient-masking and
randomness flags) captured instead of printed, and the global RNG it reseeds given back."""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from ..errors import ClasswiseError
from .core import eval_mode
from .spec import GradSafe

VERSIONS = ("standard", "plus", "rand", "custom")
COMPONENTS = ("apgd-ce", "apgd-dlr", "apgd-t", "fab", "fab-t", "square")
_NORMS = {"linf": "Linf", "l2": "L2"}
INSTALL_HINT = "AutoAttack needs the pyautoattack package: pip install 'classwise[autoattack]'"


class AutoAttackSpec(BaseModel):
    """One AutoAttack run as a value. `standard`, `plus` and `rand` are the authors' fixed
    ensembles; `custom` runs the `attacks` listed. `iterations`, `restarts`, `targets` and
    `queries` override the authors' budgets (100 iterations, the version's restarts, 9 target
    classes, 5000 Square queries) for quick looks; results with overrides are not standard."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Literal["autoattack"] = "autoattack"
    eps: float = Field(ge=0)
    norm: Literal["linf", "l2"] = "linf"
    version: Literal["standard", "plus", "rand", "custom"] = "standard"
    attacks: tuple[Literal["apgd-ce", "apgd-dlr", "apgd-t", "fab", "fab-t", "square"], ...] | None = None
    iterations: int | None = Field(default=None, ge=1)
    restarts: int | None = Field(default=None, ge=1)
    targets: int | None = Field(default=None, ge=1)
    queries: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _attacks_match_version(self):
        if self.version == "custom" and not self.attacks:
            raise ValueError("version 'custom' needs a list of attacks, e.g. ['apgd-ce', 'apgd-t']")
        if self.version != "custom" and self.attacks:
            raise ValueError(f"version '{self.version}' fixes its own attacks; use version 'custom' to choose")
        return self

    @property
    def label(self) -> str:
        base = "aa-" + "+".join(self.attacks) if self.version == "custom" else "aa" + (
            "" if self.version == "standard" else f"-{self.version}")
        if self.norm != "linf":
            base += f"-{self.norm}"
        if self.overridden:
            base += "-quick"
        return base

    @property
    def overridden(self) -> bool:
        return any(v is not None for v in (self.iterations, self.restarts, self.targets, self.queries))

    def describe(self) -> str:
        parts = [f"{self.label}: AutoAttack {self.version}", f"{self.norm} eps={self.eps:.4g}"]
        if self.attacks:
            parts.append("attacks=" + ",".join(self.attacks))
        for key in ("iterations", "restarts", "targets", "queries"):
            if getattr(self, key) is not None:
                parts.append(f"{key}={getattr(self, key)}")
        return ", ".join(parts)


@dataclass
class AutoAttackOutput:
    pred: torch.Tensor  # the model's prediction on AutoAttack's adversarial example (clean one if not fooled)
    x_adv: torch.Tensor
    flags: list[str] = field(default_factory=list)  # AutoAttack's own warnings, verbatim


def require_autoattack():
    """pyautoattack's AutoAttack class and checks module, or one clear error line."""
    try:
        import pyautoattack
        from pyautoattack import checks
    except ImportError as exc:
        raise ClasswiseError(INSTALL_HINT) from exc
    return pyautoattack.AutoAttack, checks


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def _configure(aa, spec: AutoAttackSpec, num_classes: int) -> None:
    if spec.iterations is not None:
        n = spec.iterations
        aa.fab.n_iter = n
        for apgd in (aa.apgd, aa.apgd_targeted):
            # APGD derives its step-size checkpoints from n_iter in its constructor
            apgd.n_iter = apgd.n_iter_orig = n
            apgd.n_iter_2, apgd.n_iter_min = max(int(0.22 * n), 1), max(int(0.06 * n), 1)
            apgd.size_decr = max(int(0.03 * n), 1)
    if spec.restarts is not None:
        aa.apgd.n_restarts = spec.restarts
        aa.fab.n_restarts = spec.restarts
    if spec.queries is not None:
        aa.square.n_queries = spec.queries
    targets = spec.targets if spec.targets is not None else aa.apgd_targeted.n_target_classes
    # the targeted attacks cycle through the top-k other classes: there are only num_classes - 1
    aa.apgd_targeted.n_target_classes = aa.fab.n_target_classes = max(1, min(targets, num_classes - 1))


def _expected_calls(aa, attack: str) -> int:
    """Forward passes one batch of `attack` takes (counted on pyautoattack 0.2: APGD n_iter + 2 per
    restart and target, FAB 2 n_iter + 3 per target, Square a query each): the share of a batch
    done between AutoAttack's own per-batch lines."""
    if attack in ("apgd-ce", "apgd-dlr"):
        return aa.apgd.n_restarts * (aa.apgd.n_iter + 2) + 1
    if attack == "apgd-t":
        return aa.apgd_targeted.n_target_classes * aa.apgd_targeted.n_restarts * (aa.apgd_targeted.n_iter + 2) + 2
    if attack == "fab":
        return aa.fab.n_restarts * (2 * aa.fab.n_iter + 3) + 2
    if attack == "fab-t":
        return aa.fab.n_target_classes * (2 * aa.fab.n_iter + 3) + 2
    return aa.square.n_queries + 4


def autoattack_passes(spec: AutoAttackSpec, num_classes: int, model: nn.Module | None = None) -> dict[str, int]:
    """Each attack of the ensemble `spec` runs, in order, with the forward passes one batch of it
    takes at this budget (what an estimate of its time multiplies; Square's passes have no
    backward)."""
    AutoAttack, _ = require_autoattack()
    aa = AutoAttack(model or nn.Identity(), attacks=list(spec.attacks) if spec.version == "custom" else None,
                    eps=spec.eps, norm=_NORMS[spec.norm], seed=0, version=spec.version)
    _configure(aa, spec, num_classes)
    return {attack: _expected_calls(aa, attack) for attack in aa.attacks_to_run}


class _Progress(logging.Handler):
    """Progress of each attack of the ensemble (images done of those still robust when it
    started, robust accuracy so far, time left) from AutoAttack's own debug lines, which mark
    each batch it finishes, and within a batch from the forward passes it has made
    (`_Counted`): a `classwise.progress.Tracker` per attack, on screen and to the hooks."""

    _BATCH = re.compile(r"(\S+) - (\d+)/(\d+) - (\d+) out of (\d+) successfully perturbed")

    def __init__(self, label: str, n: int, batch_size: int):
        super().__init__(logging.DEBUG)
        self.label, self.n, self.batch_size = label, n, batch_size
        self.aa = None
        self.robust = n
        self.attack = self.tracker = None
        self.todo = self.done = self.calls = 0
        self._last = 0.0

    def _info(self) -> dict:
        pct = self.robust / self.n * 100 if self.n else 0.0
        return {"attack": self.attack, "robust": self.robust / self.n if self.n else 0.0,
                "text": f"robust so far {pct:.1f}%"}

    def _close(self) -> None:
        if self.tracker is not None:
            self.tracker.update(self.done, **self._info())
            self.tracker.close()
            self.tracker = None

    def emit(self, record) -> None:
        from ..progress import Tracker

        msg = record.getMessage()
        if msg.startswith("initial accuracy:"):
            self.robust = round(float(msg.split(":")[1].strip().rstrip("%")) * self.n / 100)
        elif msg.startswith("running "):
            self._close()
            self.attack, self.todo, self.done, self.calls = msg.split()[1], self.robust, 0, 0
            self.tracker = Tracker(f"{self.label} {self.attack}", self.todo, unit=" images")
            self.tracker.update(0, **self._info())
        elif (m := self._BATCH.match(msg)) and self.tracker is not None:
            self.done += int(m.group(5))
            self.robust -= int(m.group(4))
            self.calls = 0
            self.tracker.update(self.done, **self._info())
        elif msg.startswith(("robust accuracy after", "no robust datapoints left")):
            self._close()

    def tick(self) -> None:
        """A forward pass of the model: move the bar within the batch, at most once a second."""
        self.calls += 1
        if self.tracker is None or self.aa is None:
            return
        now = time.perf_counter()
        if now - self._last < 1.0:
            return
        self._last = now
        share = min(self.calls / _expected_calls(self.aa, self.attack), 0.99)
        current = min(self.batch_size, self.todo - self.done)
        self.tracker.update(self.done + share * current, **self._info())


class _Counted(nn.Module):
    """The model, telling `_Progress` of each forward pass (the outputs are the model's)."""

    def __init__(self, model: nn.Module, progress: _Progress):
        super().__init__()
        self.model = model
        self._progress = progress

    def forward(self, x):
        self._progress.tick()
        return self.model(x)


def run_autoattack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, spec: AutoAttackSpec, *,
                   num_classes: int, batch_size: int = 250, seed: int = 0) -> AutoAttackOutput:
    """AutoAttack on (x, y) with the model in eval mode. AutoAttack does its own clean pass:
    images it finds misclassified keep that prediction and are not attacked. The prediction
    of each image is the worst case over the ensemble (an image counts as robust only if
    every attack failed on it). Each attack of the ensemble shows its progress (images done,
    robust so far, time left) through `classwise.progress`: a bar on a terminal, a plain line
    every 30 s otherwise, and every update to the hooks (`classwise.progress.progress_hook`)."""
    AutoAttack, checks = require_autoattack()
    if len(x) == 0:
        return AutoAttackOutput(torch.empty(0, dtype=torch.long, device=x.device), x.clone())
    logger = logging.getLogger("auto-attack")
    handler, propagate, level = _Collect(), logger.propagate, logger.level
    tracking = _Progress(spec.label, len(x), batch_size)
    logger.addHandler(handler)
    logger.addHandler(tracking)
    logger.setLevel(logging.DEBUG)  # its per-batch lines are debug records
    logger.propagate = False
    # its dynamic-defense check counts traced calls in a module-level dict that is never reset:
    # without this, one flagged model would flag every model evaluated after it
    for name in checks.funcs:
        checks.funcs[name] = 0
    devices = [x.device] if x.device.type == "cuda" else []
    try:
        # AutoAttack reseeds the global RNG before every attack; the caller's stream is restored
        with eval_mode(model), torch.random.fork_rng(devices=devices):
            aa = AutoAttack(_Counted(GradSafe(model), tracking),
                            attacks=list(spec.attacks) if spec.version == "custom" else None,
                            device=x.device, eps=spec.eps, norm=_NORMS[spec.norm], seed=seed,
                            version=spec.version)
            _configure(aa, spec, num_classes)
            tracking.aa = aa
            x_adv, pred = aa.run_standard_evaluation(x, y, batch_size=batch_size)
    finally:
        tracking._close()
        logger.removeHandler(handler)
        logger.removeHandler(tracking)
        logger.setLevel(level)
        logger.propagate = propagate
    return AutoAttackOutput(pred.to(y.device), x_adv, list(dict.fromkeys(handler.messages)))


def parse_components(text: str) -> tuple[str, ...]:
    """`apgd-ce,apgd-t` -> ('apgd-ce', 'apgd-t'), with a clear error for unknown names."""
    names = tuple(t.strip().lower() for t in text.split(",") if t.strip())
    unknown = [n for n in names if n not in COMPONENTS]
    if unknown or not names:
        raise ClasswiseError(f"unknown AutoAttack component(s) {unknown or [text]}; "
                             f"choose from {', '.join(COMPONENTS)}")
    return names
