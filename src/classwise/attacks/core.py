"""FGSM and PGD under Linf and L2, untargeted or targeted, inputs in [0, 1], eps in pixel
units. A point counts as fooled when *any* iterate fools it (the attacker keeps the best
adversarial example, as AutoAttack does), which is what lets evaluation drop a point as
soon as it is fooled: early-stopped and full-length runs give the same answer."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ClasswiseError
from ..precision import full_precision, is_compiled, lowered
from .input_grad import fast_input_grad

NORMS = ("linf", "l2")
LOSSES = ("ce", "margin", "kl")
INITS = ("uniform", "normal")


@contextmanager
def eval_mode(model: nn.Module):
    """Eval mode for the duration, then every submodule's own train/eval flag restored."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, training in flags:
            m.training = training


@contextmanager
def channels_last(model: nn.Module):
    """Run convolutions in channels-last layout (measured +15-20% for input-gradient steps on
    CPU, see benchmarks/) and give the model back in the layout it came in."""
    four_d = [t for t in model.parameters() if t.ndim == 4]
    convert = bool(four_d) and not all(t.is_contiguous(memory_format=torch.channels_last) for t in four_d)
    if convert:
        model.to(memory_format=torch.channels_last)
    try:
        yield model
    finally:
        if convert:
            model.to(memory_format=torch.contiguous_format)


@contextmanager
def inputs_only(model: nn.Module):
    """Within the block a compiled `model`'s weights take no gradient: its compiled backward
    computes every gradient its graph was traced with, and an attack needs the input's alone
    (eager autograd skips the weights' by itself). Nothing changes for an eager model."""
    params = [p for p in model.parameters() if p.requires_grad] if is_compiled(model) else []
    for p in params:
        p.requires_grad_(False)
    try:
        yield model
    finally:
        for p in params:
            p.requires_grad_(True)


def full(t: torch.Tensor) -> torch.Tensor:
    """A bf16 / fp16 tensor (an autocast pass's output) in fp32; any other tensor as it is."""
    return t.float() if t.dtype in (torch.bfloat16, torch.float16) else t


def _margin(logits: torch.Tensor, cls: torch.Tensor) -> torch.Tensor:
    """Carlini-Wagner margin: best other logit minus the logit of `cls`."""
    own = logits.gather(1, cls[:, None]).squeeze(1)
    other = logits.scatter(1, cls[:, None], float("-inf")).amax(1)
    return other - own


class PerImage:
    """A callable attack loss that reads only its own images: `fn(logits, rows)`, `rows` the slice
    of the batch the logits are of. A plain callable may read the whole batch, so an attack with
    one runs as one; with this the attack may split the batch into parts (`in_parts`)."""

    def __init__(self, fn, rows: slice = slice(None)):
        self.fn, self.rows = fn, rows

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        return self.fn(logits, self.rows)

    def part(self, i: int, j: int) -> PerImage:
        return PerImage(self.fn, slice(i, j))


def attack_loss(logits, y, target=None, loss: str = "ce", reference=None) -> torch.Tensor:
    """Per-sample objective the attacker *ascends*. "kl" is TRADES's: KL(reference || softmax
    of the logits), `reference` the clean prediction's softmax."""
    if loss == "kl":
        # the reference in the logits' dtype (a clean pass under autocast gives bf16/fp16; else a no-op)
        return F.kl_div(F.log_softmax(logits, 1), reference.to(logits.dtype), reduction="none").sum(1)
    if target is None:
        return F.cross_entropy(logits, y, reduction="none") if loss == "ce" else _margin(logits, y)
    return -F.cross_entropy(logits, target, reduction="none") if loss == "ce" else -_margin(logits, target)


def _l2_norm(v: torch.Tensor) -> torch.Tensor:
    return v.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (v.ndim - 1)))


def _per_image(v, x):
    """A radius or step size as it broadcasts over images: a number as it is, a per-image
    tensor (class-wise eps, as CFA and DAFA train with) as (N, 1, 1, 1)."""
    return v.view(-1, *([1] * (x.ndim - 1))) if torch.is_tensor(v) else v


def random_init(x, eps, norm, generator=None, init: str = "uniform"):
    """A random first iterate: uniform in the eps-ball (Madry et al.), or x + 0.001 N(0, 1)
    left unclipped, as TRADES's code starts (its first gradient is taken there)."""
    if init == "normal":
        return x + 0.001 * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    if norm == "linf":
        if torch.is_tensor(eps):
            u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            delta = (2 * u - 1) * _per_image(eps, x)
        else:
            delta = torch.empty_like(x).uniform_(-eps, eps, generator=generator)
    else:
        direction = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        radius = torch.rand(x.shape[0], generator=generator, device=x.device, dtype=x.dtype)
        delta = direction / _l2_norm(direction) * (eps * radius).view(-1, *([1] * (x.ndim - 1)))
    return (x + delta).clamp_(0, 1)


def project(x_adv, x, eps, norm):
    eps = _per_image(eps, x)
    if norm == "linf":
        return torch.min(torch.max(x_adv, x - eps), x + eps).clamp_(0, 1)
    delta = x_adv - x
    delta = delta * (eps / _l2_norm(delta)).clamp(max=1.0)
    return (x + delta).clamp_(0, 1)


def step(x_adv, grad, alpha, norm):
    alpha = _per_image(alpha, x_adv)
    if norm == "linf":
        return x_adv + alpha * grad.sign()
    return x_adv + alpha * grad / _l2_norm(grad)


@dataclass
class AttackOutput:
    x_adv: torch.Tensor  # adversarial examples (the fooling iterate where one was found)
    pred: torch.Tensor  # the model's prediction on x_adv
    success: torch.Tensor  # bool: fooled (untargeted) / reached the target (targeted)


def _ascend(model, x, x_adv, y, eps, alpha, steps, norm, loss, target, reference, update) -> torch.Tensor:
    """`steps` steps of gradient ascent from x_adv, untracked (the training attacks' loop)."""
    for _ in range(steps):
        x_adv.requires_grad_(True)
        logits = full(model(x_adv))
        objective = loss(logits) if callable(loss) else attack_loss(logits, y, target, loss, reference)
        grad, = torch.autograd.grad(objective.sum(), x_adv)
        x_adv = (update(x_adv.detach(), grad) if update is not None
                 else project(step(x_adv.detach(), grad, alpha, norm), x, eps, norm))
    return x_adv.detach()


def _track(model, x, x_init, y, target, reference, eps, alpha, steps, norm, loss, size, early_stop, last, low):
    """The tracked attack on x from x_init with a pool of `size` points (see `perturb`):
    (best iterates, predictions there, success)."""
    n = x.shape[0]
    size = min(size, n)
    best = x_init.clone()
    pred = torch.empty(n, dtype=torch.long, device=x.device)
    success = torch.zeros(n, dtype=torch.bool, device=x.device)
    idx = torch.arange(size, device=x.device)  # the pool: which points, at which iterate
    xa = x_init[:size]
    k = torch.zeros(size, dtype=torch.long, device=x.device)
    queued = size
    while idx.numel():
        xa.requires_grad_(True)
        logits = full(model(xa))
        p = logits.argmax(1)
        yi = y[idx]
        ti = target[idx] if target is not None else None
        hit = p.eq(ti) if ti is not None else p.ne(yi)
        if low is not None and bool(hit.any()):
            # a search at bf16 / fp16: a point counts as fooled (and stops) only once fp32 agrees, read
            # again for the iterates the lowered pass calls fooled. Rounding moves a near-tie either way:
            # stopping on the lowered verdict counted near-misses as hits that fp32 then found robust
            # (a 16-px CNN's per-class PGD-10 accuracy up to 8.5 points above fp32's; confirmed, 1 point)
            p = p.clone()
            rows = hit.nonzero().flatten()
            with torch.no_grad(), full_precision(x.device):
                p[rows] = model(xa.detach()[rows]).argmax(1)
            hit = p.eq(ti) if ti is not None else p.ne(yi)
        done = k.eq(steps) | (hit if early_stop else torch.zeros_like(hit))
        if last:
            report = done
            success[idx[done]] = hit[done]
        else:
            first = hit & ~success[idx]  # fooled at this iterate for the first time: keep it
            report = first | (done & ~success[idx])  # unfooled points report their last iterate
            success[idx] = success[idx] | hit
        best[idx[report]] = xa.detach()[report]
        pred[idx[report]] = p[report]
        go = ~done
        n_go = int(go.sum())
        if n_go:
            ref = None if reference is None else reference[idx[go]]
            objective = attack_loss(logits[go], yi[go], None if ti is None else ti[go], loss, ref)
            grad, = torch.autograd.grad(objective.sum(), xa)
            xa_go = project(step(xa.detach()[go], grad[go], alpha, norm), x[idx[go]], eps, norm)
        new = torch.arange(queued, min(queued + size - n_go, n), device=x.device)
        queued += new.numel()
        idx = torch.cat([idx[go], new])
        k = torch.cat([k[go] + 1, torch.zeros_like(new)])
        xa = torch.cat([xa_go, x_init[new]]) if n_go else x_init[new]
    return best, pred, success


# Images per part at least: smaller parts lose more to per-call costs than barriers cost.
MIN_PART = 32
_POOL: ThreadPoolExecutor | None = None  # made on first use; a forked child makes its own
os.register_at_fork(after_in_child=lambda: globals().update(_POOL=None))  # its threads are not copied


def _independent_parts(model: nn.Module, x: torch.Tensor, loss, update) -> int:
    """Into how many parts an attack on `x` splits, each run on one of torch's CPU
    threads from start to end: 1 (no split) unless on the CPU with several threads, every module
    in eval mode (train-mode BatchNorm's batch statistics, or dropout's draws, would join the
    images), no autocast (thread-local) and no callable loss but a `PerImage` one, no update (they
    may read the whole batch)."""
    threads = torch.get_num_threads()
    if (x.device.type != "cpu" or threads < 2 or (callable(loss) and not isinstance(loss, PerImage))
            or update is not None
            or lowered(x.device) is not None or is_compiled(model) or any(m.training for m in model.modules())):
        return 1
    return max(1, min(threads, len(x) // MIN_PART))


def in_parts(fn, n: int, parts: int):
    """torch.cat of fn(i, j) over `parts` contiguous runs of 0..n-1 (of each tensor, where fn
    returns a tuple), side by side, each on one intra-op thread (the process's count is restored
    after).

    On the CPU an attack in eval mode is the same computation image by image, so its parts need
    not meet: where torch's own threads split every op of the whole batch and wait for each other
    at its end (hundreds of barriers a step), each thread here runs its images' steps alone. The
    same bits (per-image convolutions, a per-image loss). On one thread the work is the same; on
    cores shared with other jobs the barriers are where the time goes, the waiting thread spinning
    on CPU its partner needs: PGD-3 on 128 images took ResNet-20 2.50 s (1.78 s of CPU) with two
    threads per op and 1.27 s (0.88 s) in two parts, airbench-half 3.27 s (2.13 s) against 0.89 s
    (0.58 s), at a load average of 7 on the two cores."""
    global _POOL
    threads = torch.get_num_threads()
    if _POOL is None or _POOL._max_workers < parts - 1:
        _POOL = ThreadPoolExecutor(max(parts - 1, 1), thread_name_prefix="classwise-attack")
    bounds = [n * k // parts for k in range(parts + 1)]
    torch.set_num_threads(1)
    try:
        rest = [_POOL.submit(fn, bounds[k], bounds[k + 1]) for k in range(1, parts)]
        got = [fn(bounds[0], bounds[1]), *(f.result() for f in rest)]
        if isinstance(got[0], tuple):
            return tuple(torch.cat(col) for col in zip(*got, strict=True))
        return torch.cat(got)
    finally:
        torch.set_num_threads(threads)


def check_args(eps, alpha, steps, norm, loss, init="uniform"):
    # per-image values come from training objectives and are taken as their formulas give them:
    # DAFA's class weights may in principle turn negative, and its authors' code uses them as they are
    if not (torch.is_tensor(eps) or torch.is_tensor(alpha)):
        if eps < 0:
            raise ClasswiseError(f"eps must be >= 0, got {eps}")
        if alpha is not None and alpha <= 0 and eps > 0:
            raise ClasswiseError(f"step size alpha must be > 0, got {alpha}")
    if steps < 1:
        raise ClasswiseError(f"an attack needs at least 1 step, got {steps}")
    if norm not in NORMS:
        raise ClasswiseError(f"norm must be one of {NORMS}, got '{norm}'")
    if loss not in LOSSES and not callable(loss):
        raise ClasswiseError(f"loss must be one of {LOSSES}, got '{loss}'")
    if init not in INITS:
        raise ClasswiseError(f"init must be one of {INITS}, got '{init}'")


def perturb(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, steps: int,
            alpha: float | None = None, norm: str = "linf", random_start: bool = True, init: str = "uniform",
            target: torch.Tensor | None = None, loss: str = "ce", reference: torch.Tensor | None = None,
            early_stop: bool = True, last: bool = False, track: bool = True, batch_size: int | None = None,
            generator: torch.Generator | None = None, start: torch.Tensor | None = None,
            update=None) -> AttackOutput:
    """Projected gradient ascent from x (or a random point near it: `init` "uniform" in the
    eps-ball, "normal" x + 0.001 N(0, 1) as TRADES starts; or the given first iterate `start`,
    taken as it is). `reference` is the clean softmax the "kl" loss ascends away from.

    It runs the model in whatever mode it is in (`attack` puts it in eval mode; training
    methods craft their examples in train mode as the reference implementations do).
    `track=False` is the training path: no success bookkeeping and no final forward pass; there
    `eps` and `alpha` may be per-image tensors and `loss` a callable logits -> per-image
    objective, and `update(x_adv, grad)` may replace the step and projection (DAFA's two steps).

    With tracking, points are attacked from a pool of `batch_size`: a point leaves when it is
    fooled (with `early_stop`) or has taken all its steps, and the next point takes its place,
    so batches stay full instead of shrinking as points fall (see benchmarks/). Random starts
    are drawn for all points up front, so the answer does not depend on the pool size. A point
    reports the first iterate that fooled it, or with `last` (no early stop) its last iterate,
    as the fair-training papers' validation loops score it.
    """
    check_args(eps, alpha, steps, norm, loss, init)
    if track and (callable(loss) or torch.is_tensor(eps) or torch.is_tensor(alpha)):
        raise ClasswiseError("per-image eps and callable losses are for crafting training inputs (track=False)")
    if loss == "kl" and reference is None:
        raise ClasswiseError("the kl loss needs the clean prediction (reference) it moves away from")
    alpha = 2.5 * eps / steps if alpha is None else alpha
    early_stop = early_stop and not last
    x = x.detach()
    if not torch.is_tensor(eps) and eps == 0:
        with torch.no_grad():
            pred = model(x).argmax(1)
        success = pred.eq(target) if target is not None else pred.ne(y)
        return AttackOutput(x.clone(), pred, success)

    # under autocast (a bf16 / fp16 run) the model's passes are lowered; the logits the attack's
    # loss reads are fp32 (`full`: the tensor itself at fp32 or fp64)
    with fast_input_grad(model), inputs_only(model):
        if start is not None:
            x_init = start.detach().clone()
        else:
            x_init = random_init(x, eps, norm, generator, init) if random_start else x.clone()
        if not track:
            def ascend(i: int, j: int) -> torch.Tensor:
                """The steps for images i..j-1: every per-image argument cut to them."""
                def rows(v):
                    return v[i:j] if torch.is_tensor(v) and v.ndim and len(v) == len(x) else v

                own = loss.part(i, j) if isinstance(loss, PerImage) else loss
                return _ascend(model, rows(x), rows(x_init), rows(y), rows(eps), rows(alpha), steps, norm, own,
                               rows(target), rows(reference), update)

            parts = _independent_parts(model, x, loss, update)
            x_adv = ascend(0, len(x)) if parts == 1 else in_parts(ascend, len(x), parts)
            return AttackOutput(x_adv, torch.empty(0), torch.empty(0))

        n = x.shape[0]
        low = lowered(x.device)  # the precision of an autocast the caller runs under, else None
        size = min(batch_size or n, n)
        parts = _independent_parts(model, x, loss, None)
        if parts == 1:
            return AttackOutput(*_track(model, x, x_init, y, target, reference, eps, alpha, steps, norm, loss, size,
                                        early_stop, last, low))

        def track(i: int, j: int):  # each part its share of the pool
            def rows(v):
                return None if v is None else v[i:j]

            return _track(model, x[i:j], x_init[i:j], y[i:j], rows(target), rows(reference), eps, alpha, steps, norm,
                          loss, max(1, -(-size // parts)), early_stop, last, low)

        return AttackOutput(*in_parts(track, n, parts))
