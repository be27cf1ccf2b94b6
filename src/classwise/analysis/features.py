"""Robust and non-robust features (Ilyas et al. 2019, "Adversarial examples are not bugs, they
are features"): the four constructed training sets of their Section 3.

- D_R (`robust`) and D_NR (`non-robust`): for each training image x with label y, start from
  another training image drawn at random and take normalised L2 gradient steps on the input
  that bring its penultimate representation g(x') close to g(x) (the loss is the relative
  distance ||g(x') - g(x)|| / ||g(x)||, as in MadryLab's `robustness` inversion examples),
  clipping to [0, 1] after every step and keeping the best iterate; the image keeps label y.
  From an adversarially trained model this keeps only the features a robust model uses; from
  a standard model, only those of a standard model. The paper's CIFAR-10 setting: 1000 steps
  of size 0.1.
- D_det (`det`) and D_rand (`rand`): a targeted L2 PGD attack (eps 0.5, step 0.1, 100 steps
  in the paper) of a standard model towards a class t, the result relabelled t: t = (y + 1)
  mod C for D_det, t drawn uniformly among the other classes for D_rand. What is left that
  predicts the label is non-robust.

The construction runs in chunks; each finished chunk is written atomically (data/constructed.py),
so a killed build continues where it stopped, with the same starting images and targets."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..attacks import eval_mode
from ..attacks.core import perturb
from ..data.constructed import KINDS, chunk_path, done_chunks, load_chunk, read_meta, write_chunk, write_meta
from ..errors import ClasswiseError
from ..progress import progress


@dataclass(frozen=True)
class FeatureParams:
    steps: int
    step_size: float
    eps: float | None = None  # L2 radius of det / rand; representation matching is unconstrained


# Ilyas et al. (2019), Appendix C, CIFAR-10
PAPER = {"robust": FeatureParams(1000, 0.1), "non-robust": FeatureParams(1000, 0.1),
         "det": FeatureParams(100, 0.1, 0.5), "rand": FeatureParams(100, 0.1, 0.5)}


def last_linear(model: nn.Module) -> nn.Linear:
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ClasswiseError("representation matching needs a model whose last layer is an nn.Linear "
                             "(its input is the representation matched)")
    return linears[-1]


def representation(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The input of the model's last nn.Linear for `x` (gradients flow through it)."""
    got = []
    handle = last_linear(model).register_forward_hook(lambda _m, inp, _o: got.append(inp[0]))
    try:
        model(x)
    finally:
        handle.remove()
    return got[-1].flatten(1)


def _relative(rep: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (rep - target).norm(dim=1) / target.norm(dim=1).clamp_min(1e-12)


def match_representation(model: nn.Module, start: torch.Tensor, target: torch.Tensor, *, steps: int,
                         step_size: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Images that start at `start` and move by normalised L2 gradient steps so that their
    representation approaches `target` (rows of representations); the best iterate per image
    and its relative distance ||g(x) - target|| / ||target||."""
    x = start.detach().clone()
    best, best_d = x.clone(), torch.full((len(x),), float("inf"), device=x.device)
    for i in range(steps + 1):
        x.requires_grad_(True)
        d = _relative(representation(model, x), target)
        better = d.detach() < best_d
        best[better], best_d[better] = x.detach()[better], d.detach()[better]
        if i == steps:
            break
        grad, = torch.autograd.grad(d.sum(), x)
        norm = grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (x.ndim - 1)))
        x = (x.detach() - step_size * grad / norm).clamp_(0, 1)
    return best, best_d


def plan(n: int, kind: str, num_classes: int, labels: torch.Tensor, seed: int) -> torch.Tensor:
    """What each image needs, drawn once from `seed` so that a resumed build draws the same:
    the index of its starting image (robust / non-robust: another image, at random) or its
    target class (det: y + 1 mod C; rand: one of the other classes, at random)."""
    g = torch.Generator().manual_seed(seed)
    if kind in ("robust", "non-robust"):
        if n < 2:
            raise ClasswiseError("representation matching needs at least two images")
        return (torch.arange(n) + torch.randint(1, n, (n,), generator=g)) % n
    if kind == "det":
        return (labels + 1) % num_classes
    return (labels + torch.randint(1, num_classes, (n,), generator=g)) % num_classes


def check_resumable(out, data, kind: str, *, params: FeatureParams, source: dict, chunk: int, seed: int) -> dict:
    """The meta record of this construction; if `out` holds one already, it must be the same
    construction and every chunk it keeps must read back (a chunk that would run code, or holds
    other images, is one line naming it): checked before any work. Reads only."""
    if kind not in KINDS:
        raise ClasswiseError(f"unknown kind '{kind}'; choose one of {', '.join(KINDS)}")
    out = Path(out)
    n = len(data)
    meta = {"kind": kind, "source": source, "params": {"steps": params.steps, "step_size": params.step_size,
                                                       "eps": params.eps},
            "seed": seed, "n": n, "chunk": chunk, "n_chunks": math.ceil(n / chunk), "classes": list(data.classes),
            "shape": list(data.shape), "complete": False}
    if (out / "meta.json").exists():
        old = read_meta(out)
        same = {k: old.get(k) for k in ("kind", "source", "params", "seed", "n", "chunk")}
        if same != {k: meta[k] for k in same}:
            raise ClasswiseError(f"{out} holds a different construction ({old['kind']}, {old['n']} images, "
                                 f"{old['params']}); choose another --out")
        for i in done_chunks(out, meta["n_chunks"]):
            load_chunk(out, i, meta)
    return meta


def build(model: nn.Module, data, kind: str, out, *, params: FeatureParams, source: dict, chunk: int = 500,
          batch_size: int = 250, seed: int = 0, device="cpu") -> dict:
    """Construct the `kind` data set from `data` (a uint8 or float `ClassData`) with `model`
    into folder `out`, resuming from the chunks already there. Returns the meta record."""
    out = Path(out)
    meta = check_resumable(out, data, kind, params=params, source=source, chunk=chunk, seed=seed)
    n, n_chunks = meta["n"], meta["n_chunks"]
    write_meta(out, meta)
    plan_ = plan(n, kind, data.num_classes, data.labels, seed)
    todo = [i for i in range(n_chunks) if not chunk_path(out, i).is_file()]
    model = model.to(device)
    flags = [p.requires_grad for p in model.parameters()]
    with eval_mode(model):
        for p in model.parameters():
            p.requires_grad_(False)  # only input gradients are needed
        try:
            _chunks(model, data, kind, out, todo, plan_, params, n, chunk, batch_size, device)
        finally:
            for p, f in zip(model.parameters(), flags, strict=True):
                p.requires_grad_(f)
    meta["complete"] = len(done_chunks(out, n_chunks)) == n_chunks
    meta["summary"] = summarise(out, meta)
    write_meta(out, meta)
    return meta


def _chunks(model, data, kind, out, todo, plan_, params, n, chunk, batch_size, device) -> None:
    for i in progress(todo, f"features {kind}", total_items=len(todo) * chunk, step_items=chunk):
        idx = torch.arange(i * chunk, min((i + 1) * chunk, n))
        images, labels, dist = [], [], []
        for b in range(0, len(idx), batch_size):
            rows = idx[b:b + batch_size]
            x = _float(data.images_at(rows), device)
            y = data.labels[rows]
            if kind in ("robust", "non-robust"):
                with torch.no_grad():
                    target = representation(model, x)
                start = _float(data.images_at(plan_[rows]), device)
                xb, d = match_representation(model, start, target, steps=params.steps, step_size=params.step_size)
                images.append(xb.cpu())
                labels.append(y)
                dist.append(d.cpu())
            else:
                t = plan_[rows].to(device)
                adv = perturb(model, x, y.to(device), eps=params.eps, steps=params.steps, alpha=params.step_size,
                              norm="l2", random_start=False, target=t, early_stop=False, track=False).x_adv
                with torch.no_grad():
                    hit = model(adv).argmax(1).eq(t).float()
                images.append(adv.cpu())
                labels.append(t.cpu())
                dist.append(hit.cpu())
        d = torch.cat(dist)
        write_chunk(out, i, torch.cat(images), torch.cat(labels), idx,
                    **({"relative_distance": d} if kind in ("robust", "non-robust") else {"reached_target": d}))


def summarise(out, meta: dict) -> dict:
    """Over all chunks: the median and 90th percentile relative representation distance
    (robust / non-robust) or the share of images that reached their target (det / rand)."""
    key = "relative_distance" if meta["kind"] in ("robust", "non-robust") else "reached_target"
    vals = torch.cat([load_chunk(out, i, meta)[key] for i in done_chunks(out, meta["n_chunks"])]).numpy()
    if key == "relative_distance":
        return {"median_relative_distance": float(np.median(vals)),
                "p90_relative_distance": float(np.quantile(vals, 0.9))}
    return {"reached_target": float(vals.mean())}


def _float(images: torch.Tensor, device) -> torch.Tensor:
    from ..data import to_float

    return to_float(images, device)
