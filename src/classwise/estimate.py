"""How long a long run will take, said before it starts (`classwise evaluate` prints it first;
the same `Estimate` and `estimate_line` serve any verb that times its parts this way).

An attack's cost is its forward and backward passes, batch by batch: one batch of the real data
is timed through the model (a forward pass, and one with the input gradient), and each attack's
passes are counted from its budget (PGD's steps and restarts; AutoAttack's iterations, restarts,
targets and Square queries per batch of the images still robust, taken as all the images the
model gets right, so that its part is an upper bound: it stops on the images it fools). Timing a
few images and scaling by the count would be wrong on a CPU, where a small batch costs about
what a full one does. What is not a batch of passes (corrupting images) is timed on a few
images and scaled."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from .progress import minutes

PROBE = 64  # images timed for the parts that scale with the images (corruptions, class-targeted threats)


@dataclass
class Estimate:
    seconds: float
    n: int  # items the whole run does
    probe: int  # items the parts were timed on
    parts: dict[str, float] = field(default_factory=dict)  # seconds per part
    unit: str = "images"
    upper: list[str] = field(default_factory=list)  # parts whose time is an upper bound


def estimate_line(estimate: Estimate | None) -> str | None:
    """`estimated time: about 21 min for 500 images (aa at most 20 min, pgd20 40 s, clean 1 s; a
    batch of 256 timed)`."""
    if estimate is None:
        return None
    parts = ", ".join(f"{k}{' at most' if k in estimate.upper else ''} {minutes(v)}"
                      for k, v in sorted(estimate.parts.items(), key=lambda kv: -kv[1]))
    at_most = "at most " if estimate.upper and max(estimate.parts, key=estimate.parts.get) in estimate.upper else ""
    return (f"estimated time: {at_most}about {minutes(estimate.seconds)} for {estimate.n} {estimate.unit}"
            + (f" ({parts}; a batch of {estimate.probe} timed)" if parts else ""))


def timed(fn, reps: int = 3) -> float:
    """The fastest of `reps` calls (the first may pay for warming up)."""
    best = math.inf
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def pass_times(model, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float, float]:
    """(seconds of a forward pass, of a forward pass with the input gradient, clean accuracy) on
    the batch `x`, the model in eval mode (as attacks run it) and left as it was."""
    from .attacks import eval_mode

    with eval_mode(model), torch.random.fork_rng(devices=[]):
        with torch.no_grad():
            acc = float((model(x).argmax(1) == y).float().mean())
            forward = timed(lambda: model(x))

        def gradient():
            xg = x.detach().clone().requires_grad_(True)
            torch.autograd.grad(F.cross_entropy(model(xg), y), xg)

        return forward, timed(gradient), acc


def estimate_evaluation(model, data, attacks, *, batch_size: int = 256, device=None, seed: int = 0) -> Estimate | None:
    """The evaluation of `attacks` on `data` (see the module's note); None under torchrun."""
    from .attacks import AttackSpec, AutoAttackSpec
    from .attacks.autoattack import autoattack_passes
    from .data import to_float
    from .distributed import world

    n = len(data)
    if world()[1] > 1 or n == 0:
        return None
    device = device if device is not None else next(iter(model.parameters()), torch.zeros(0)).device
    b = min(batch_size, n)
    idx = np.unique(np.linspace(0, n - 1, b).round().astype(np.int64))
    x, y = to_float(data.images_at(idx), device), torch.as_tensor(data.labels[torch.as_tensor(idx)]).to(device)
    t_forward, t_grad, acc = pass_times(model, x, y)
    batches = math.ceil(n / batch_size)
    attacked = math.ceil(n * acc / batch_size) if acc > 0 else 0  # batches of images the model gets right
    parts, upper = {"clean": batches * t_forward * 2}, []  # the clean pass reads and predicts every chunk
    probe = None
    for spec in attacks:
        label = getattr(spec, "label", type(spec).__name__)
        if isinstance(spec, AttackSpec):
            parts[label] = attacked * spec.effective_steps * spec.restarts * t_grad
        elif isinstance(spec, AutoAttackSpec):
            passes = autoattack_passes(spec, len(data.classes))
            parts[label] = sum(attacked * k * (t_forward if a == "square" else t_grad) for a, k in passes.items())
            upper.append(label)
        elif getattr(spec, "source", None) == "files":
            parts[label] = batches * t_forward  # the published images, read and predicted
        else:  # corruptions made here, class-targeted threats: timed on a few images, scaled
            if probe is None:
                probe = data.subset(np.unique(np.linspace(0, n - 1, min(PROBE, n)).round().astype(np.int64)))
            parts[label] = _probe_seconds(model, probe, spec, batch_size, device, seed) * n / len(probe)
    return Estimate(sum(parts.values()), n, b, parts, upper=upper)


def _probe_seconds(model, probe, spec, batch_size, device, seed) -> float:
    from .evaluation import evaluate

    kw = {"batch_size": batch_size, "device": device, "seed": seed, "show_progress": False}
    clean = timed(lambda: evaluate(model, probe, [], **kw), reps=1)
    return max(timed(lambda: evaluate(model, probe, [spec], **kw), reps=1) - clean, 0.0)
