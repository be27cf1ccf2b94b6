"""`evaluate`: one pass over a data set, chunk by chunk: the clean predictions, then every
threat's (attacks, class-targeted threats, AutoAttack, corruptions), each run by its `Runner`
(`threats.py`). The result type is in `result.py`, the per-class sums in `collect.py`."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from ..attacks import channels_last, eval_mode
from ..attacks.fold import folded
from ..data import ClassData, to_float
from ..distributed import gather, is_main, shard, world
from ..errors import ClasswiseError
from ..heap import heap_kept
from ..precision import check_precision, compiled
from ..progress import progress
from .collect import _ClassSums, _logits, _nothing, _Penultimate
from .result import EvalResult
from .threats import Chunk, Runner, Setting, ThreatSpec, runner_for, threat_names


def _chunk_size(data, batch_size: int, budget_bytes: int = 256 * 2**20) -> int:
    """Images read and attacked together (the attack's pool refills from them): 16 batches,
    so that progress moves and the pool's draining tail is short, within a float32 budget."""
    per_image = 4 * int(np.prod(data.shape)) * 4  # x, start, best, current iterate
    return max(batch_size, min(16 * batch_size, budget_bytes // per_image))


def labelled_threats(attacks) -> dict[str, ThreatSpec]:
    """Attacks by result key: a mapping is taken as it is (e.g. one attack at several eps);
    a sequence is keyed by each spec's own label, which must then be unique."""
    items = list(attacks.items()) if isinstance(attacks, Mapping) else [(getattr(a, "label", None), a) for a in attacks]
    out: dict[str, ThreatSpec] = {}
    for label, spec in items:
        if runner_for(spec) is None:
            raise ClasswiseError(f"not an attack: {spec!r}; use {threat_names()}")
        if label == "clean":
            raise ClasswiseError("'clean' names the clean predictions; give the attack another label")
        if label in out:
            raise ClasswiseError(f"two attacks share the label '{label}'; pass a dict {{label: spec}} "
                                 "to name them")
        out[label] = spec
    return out


def as_data(data, num_classes: int | None = None):
    """`ClassData` / `FolderSource` as they are; an (images, labels) pair of tensors becomes a
    `ClassData`. Float images in [0, 1] that are multiples of 1/255 are stored as 8-bit levels;
    any others are kept as float32, never quantised."""
    if not isinstance(data, tuple | list):
        return data
    images, labels = (torch.as_tensor(v) for v in data)
    if images.is_floating_point():
        if images.numel() and (images.min() < 0 or images.max() > 1):
            raise ClasswiseError("evaluate reads images in [0, 1]: pass uint8 images (N, C, H, W), floats in [0, 1], "
                                 "or a ClassData")
        as_bytes = (images * 255).round()
        exact = not images.numel() or (as_bytes - images * 255).abs().max() <= 1e-3
        images = as_bytes.to(torch.uint8) if exact else images.float()
    labels = labels.long()
    count = num_classes if num_classes is not None else int(labels.max()) + 1 if len(labels) else 0
    classes = [str(c) for c in range(count)]
    return ClassData(images, labels, classes, name="tensors")


def evaluate(model: nn.Module, data, attacks=(), *, batch_size: int = 256, device=None,
             seed: int = 0, early_stop: bool = True, show_progress: bool = True,
             class_sums: bool = True, precision: str = "fp32", compile: bool = False) -> EvalResult:
    """Per-sample clean and adversarial predictions over `data` (a `ClassData` in memory, a
    `FolderSource` streamed from disk, or an (images, labels) pair), read in chunks. `model` is
    any `nn.Module` that maps [0, 1] images to logits. `attacks` is a sequence of specs
    (`AttackSpec`, `AutoAttackSpec`, `VictimSpec`, `IntoClassSpec`, `CorruptionSpec`, or a type
    `threats.register_threat` added) or a {label: spec} mapping.

    Each gradient attack runs only on the images the model gets right: a misclassified image
    needs no attack (its adversarial prediction is its clean one), unless its spec says
    `images="all"`, as the fair-training papers' validation loops attack. AutoAttack makes that choice
    with its own clean pass, as its authors' code does. Under torchrun each rank takes an exact
    contiguous share of the data and every rank gets the whole result back. `class_sums=False`
    skips the per-class sums (`EvalResult.class_sums`), e.g. to time what they cost.

    `precision` "bf16" / "fp16" runs the gradient attacks' forward passes under autocast (the
    clean pass, every verdict and AutoAttack stay fp32; each such attack's record says
    `"precision"`); `compile` attacks a `torch.compile`d copy of the model."""
    from ..checks import checked_inputs

    check_precision(precision)
    # the model's device, the labels, an empty set: ClasswiseErrors before any work, as the CLI gives
    data, device = checked_inputs(model, data, device, as_data)
    attacks = labelled_threats(attacks)
    for spec in attacks.values():
        runner_for(spec).check(spec, data)
    if world()[1] > 1:
        part = _evaluate(model, data.subset(shard(len(data))), attacks, batch_size=batch_size, device=device,
                         seed=seed, early_stop=early_stop, show_progress=show_progress and is_main(),
                         class_sums=class_sums, precision=precision, compile=compile)
        return EvalResult.concat([EvalResult.from_dict(d) for d in gather(part.to_dict())])
    return _evaluate(model, data, attacks, batch_size=batch_size, device=device, seed=seed,
                     early_stop=early_stop, show_progress=show_progress, class_sums=class_sums,
                     precision=precision, compile=compile)


def _evaluate(model, data, attacks: dict, *, batch_size, device, seed, early_stop, show_progress,
              class_sums=True, precision="fp32", compile=False) -> EvalResult:
    device = torch.device(device) if device is not None else next(model.parameters()).device
    n = len(data)
    labels = data.labels.numpy().copy()
    result = EvalResult(list(data.classes), labels, np.empty(n, dtype=np.int64))
    runners: dict[str, Runner] = {label: runner_for(spec) for label, spec in attacks.items()}
    for label, spec in attacks.items():
        result.adv_pred[label] = np.empty(n, dtype=np.int64)
        result.attacks[label] = spec.model_dump()
        if precision != "fp32" and runners[label].lowered:
            result.attacks[label]["precision"] = precision  # searched at it; verdicts in fp32
    sums = {k: _ClassSums(len(data.classes)) for k in ["clean", *(k for k in attacks if runners[k].class_sums)]} \
        if class_sums else {}
    chunk = _chunk_size(data, batch_size)
    desc = None
    if show_progress:
        desc = f"{'clean + ' + ', '.join(attacks) if attacks else 'clean'} {data.name or 'data'}"
    with eval_mode(model), channels_last(model), heap_kept():
        fast = folded(model)
        fast = compiled(fast) if compile else fast
        pen = _Penultimate(model) if class_sums else None  # after folding: the copy carries no hook
        setting = Setting(model, fast, pen, device, batch_size, seed, early_stop, len(data.classes), precision,
                          result.notes)
        steps = _steps(attacks, runners, setting, sums)
        try:
            for start in progress(range(0, n, chunk), desc, total_items=n, step_items=chunk):
                idx = np.arange(start, min(start + chunk, n))
                x = to_float(data.images_at(idx), device, channels_last=True)
                y = torch.as_tensor(labels[idx], device=device)
                with pen.capture() if pen else _nothing():
                    clean_logits = _logits(model, x, batch_size)
                clean_feats = pen.take(len(x)) if pen else None
                clean = clean_logits.argmax(1)
                if sums:
                    sums["clean"].add(clean_logits, y, clean_feats)
                result.clean_pred[idx] = clean.cpu().numpy()
                part = Chunk(x, y, idx, clean, clean_logits, clean_feats)
                for step in steps:
                    for label, pred in step.run(part):
                        result.adv_pred[label][idx] = pred.cpu().numpy()
        finally:
            if pen:
                pen.close()
    result.class_sums = {k: s.numpy() for k, s in sums.items()}
    for label, spec in attacks.items():
        runners[label].finish(label, spec, result, attacks)
    return result


def _steps(attacks: dict, runners: dict[str, Runner], setting: Setting, sums: dict) -> list:
    """Every runner's streams of work, in the order they read a chunk: the threats that read
    every image (corruptions) first, then the others in the order given."""
    groups: dict[int, tuple[Runner, dict]] = {}
    for label, spec in attacks.items():
        groups.setdefault(id(runners[label]), (runners[label], {}))[1][label] = spec
    order = {label: i for i, label in enumerate(attacks)}
    steps = [(not runner.every_image, order[step.labels[0]], step) for runner, specs in groups.values()
             for step in runner.start(specs, setting, sums) if step.labels]
    return [step for *_, step in sorted(steps, key=lambda t: t[:2])]
