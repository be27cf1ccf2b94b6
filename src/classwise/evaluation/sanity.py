"""Sanity checks that come with every robust evaluation, after Carlini et al. (2019), "On
Evaluating Adversarial Robustness", and AutoAttack's own flags. A failed check does not
prove an evaluation wrong, but a per-class robust accuracy that fails one is not to be
trusted until the reason is known (most often masked or randomized gradients).

1. robust <= clean, per class and per image (the records are consistent);
2. accuracy does not rise with eps along an eps curve;
3. a stronger attack (more steps or restarts, AutoAttack; PGD against FGSM) is never weaker
   per class than a weaker one at the same norm and eps;
4. a large eps (Linf 0.5 or its L2 equivalent, where every image can be moved to one grey
   image) brings overall accuracy down to chance;
5. gradients look usable: no all-zero or non-finite input gradients, the same logits from two
   identical forward passes, and no warning from AutoAttack;
6. only where an attack searched at a lower precision (`evaluate(..., precision="bf16")`): the
   same attack on a subset at that precision and at fp32, from the same random starts, and a
   warning when the lower precision shows more than 1 point more robust accuracy (rounding can
   mask gradients, as a non-differentiable step does).

Checks 1-3 read the per-sample records; 4 and 5 probe the model on a small stratified
subset (`max_images`), attacking only the images the evaluation found correct, so they
cost a few attacks on a few dozen images and no second clean pass."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..attacks import AttackSpec, attack, eval_mode
from ..attacks.core import attack_loss
from ..attacks.spec import GradSafe
from ..data import to_float
from ..precision import autocast
from .evaluate import as_data
from .result import EvalResult
from .views import curves

OK, WARN, SKIPPED = "ok", "warn", "skipped"
TITLES = {
    "robust_le_clean": "robust <= clean per class",
    "falls_with_eps": "accuracy does not rise with eps",
    "stronger_not_weaker": "stronger attacks never weaker per class",
    "large_eps_chance": "large eps brings accuracy to chance",
    "gradients": "no sign of masked gradients",
    "precision": "lower precision no more robust than fp32",
}
CHANCE_MARGIN = 0.05
PRECISION_MARGIN = 0.01  # robust accuracy a lower-precision search may show above fp32's before a warning


@dataclass
class Check:
    name: str
    status: str  # ok | warn | skipped
    detail: str

    @property
    def title(self) -> str:
        return TITLES.get(self.name, self.name)


@dataclass
class SanityReport:
    checks: list[Check]

    def __getitem__(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)

    @property
    def warnings(self) -> list[Check]:
        return [c for c in self.checks if c.status == WARN]

    @property
    def passed(self) -> bool:
        return not self.warnings

    def table(self) -> pd.DataFrame:
        return pd.DataFrame([{"check": c.title, "status": c.status, "detail": c.detail} for c in self.checks])

    def lines(self) -> list[str]:
        mark = {OK: "ok  ", WARN: "WARN", SKIPPED: "skip"}
        return [f"sanity {mark[c.status]} {c.title}: {c.detail}" for c in self.checks]

    def to_dict(self) -> list[dict]:
        return [asdict(c) for c in self.checks]

    @classmethod
    def from_dict(cls, rows: list[dict]) -> SanityReport:
        return cls([Check(**r) for r in rows])


def slack(n: int) -> int:
    """Images a class may move the 'wrong' way before a check fires: attacks with random
    starts are noisy by an image or so; masking moves many."""
    return max(1, round(0.03 * n))


def _correct(res: EvalResult, key: str) -> np.ndarray:
    k = len(res.classes)
    return np.bincount(res.labels[res.preds(key) == res.labels], minlength=k)


def _counts(res: EvalResult) -> np.ndarray:
    return np.bincount(res.labels, minlength=len(res.classes))


def _pct(a, n) -> str:
    return f"{100 * a / max(n, 1):.1f}%"


def _summarise(problems: list[str], what: str) -> str:
    more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
    return f"{len(problems)} {what}: " + "; ".join(problems[:3]) + more


# ---- checks on records ------------------------------------------------------------------

def check_robust_le_clean(results: list[EvalResult]) -> Check:
    problems, keys = [], 0
    for res in results:
        n, clean = _counts(res), _correct(res, "clean")
        for key in res.adv_pred:
            if res.kind(key) == "corruption":  # a corrupted image may well be right where the clean one is not
                continue
            keys += 1
            adv = _correct(res, key)
            revived = int(((res.adv_pred[key] == res.labels) & (res.clean_pred != res.labels)).sum())
            for c in np.flatnonzero(adv > clean):
                problems.append(f"{key}: class '{res.classes[c]}' {_pct(adv[c], n[c])} under attack > "
                                f"{_pct(clean[c], n[c])} clean")
            if revived and not (adv > clean).any():
                problems.append(f"{key}: {revived} misclassified images counted correct under attack")
    if not keys:
        return Check("robust_le_clean", SKIPPED, "no attack in the results")
    if problems:
        return Check("robust_le_clean", WARN, _summarise(problems, "inconsistencies (a randomized or stateful "
                                                                  "model?)"))
    return Check("robust_le_clean", OK, f"{keys} attack records, every class")


def check_falls_with_eps(series: list[tuple[str, EvalResult, list[tuple[float, str]]]]) -> Check:
    """`series`: (name, results, [(eps, key)] sorted by eps), clean counted as eps 0."""
    if not series:
        return Check("falls_with_eps", SKIPPED, "no eps curve (classwise evaluate --eps-curve)")
    problems, points = [], 0
    for name, res, pts in series:
        n = _counts(res)
        steps = [(0.0, "clean"), *pts]
        points += len(pts)
        for (e0, k0), (e1, k1) in zip(steps, steps[1:], strict=False):
            a0, a1 = _correct(res, k0), _correct(res, k1)
            for c in np.flatnonzero(a1 - a0 > np.array([slack(v) for v in n])):
                problems.append(f"{name}: class '{res.classes[c]}' {_pct(a0[c], n[c])} at eps={e0:.4g} -> "
                                f"{_pct(a1[c], n[c])} at eps={e1:.4g}")
    if problems:
        return Check("falls_with_eps", WARN, _summarise(problems, "rises"))
    return Check("falls_with_eps", OK, f"{points} eps values, every class")


def strength(meta: dict) -> float:
    """Rank of an untargeted attack's budget: FGSM < PGD (steps x restarts) < AutoAttack."""
    if meta.get("name") == "autoattack":
        return math.inf
    if meta.get("name") == "fgsm":
        return 1.0
    return float(meta.get("steps", 1) * meta.get("restarts", 1))


def _comparable_pairs(res: EvalResult) -> list[tuple[str, str]]:
    keys = res.robust_keys
    pairs = []
    for weak in keys:
        for strong in keys:
            a, b = res.attacks[weak], res.attacks[strong]
            if a.get("norm") == b.get("norm") and np.isclose(a.get("eps", -1), b.get("eps", -2)) \
                    and strength(b) > strength(a):
                pairs.append((weak, strong))
    return pairs


def check_stronger_not_weaker(results: list[EvalResult]) -> Check:
    problems, compared = [], []
    for res in results:
        n = _counts(res)
        for weak, strong in _comparable_pairs(res):
            compared.append(f"{strong} vs {weak}")
            w, s = _correct(res, weak), _correct(res, strong)
            for c in np.flatnonzero(s - w > np.array([slack(v) for v in n])):
                problems.append(f"class '{res.classes[c]}' {_pct(s[c], n[c])} under {strong} > "
                                f"{_pct(w[c], n[c])} under {weak}")
    if not compared:
        return Check("stronger_not_weaker", SKIPPED, "no two attacks of different strength at the same eps")
    if problems:
        return Check("stronger_not_weaker", WARN, _summarise(problems, "classes where the stronger attack is weaker"))
    return Check("stronger_not_weaker", OK, ", ".join(dict.fromkeys(compared)))


def check_large_eps(res: EvalResult, key: str, eps: float) -> Check:
    chance = float(np.bincount(res.labels).max() / max(len(res.labels), 1))
    acc = res.accuracy(key)
    text = f"{acc * 100:.1f}% under {key.split('@')[0]} at eps={eps:.4g} (chance {chance * 100:.1f}%)"
    if acc > chance + CHANCE_MARGIN:
        return Check("large_eps_chance", WARN, text + ": the attack cannot find what must exist; "
                                                      "gradients are likely masked")
    return Check("large_eps_chance", OK, text)


def gradient_flags(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[str]:
    """Input gradients of the margin loss (which, unlike cross-entropy, does not vanish on
    confident predictions), and whether two identical forward passes agree."""
    if len(x) == 0:
        return []
    flags = []
    with eval_mode(model):
        xg = x.clone().requires_grad_(True)
        first = model(xg)
        with torch.no_grad():
            second = model(x)
        if not torch.allclose(first.detach(), second, rtol=1e-4, atol=1e-5):
            flags.append("two forward passes on the same images give different logits: a randomized model "
                         "needs an expectation-over-transformation attack (AutoAttack version 'rand')")
        if not first.requires_grad:
            flags.append("the model's output has no gradient path to its input (a non-differentiable step)")
            first = GradSafe(model)(xg)
        grad, = torch.autograd.grad(attack_loss(first, y, loss="margin").sum(), xg)
    per_image = grad.flatten(1)
    zero = int((per_image.abs().sum(1) == 0).sum())
    bad = int((~torch.isfinite(per_image)).any(1).sum())
    if zero:
        flags.append(f"{zero} of {len(x)} images have an all-zero input gradient")
    if bad:
        flags.append(f"{bad} of {len(x)} images have non-finite input gradients")
    return flags


def check_gradients(flags: list[str], aa_notes: dict[str, list[str]], probed: bool) -> Check:
    flags = [*flags, *(f"AutoAttack ({k}): {m}" for k, ms in aa_notes.items() for m in ms)]
    if flags:
        return Check("gradients", WARN, "; ".join(flags))
    if not probed:
        return Check("gradients", SKIPPED, "no model to probe and no AutoAttack warning")
    return Check("gradients", OK, "finite, non-zero input gradients; the same logits twice")


# ---- the whole set ----------------------------------------------------------------------

def large_eps(spec_norm: str, shape) -> float:
    """Linf 0.5 reaches one mid-grey image from any image; the L2 ball of radius 0.5*sqrt(d)
    holds that Linf ball."""
    return 0.5 if spec_norm == "linf" else 0.5 * math.sqrt(int(np.prod(shape)))


def _base_spec(result: EvalResult, spec: AttackSpec | None) -> AttackSpec | None:
    """The gradient attack the probe uses: `spec`, else the result's strongest PGD/FGSM, else
    PGD-20 in the threat model of its AutoAttack."""
    if spec is not None:
        return spec
    grads = [result.attacks[k] for k in result.robust_keys if result.attacks[k].get("name") in ("pgd", "fgsm")]
    if grads:
        return _spec(max(grads, key=strength))
    for key in result.robust_keys:
        meta = result.attacks[key]
        return AttackSpec(eps=meta["eps"], norm=meta["norm"])
    return None


def _spec(meta: dict) -> AttackSpec:
    """The AttackSpec of an attack's record (the precision it searched at is the evaluation's, not the spec's)."""
    return AttackSpec(**{k: v for k, v in meta.items() if k != "precision"})


def check_lower_precision(result: EvalResult, model: nn.Module, data, *, max_images: int, batch_size: int,
                          device, seed: int) -> Check | None:
    """The strongest gradient attack that searched at a lower precision, run again on a stratified
    subset at that precision and at fp32 from the same random starts; None when every attack ran
    in fp32 (the report then has no such line)."""
    low = [k for k in result.robust_keys if result.attacks[k].get("precision", "fp32") != "fp32"
           and result.attacks[k].get("name") in ("pgd", "fgsm")]
    if not low:
        return None
    key = max(low, key=lambda k: strength(result.attacks[k]))
    precision, spec = result.attacks[key]["precision"], _spec(result.attacks[key])
    if model is None or data is None or not len(result.labels):
        return Check("precision", SKIPPED, f"{key} searched in {precision}: needs the model and its data to compare "
                                           "with fp32")
    idx = _pick(result.labels, len(result.classes), max_images, seed)
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    x = to_float(data.images_at(idx), dev)
    y = torch.as_tensor(result.labels[idx], device=dev)
    ok = torch.as_tensor(np.flatnonzero(result.clean_pred[idx] == result.labels[idx]), device=dev)
    robust = {}
    for name in (precision, "fp32"):
        right = 0
        if ok.numel():
            gen = torch.Generator(device=dev).manual_seed(seed)  # the same random starts at both precisions
            with autocast(name, dev):
                out = attack(model, x[ok], y[ok], spec, batch_size=batch_size, generator=gen)
            right = int((~out.success).sum())
        robust[name] = right / len(idx)
    diff = robust[precision] - robust["fp32"]
    text = (f"{key} on {len(idx)} images: {precision} {robust[precision] * 100:.1f}% robust, fp32 "
            f"{robust['fp32'] * 100:.1f}%")
    if diff > PRECISION_MARGIN:
        return Check("precision", WARN, text + f": {precision} shows {diff * 100:.1f} points more; rounding may mask "
                                               "gradients: evaluate at fp32 (--precision fp32) before reporting")
    return Check("precision", OK, text)


def _pick(labels: np.ndarray, num_classes: int, max_images: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    per = max(1, max_images // max(num_classes, 1))
    idx = [rng.permutation(np.flatnonzero(labels == c))[:per] for c in range(num_classes)]
    return np.sort(np.concatenate(idx)) if idx else np.array([], dtype=np.int64)


def _restrict(res: EvalResult, idx: np.ndarray, keys) -> EvalResult:
    return EvalResult(res.classes, res.labels[idx], res.clean_pred[idx], {k: res.adv_pred[k][idx] for k in keys},
                      {k: res.attacks[k] for k in keys})


def sanity_checks(result: EvalResult, model: nn.Module | None = None, data=None, *, curve: EvalResult | None = None,
                  spec: AttackSpec | None = None, max_images: int = 64, batch_size: int = 256, device=None,
                  seed: int = 0, precision_images: int = 256) -> SanityReport:
    """Run the five checks on `result` (and `curve`, an `eps_curve` result, if given). With
    `model` and the `data` the result was computed on, checks 4 and 5 probe the model on a
    stratified subset of up to `max_images` images, attacked with `spec` (default: the
    result's first PGD/FGSM attack) at a large eps; without a curve, the subset's accuracy at
    eps and at the large eps serves as a two-point one, and without two attacks of different
    strength, FGSM on the subset is set against PGD. Where an attack searched at a lower
    precision, check 6 compares it with fp32 on up to `precision_images` images. `data` may be a
    `ClassData`, a `FolderSource` or an (images, labels) pair of tensors, as `evaluate` takes."""
    if model is not None and isinstance(data, tuple | list):
        from ..checks import checked_inputs

        data, _ = checked_inputs(model, data, device, as_data)  # the pair made a ClassData as evaluate makes it
    sources = [result] + ([curve] if curve is not None else [])
    series = [(name, r, pts) for r in sources for name, pts in curves(r).items()]
    records = [result]
    base = _base_spec(result, spec)
    flags: list[str] = []
    large_check = Check("large_eps_chance", SKIPPED, "needs the model and its data")
    probed = model is not None and data is not None and base is not None and len(result.labels) > 0
    if probed:
        idx = _pick(result.labels, len(result.classes), max_images, seed)
        big = max(large_eps(base.norm, data.shape), base.eps)
        large_key = f"{base.label}@{big:.4g}"
        probes = {large_key: base.model_copy(update={"eps": big})}
        known = base.label in result.adv_pred and np.isclose(result.attacks[base.label].get("eps", -1), base.eps)
        if not known:
            probes[base.label] = base
        if not _comparable_pairs(result):
            probes["fgsm"] = AttackSpec(name="fgsm", eps=base.eps, norm=base.norm)
        dev = torch.device(device) if device is not None else next(model.parameters()).device
        x = to_float(data.images_at(idx), dev)
        y = torch.as_tensor(result.labels[idx], device=dev)
        both = _restrict(result, idx, [base.label] if known else [])
        ok = torch.as_tensor(np.flatnonzero(both.clean_pred == both.labels), device=dev)
        for key, probe in probes.items():  # on the images the evaluation found correct: no second clean pass
            pred = torch.tensor(both.clean_pred, device=dev)  # a copy: as_tensor would alias every probe's record
            if ok.numel():
                gen = torch.Generator(device=dev).manual_seed(seed)
                pred[ok] = attack(model, x[ok], y[ok], probe, batch_size=batch_size, generator=gen).pred
            both.adv_pred[key], both.attacks[key] = pred.cpu().numpy(), probe.model_dump()
        large_check = check_large_eps(both, large_key, big)
        if not series:
            series.append((f"{base.label} (probe)", both, [(base.eps, base.label), (big, large_key)]))
        if "fgsm" in probes:
            records.append(_restrict(both, np.arange(len(idx)), [base.label, "fgsm"]))
        flags = gradient_flags(model, x[ok[:16]], y[ok[:16]])
    aa_notes = {k: v for k, v in result.notes.items() if v}
    lower = check_lower_precision(result, model, data, max_images=precision_images, batch_size=batch_size,
                                  device=device, seed=seed)
    return SanityReport([
        check_robust_le_clean(sources),
        check_falls_with_eps(series),
        check_stronger_not_weaker(records),
        large_check,
        check_gradients(flags, aa_notes, probed),
        *([lower] if lower is not None else []),
    ])
