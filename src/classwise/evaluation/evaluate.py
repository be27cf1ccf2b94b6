from __future__ import annotations

from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from ..attacks import AttackSpec, attack, channels_last, eval_mode
from ..attacks.autoattack import AutoAttackSpec, require_autoattack, run_autoattack
from ..attacks.fold import folded
from ..attacks.threats import IntoClassSpec, VictimSpec, check_class, run_threat, threat_rows
from ..corruptions.spec import CorruptionPass, CorruptionSpec
from ..data import ClassData, to_float
from ..distributed import gather, is_main, shard, world
from ..errors import ClasswiseError, CorruptDataError
from ..heap import heap_kept
from ..io import read_json
from ..metrics import confusion_matrix, disparity, per_class_table
from ..models.heads import CosineHead
from ..precision import autocast, check_precision, compiled, full_precision
from ..progress import progress
from .stored import check_eval_record


@dataclass
class EvalResult:
    """Per-sample outcomes; every per-class view is computed from these."""

    classes: list[str]
    labels: np.ndarray
    clean_pred: np.ndarray
    adv_pred: dict[str, np.ndarray] = field(default_factory=dict)  # attack label -> predictions
    attacks: dict[str, dict] = field(default_factory=dict)  # attack label -> its spec
    notes: dict[str, list[str]] = field(default_factory=dict)  # attack label -> warnings it raised
    # per true class, collected in the evaluation pass for the analyses that need more than
    # predictions (similarity, flows of probability mass, per-class loss): key -> {"logits":
    # C x C sums of logit vectors, "probs": C x C sums of softmax vectors, "loss": C sums of
    # cross-entropy, "kl": C sums of KL(clean || adversarial) (attacks only), "features": C x D
    # sums of the input of the model's last nn.Linear (its penultimate features; absent when it has
    # none)}; for "clean" and every untargeted gradient attack
    class_sums: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    @property
    def keys(self) -> list[str]:
        return ["clean", *self.adv_pred]

    def kind(self, key: str) -> str:
        """untargeted (PGD, FGSM, AutoAttack), victim, into, corruption or curve (one point of an eps curve)."""
        meta = self.attacks.get(key, {})
        return "curve" if "curve" in meta else meta.get("threat", "untargeted")

    @property
    def robust_keys(self) -> list[str]:
        """The untargeted attacks: the ones whose per-class accuracy is a robust accuracy."""
        return [k for k in self.adv_pred if self.kind(k) == "untargeted"]

    def preds(self, key: str = "clean") -> np.ndarray:
        return self.clean_pred if key == "clean" else self.adv_pred[key]

    def per_class(self, key: str = "clean") -> pd.DataFrame:
        return per_class_table(self.labels, self.preds(key), self.classes)

    def confusion(self, key: str = "clean") -> np.ndarray:
        return confusion_matrix(self.labels, self.preds(key), len(self.classes))

    def accuracy(self, key: str = "clean") -> float:
        return float((self.preds(key) == self.labels).mean())

    def summary(self, key: str = "clean") -> dict:
        table = self.per_class(key)
        return {"overall": self.accuracy(key), **disparity(table["accuracy"], self.classes)}

    def class_mean(self, key: str = "clean", what: str = "logits") -> np.ndarray:
        """Per-class mean of a collected sum (rows: true classes; NaN for a class with no image)."""
        counts = np.bincount(self.labels, minlength=len(self.classes)).astype(float)
        sums = self.class_sums[key][what]
        with np.errstate(invalid="ignore", divide="ignore"):
            return sums / (counts[:, None] if sums.ndim == 2 else counts)

    def to_dict(self) -> dict:
        """Plain values for JSON: per-sample records included."""
        return {"classes": self.classes, "labels": self.labels.tolist(),
                "clean_pred": self.clean_pred.tolist(),
                "adv_pred": {k: v.tolist() for k, v in self.adv_pred.items()},
                "attacks": self.attacks, "notes": self.notes,
                "class_sums": {k: {w: a.tolist() for w, a in d.items()} for k, d in self.class_sums.items()}}

    @classmethod
    def concat(cls, parts: list[EvalResult]) -> EvalResult:
        first = parts[0]
        notes = {k: list(dict.fromkeys(m for p in parts for m in p.notes.get(k, [])))
                 for k in dict.fromkeys(k for p in parts for k in p.notes)}
        sums = {k: {w: sum(p.class_sums[k][w] for p in parts) for w in d} for k, d in first.class_sums.items()}
        return cls(first.classes, np.concatenate([p.labels for p in parts]),
                   np.concatenate([p.clean_pred for p in parts]),
                   {k: np.concatenate([p.adv_pred[k] for p in parts]) for k in first.adv_pred}, first.attacks, notes,
                   sums)

    @classmethod
    def from_dict(cls, d: dict) -> EvalResult:
        check_eval_record(d)  # the stored format's schema: a bad record is one line, not a traceback
        sums = {k: {w: np.asarray(a, dtype=np.float64) for w, a in v.items()}
                for k, v in d.get("class_sums", {}).items()}
        return cls(d["classes"], np.asarray(d["labels"]), np.asarray(d["clean_pred"]),
                   {k: np.asarray(v) for k, v in d["adv_pred"].items()}, d.get("attacks", {}), d.get("notes", {}), sums)


def _chunk_size(data, batch_size: int, budget_bytes: int = 256 * 2**20) -> int:
    """Images read and attacked together (the attack's pool refills from them): 16 batches,
    so that progress moves and the pool's draining tail is short, within a float32 budget."""
    per_image = 4 * int(np.prod(data.shape)) * 4  # x, start, best, current iterate
    return max(batch_size, min(16 * batch_size, budget_bytes // per_image))


class _ClassSums:
    """Running per-true-class sums of logits, softmax and cross-entropy (under attack also the
    KL divergence from the clean prediction, "kl"), in float64 on the CPU (exact enough for
    10^6 images)."""

    def __init__(self, num_classes: int):
        c = num_classes
        self.sums = {"logits": torch.zeros(c, c, dtype=torch.float64), "probs": torch.zeros(c, c, dtype=torch.float64),
                     "loss": torch.zeros(c, dtype=torch.float64)}

    def add(self, logits: torch.Tensor, y: torch.Tensor, features: torch.Tensor | None = None,
            reference: torch.Tensor | None = None) -> None:
        # on the CPU first (MPS has no float64), then every sum computed in float64
        logits, y = logits.detach().cpu().double(), y.cpu()
        self.sums["logits"].index_add_(0, y, logits)
        self.sums["probs"].index_add_(0, y, logits.softmax(1))
        self.sums["loss"].index_add_(0, y, F.cross_entropy(logits, y, reduction="none"))
        if reference is not None:  # KL(clean || adversarial) per image, TRADES's boundary term (WAT's cost)
            ref = reference.detach().cpu().double()
            kl = F.kl_div(logits.log_softmax(1), ref.softmax(1), reduction="none").sum(1)
            self.sums.setdefault("kl", torch.zeros(len(self.sums["loss"]), dtype=torch.float64))
            self.sums["kl"].index_add_(0, y, kl)
        if features is not None:
            if "features" not in self.sums:
                self.sums["features"] = torch.zeros(len(self.sums["loss"]), features.shape[1], dtype=torch.float64)
            self.sums["features"].index_add_(0, y, features.cpu().double())

    def numpy(self) -> dict[str, np.ndarray]:
        return {k: v.numpy() for k, v in self.sums.items()}


class _Penultimate:
    """The input of the model's output layer (its last nn.Linear or cosine head: its penultimate
    features), recorded by a forward hook only inside `capture()`: during attacks the hook
    returns at once."""

    def __init__(self, model: nn.Module):
        linears = [m for m in model.modules() if isinstance(m, nn.Linear | CosineHead)]
        self.parts: list[torch.Tensor] = []
        self.active = False
        self.handle = linears[-1].register_forward_hook(self._hook) if linears else None

    def _hook(self, _module, inputs, _output):
        if self.active:
            self.parts.append(inputs[0].detach().flatten(1).float())

    @contextmanager
    def capture(self):
        self.parts, self.active = [], True
        try:
            yield
        finally:
            self.active = False

    def take(self, n: int) -> torch.Tensor | None:
        """The features of the last `capture()`, or None if the layer did not see one row per image."""
        parts, self.parts = self.parts, []
        out = torch.cat(parts) if parts else None
        return out if out is not None and out.shape[0] == n else None

    def close(self) -> None:
        if self.handle is not None:
            self.handle.remove()


@contextmanager
def _nothing():
    yield


@torch.inference_mode()
def _logits(model, x, batch_size) -> torch.Tensor:
    return torch.cat([model(x[i:i + 2 * batch_size]) for i in range(0, len(x), 2 * batch_size)])


@torch.inference_mode()
def _confirm(model, fast, out, batch_size) -> torch.Tensor:
    """Predictions on the adversarial examples. When the attack ran on a folded copy, the
    model itself re-reads the examples that fooled the copy, so that a rounding difference
    can never count an image as fooled that the model gets right."""
    pred = out.pred.clone()
    if fast is not model:
        hit = out.success.nonzero().flatten()
        for i in range(0, len(hit), 2 * batch_size):
            rows = hit[i:i + 2 * batch_size]
            pred[rows] = model(out.x_adv[rows]).argmax(1)
    return pred


Spec = AttackSpec | AutoAttackSpec | VictimSpec | IntoClassSpec | CorruptionSpec


def _labelled(attacks) -> dict[str, Spec]:
    """Attacks by result key: a mapping is taken as it is (e.g. one attack at several eps);
    a sequence is keyed by each spec's own label, which must then be unique."""
    items = list(attacks.items()) if isinstance(attacks, Mapping) else [(getattr(a, "label", None), a) for a in attacks]
    out: dict[str, Spec] = {}
    for label, spec in items:
        if not isinstance(spec, Spec):
            raise ClasswiseError(f"not an attack: {spec!r}; use AttackSpec, AutoAttackSpec, VictimSpec, "
                                 "IntoClassSpec or CorruptionSpec")
        if label == "clean":
            raise ClasswiseError("'clean' names the clean predictions; give the attack another label")
        if label in out:
            raise ClasswiseError(f"two attacks share the label '{label}'; pass a dict {{label: spec}} "
                                 "to name them")
        out[label] = spec
    return out


def _as_data(data, num_classes: int | None = None):
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
    (`AttackSpec`, `AutoAttackSpec`, `VictimSpec`, `IntoClassSpec`) or a {label: spec} mapping.

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
    data, device = checked_inputs(model, data, device, _as_data)
    attacks = _labelled(attacks)
    for spec in attacks.values():
        if isinstance(spec, VictimSpec | IntoClassSpec):
            check_class(spec, len(data.classes))
        if isinstance(spec, AutoAttackSpec):
            require_autoattack()  # before the clean pass, not after it
        if isinstance(spec, CorruptionSpec) and spec.source == "files":
            if world()[1] > 1:
                raise ClasswiseError("corrupted files are read by test-set index: run them without torchrun")
            from ..data.corrupted import CorruptedFiles

            CorruptedFiles(spec.files).check(data.labels.numpy(), tuple(data.shape))
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
    for label, spec in attacks.items():
        result.adv_pred[label] = np.empty(n, dtype=np.int64)
        result.attacks[label] = spec.model_dump()
        if precision != "fp32" and isinstance(spec, AttackSpec | VictimSpec | IntoClassSpec):
            result.attacks[label]["precision"] = precision  # searched at it; verdicts in fp32
    corrupted = CorruptionPass({k: s for k, s in attacks.items() if isinstance(s, CorruptionSpec)}, seed, device)
    adversarial = {k: s for k, s in attacks.items() if not isinstance(s, CorruptionSpec)}
    # one generator per attack, consumed in data order: results do not depend on chunking
    generators = [torch.Generator(device=device).manual_seed(seed) for _ in adversarial]
    sums = {k: _ClassSums(len(data.classes)) for k in ["clean", *(k for k, s in attacks.items()
                                                                 if isinstance(s, AttackSpec))]} if class_sums else {}
    chunk = _chunk_size(data, batch_size)
    desc = None
    if show_progress:
        desc = f"{'clean + ' + ', '.join(attacks) if attacks else 'clean'} {data.name or 'data'}"
    with eval_mode(model), channels_last(model), heap_kept():
        fast = folded(model)
        fast = compiled(fast) if compile else fast
        pen = _Penultimate(model) if class_sums else None  # after folding: the copy carries no hook
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
                for label, images in corrupted(x, idx):  # every image, not only the correct ones
                    result.adv_pred[label][idx] = _logits(model, images, batch_size).argmax(1).cpu().numpy()
                for (label, spec), gen in zip(adversarial.items(), generators, strict=True):
                    adv = _attack_chunk(model, fast, spec, x, y, clean, gen, batch_size=batch_size, seed=seed,
                                        early_stop=early_stop, num_classes=len(data.classes), notes=result.notes,
                                        key=label, sums=sums.get(label), clean_logits=clean_logits, pen=pen,
                                        clean_feats=clean_feats, precision=precision)
                    result.adv_pred[label][idx] = adv.cpu().numpy()
        finally:
            if pen:
                pen.close()
    result.class_sums = {k: s.numpy() for k, s in sums.items()}
    for label, spec in attacks.items():
        if isinstance(spec, VictimSpec):
            merge_untargeted(spec, labels, result.adv_pred[label], attacks, result.adv_pred)
    return result


def _attack_chunk(model, fast, spec, x, y, clean, gen, *, batch_size, seed, early_stop, num_classes, notes, key,
                  sums=None, clean_logits=None, pen=None, clean_feats=None, precision="fp32"):
    """Adversarial predictions for one chunk under one spec; with `sums`, the adversarial
    logits' per-class sums too (an image not attacked keeps its clean logits)."""
    adv = clean.clone()
    if isinstance(spec, AutoAttackSpec):
        with full_precision(x.device):  # AutoAttack's numbers are fp32's, whatever the run's precision
            out = run_autoattack(model, x, y, spec, num_classes=num_classes, batch_size=batch_size, seed=seed)
        if out.flags:
            notes[key] = list(dict.fromkeys([*notes.get(key, []), *out.flags]))
        return out.pred
    if isinstance(spec, AttackSpec):  # every image, or only those it needs (a wrong one is wrong already)
        rows = torch.arange(len(y), device=y.device) if spec.images == "all" else (clean == y).nonzero().flatten()
    else:
        rows = threat_rows(spec, y, clean)
    if rows.numel() == 0:
        if sums is not None:
            sums.add(clean_logits, y, clean_feats, reference=clean_logits)
        return adv
    xo = x[rows].contiguous(memory_format=torch.channels_last)
    with autocast(precision, x.device):  # the search; `attack` reads its examples again in fp32
        if isinstance(spec, AttackSpec):
            out = attack(fast, xo, y[rows], spec, early_stop=early_stop, batch_size=batch_size, generator=gen)
        else:
            out = run_threat(spec, fast, xo, y[rows], clean[rows], batch_size=batch_size, generator=gen,
                             early_stop=early_stop)
    adv[rows] = _confirm(model, fast, out, batch_size)
    if sums is not None:
        # one extra forward of the attacked images: ~1/(2*steps) of the attack's cost
        adv_logits = clean_logits.clone()
        with pen.capture() if pen else _nothing():
            adv_logits[rows] = _logits(model, out.x_adv, batch_size).to(adv_logits.dtype)
        adv_feats = None
        got = pen.take(len(rows)) if pen else None
        if clean_feats is not None and got is not None:
            adv_feats = clean_feats.clone()
            adv_feats[rows] = got
        sums.add(adv_logits, y, adv_feats, reference=clean_logits)
    return adv


def merge_untargeted(spec: VictimSpec, labels, victim_pred, attacks: dict, adv_pred: dict) -> None:
    """The victim attacker has the untargeted attack too: where the same evaluation ran it (the
    same spec) and it fooled a victim image the victim runs did not, that image is fooled."""
    for key, other in attacks.items():
        if isinstance(other, AttackSpec) and other == spec.attack:
            take = (labels == spec.victim) & (adv_pred[key] != labels) & (victim_pred == labels)
            victim_pred[take] = adv_pred[key][take]
            return


def load_eval(path, hint: str = "") -> EvalResult:
    """The `EvalResult` stored in an eval.json, checked (`hint`: what to do about a bad one)."""
    d = read_json(path, "evaluation record (eval.json)", hint)
    try:
        check_eval_record(d, str(path))
    except CorruptDataError as exc:
        raise CorruptDataError(f"{exc}{hint}") from None
    return EvalResult.from_dict(d)


def _eps_text(eps: float) -> str:
    levels = eps * 255
    return f"{round(levels)}/255" if abs(levels - round(levels)) < 1e-6 and round(levels) > 0 else f"{eps:.4g}"


def robustbench_json(res: EvalResult, *, dataset: str, name: str | None = None, architecture: str | None = None,
                     autoattack_key: str | None = None, unreliable: bool | None = None) -> dict:
    """RobustBench's model_info fields (accuracies as percent strings with two decimals, eps
    as `8/255`), with `autoattack_acc` from `autoattack_key` (default: the first AutoAttack run
    in the results; None if there is none), plus our per-class table under `classwise`."""
    aa = autoattack_key or next((k for k in res.robust_keys if res.attacks[k].get("name") == "autoattack"), None)
    spec = res.attacks.get(aa) or next((res.attacks[k] for k in res.robust_keys), {})
    table = res.per_class("clean")[["class", "n"]].copy()
    table["clean_acc"] = (res.per_class("clean")["accuracy"] * 100).round(2)
    for key in res.robust_keys:
        table[f"{key}_acc" if key != aa else "autoattack_acc"] = (res.per_class(key)["accuracy"] * 100).round(2)
    footnote = None if aa else "no AutoAttack run: autoattack_acc is missing; see classwise.per_class for other attacks"
    if aa:
        notes = [f"AutoAttack version '{res.attacks[aa].get('version')}', not the standard one"
                 if res.attacks[aa].get("version") != "standard" else None,
                 "a reduced AutoAttack budget" if any(res.attacks[aa].get(k) is not None for k in
                                                     ("iterations", "restarts", "targets", "queries")) else None]
        footnote = "; ".join(n for n in notes if n) or None
    return {
        "link": None, "name": name, "authors": None, "additional_data": None, "number_forward_passes": 1,
        "dataset": dataset, "venue": None, "architecture": architecture,
        "eps": _eps_text(spec["eps"]) if "eps" in spec else None,
        "clean_acc": f"{res.accuracy('clean') * 100:.2f}", "reported": None,
        "autoattack_acc": f"{res.accuracy(aa) * 100:.2f}" if aa else None,
        "footnote": footnote, "unreliable": unreliable,
        "classwise": {"threat_model": {"linf": "Linf", "l2": "L2"}.get(spec.get("norm")), "n_examples": len(res.labels),
                      "attack": spec, "per_class": table.to_dict(orient="records")},
    }
