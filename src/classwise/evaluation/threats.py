"""How an evaluation runs each kind of threat: one interface for them all.

A threat is a spec (a frozen value with a `label`, `describe()` and `model_dump()`: `AttackSpec`,
`AutoAttackSpec`, `VictimSpec`, `IntoClassSpec`, `CorruptionSpec`), and `RUNNERS` maps its type
to a `Runner` that says how `evaluate` checks it before any work, what it records, and how it
turns each chunk of clean images into predictions. `evaluate` only loops over runners; a new
kind of threat is a spec type and its runner (`register_threat`), not another branch there."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from ..attacks import AttackSpec, attack
from ..attacks.autoattack import AutoAttackSpec, require_autoattack, run_autoattack
from ..attacks.threats import IntoClassSpec, VictimSpec, check_class, run_threat, threat_rows
from ..corruptions.spec import CorruptionPass, CorruptionSpec
from ..distributed import world
from ..errors import ClasswiseError
from ..precision import autocast, full_precision
from .collect import _ClassSums, _confirm, _logits, _nothing, _Penultimate


@runtime_checkable
class ThreatSpec(Protocol):
    """What every threat spec offers: the key of its results, a line describing it, and its
    fields as plain values (the record an `EvalResult` keeps of it)."""

    @property
    def label(self) -> str: ...

    def describe(self) -> str: ...

    def model_dump(self) -> dict[str, Any]: ...


@dataclass
class Setting:
    """What every chunk of one evaluation shares."""

    model: nn.Module  # reads every verdict
    fast: nn.Module  # the (folded, maybe compiled) copy the searches run on
    pen: _Penultimate | None  # the penultimate-feature hook, when class sums are collected
    device: torch.device
    batch_size: int
    seed: int
    early_stop: bool
    num_classes: int
    precision: str
    notes: dict[str, list[str]]  # label -> warnings a threat raised (the result's notes)


@dataclass
class Chunk:
    """One chunk of the evaluated set and the model's clean reading of it."""

    x: torch.Tensor  # [0, 1] images, channels last
    y: torch.Tensor
    idx: np.ndarray  # their rows in the evaluated set
    clean: torch.Tensor  # clean predictions
    clean_logits: torch.Tensor
    clean_feats: torch.Tensor | None


@dataclass
class Step:
    """One stream of a threat's work: `run(chunk)` yields (label, predictions) for its labels."""

    labels: list[str]
    run: Callable[[Chunk], Iterable[tuple[str, torch.Tensor]]]


class Runner:
    """How `evaluate` runs the specs of one type. The defaults fit a threat that attacks spec by
    spec: each its own generator (seeded with the evaluation's seed, consumed in data order, so
    results do not depend on chunking), `run` once per chunk."""

    kind = "untargeted"  # what `EvalResult.kind` calls its results
    lowered = False  # searched at the evaluation's precision (its record then says which)
    class_sums = False  # per-class sums of its logits are collected (`EvalResult.class_sums`)
    every_image = False  # reads every image, before the attacks (which attack only some)

    def check(self, spec, data) -> None:
        """Refuse, before the clean pass, a spec that cannot run on `data`."""

    def start(self, specs: dict[str, Any], setting: Setting, sums: dict[str, _ClassSums]) -> list[Step]:
        """The streams of work for `specs` (label -> spec, all of this runner's type)."""
        steps = []
        for label, spec in specs.items():
            gen = torch.Generator(device=setting.device).manual_seed(setting.seed)

            def run(chunk, label=label, spec=spec, gen=gen):
                yield label, self.run(spec, chunk, setting, gen, sums.get(label), label)

            steps.append(Step([label], run))
        return steps

    def run(self, spec, chunk: Chunk, setting: Setting, gen: torch.Generator, sums: _ClassSums | None,
            label: str) -> torch.Tensor:
        """The predictions for one chunk under `spec`."""
        raise NotImplementedError

    def finish(self, label: str, spec, result, specs: dict[str, Any]) -> None:
        """After the last chunk: adjust `result` (an `EvalResult`) for this spec."""


class SearchRunner(Runner):
    """A gradient search on some of the chunk's images (`rows`), at the evaluation's precision;
    the model itself reads the examples that fooled the copy searched on. With `sums`, the
    adversarial logits' per-class sums too (an image not attacked keeps its clean logits)."""

    lowered = True

    def rows(self, spec, y: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def search(self, spec, fast, x, y, clean, gen, setting: Setting):
        raise NotImplementedError

    def run(self, spec, chunk, setting, gen, sums, label):
        c, s = chunk, setting
        adv = c.clean.clone()
        rows = self.rows(spec, c.y, c.clean)
        if rows.numel() == 0:
            if sums is not None:
                sums.add(c.clean_logits, c.y, c.clean_feats, reference=c.clean_logits)
            return adv
        xo = c.x[rows].contiguous(memory_format=torch.channels_last)
        with autocast(s.precision, c.x.device):  # the search; `attack` reads its examples again in fp32
            out = self.search(spec, s.fast, xo, c.y[rows], c.clean[rows], gen, s)
        adv[rows] = _confirm(s.model, s.fast, out, s.batch_size)
        if sums is not None:
            # one extra forward of the attacked images: ~1/(2*steps) of the attack's cost
            adv_logits = c.clean_logits.clone()
            with s.pen.capture() if s.pen else _nothing():
                adv_logits[rows] = _logits(s.model, out.x_adv, s.batch_size).to(adv_logits.dtype)
            adv_feats = None
            got = s.pen.take(len(rows)) if s.pen else None
            if c.clean_feats is not None and got is not None:
                adv_feats = c.clean_feats.clone()
                adv_feats[rows] = got
            sums.add(adv_logits, c.y, adv_feats, reference=c.clean_logits)
        return adv


class GradientRunner(SearchRunner):
    """`AttackSpec` (PGD, FGSM): every image, or only those it needs (a wrong one is wrong already)."""

    class_sums = True

    def rows(self, spec, y, clean):
        return torch.arange(len(y), device=y.device) if spec.images == "all" else (clean == y).nonzero().flatten()

    def search(self, spec, fast, x, y, clean, gen, setting):
        return attack(fast, x, y, spec, early_stop=setting.early_stop, batch_size=setting.batch_size, generator=gen)


class ClassThreatRunner(SearchRunner):
    """`VictimSpec` / `IntoClassSpec`: the images `threat_rows` chooses, attacked by `run_threat`."""

    def __init__(self, kind: str):
        self.kind = kind

    def check(self, spec, data):
        check_class(spec, len(data.classes))

    def rows(self, spec, y, clean):
        return threat_rows(spec, y, clean)

    def search(self, spec, fast, x, y, clean, gen, setting):
        return run_threat(spec, fast, x, y, clean, batch_size=setting.batch_size, generator=gen,
                          early_stop=setting.early_stop)


class VictimRunner(ClassThreatRunner):
    def __init__(self):
        super().__init__("victim")

    def finish(self, label, spec, result, specs):
        merge_untargeted(spec, result.labels, result.adv_pred[label], specs, result.adv_pred)


class AutoAttackRunner(Runner):
    """`AutoAttackSpec`: the authors' code on every chunk, in fp32 whatever the evaluation's
    precision; its own warnings become the result's notes."""

    def check(self, spec, data):
        require_autoattack()  # before the clean pass, not after it

    def run(self, spec, chunk, setting, gen, sums, label):
        with full_precision(chunk.x.device):  # AutoAttack's numbers are fp32's, whatever the run's precision
            out = run_autoattack(setting.model, chunk.x, chunk.y, spec, num_classes=setting.num_classes,
                                 batch_size=setting.batch_size, seed=setting.seed)
        if out.flags:
            setting.notes[label] = list(dict.fromkeys([*setting.notes.get(label, []), *out.flags]))
        return out.pred


class CorruptionRunner(Runner):
    """`CorruptionSpec`: every image corrupted (or read from the published files) and predicted;
    the severities of one corruption made together (`CorruptionPass`), so one stream for all."""

    kind = "corruption"
    every_image = True

    def check(self, spec, data):
        if spec.source == "files":
            if world()[1] > 1:
                raise ClasswiseError("corrupted files are read by test-set index: run them without torchrun")
            from ..data.corrupted import CorruptedFiles

            CorruptedFiles(spec.files).check(data.labels.numpy(), tuple(data.shape))

    def start(self, specs, setting, sums):
        corrupted = CorruptionPass(specs, setting.seed, setting.device)

        def run(chunk):
            for label, images in corrupted(chunk.x, chunk.idx):
                yield label, _logits(setting.model, images, setting.batch_size).argmax(1)

        return [Step(list(specs), run)]


RUNNERS: dict[type, Runner] = {AttackSpec: GradientRunner(), AutoAttackSpec: AutoAttackRunner(),
                               VictimSpec: VictimRunner(), IntoClassSpec: ClassThreatRunner("into"),
                               CorruptionSpec: CorruptionRunner()}


def register_threat(spec_type: type, runner: Runner) -> None:
    """Let `evaluate` run specs of `spec_type` (a `ThreatSpec`) with `runner`."""
    RUNNERS[spec_type] = runner


def runner_for(spec) -> Runner | None:
    """The runner of `spec`'s type (or of the nearest base type registered), None if none."""
    return next((RUNNERS[t] for t in type(spec).__mro__ if t in RUNNERS), None)


def threat_names() -> str:
    names = [t.__name__ for t in RUNNERS]
    return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]


def merge_untargeted(spec: VictimSpec, labels, victim_pred, attacks: dict, adv_pred: dict) -> None:
    """The victim attacker has the untargeted attack too: where the same evaluation ran it (the
    same spec) and it fooled a victim image the victim runs did not, that image is fooled."""
    for key, other in attacks.items():
        if isinstance(other, AttackSpec) and other == spec.attack:
            take = (labels == spec.victim) & (adv_pred[key] != labels) & (victim_pred == labels)
            victim_pred[take] = adv_pred[key][take]
            return
