"""Noise: gaussian, shot (Poisson), impulse (salt and pepper) and speckle, per pixel and channel.
Each draws in `ops.in_streams`, two generator streams side by side on the CPU, into one fresh
tensor it then works on in place: a whole batch at once (`chunk=None`), as chunks would add
only their copy (measured 15-35% slower). Gaussian, speckle and shot noise register their
draws apart (`draw`): they do not depend on the severity, so `each_severity` makes them once
for all five, and the draws were most of what these noises cost."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

from . import ops
from .kernels.shot_noise import SLICE_BITS, fill_slices, settle
from .registry import param, register_corruption


def standard_normals(x: torch.Tensor, generator) -> torch.Tensor:
    """One standard normal a value: gaussian and speckle noise at any severity scale them."""
    return ops.in_streams(x, generator, lambda out, x, g: out.normal_(generator=g))


@register_corruption("noise", [0.04, 0.06, 0.08, 0.09, 0.10], chunk=None, draw=standard_normals)
def gaussian_noise(x, severity, z):
    return torch.add(x, z, alpha=param("gaussian_noise", severity)).clamp_(0, 1)


CHUNK = 1 << 18  # values at a time on the CPU: temporaries in cache, few op calls (2^16: 20% slower, 2^20: 12%)


@lru_cache(maxsize=16)
def shot_tables(c: float, device: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Inverse-CDF tables of min(Poisson(k c / 255), c) / c for the 256 8-bit levels k, u in
    [0, 1) cut in S = 2^SLICE_BITS slices: the guide (256 S,) holds the value where it is
    constant on slice (k, s), else -(k S + s + 1) (about 2% of u at c = 500); `step` (256 S,)
    the count at the slice's start where the slice holds one step of the CDF, else -1 (the tails'
    end slices); and the CDF rows (256, J) shifted by +k, one sorted sequence."""
    slices = 1 << SLICE_BITS
    lam = torch.arange(256, dtype=torch.float64)[:, None] * c / 255
    j = torch.arange(int(c + 12 * c**0.5 + 30), dtype=torch.float64)
    logpmf = j * lam.log() - lam - torch.lgamma(j + 1)
    logpmf[0] = torch.where(j == 0, 0.0, -math.inf)  # rate 0: always 0 (and 0 * log 0 is nan)
    cdf = logpmf.exp().cumsum(1)
    edges = torch.arange(slices + 1, dtype=torch.float64).expand(256, -1) / slices
    first = torch.searchsorted(cdf, edges[:, :-1].contiguous(), right=True)  # min{j: CDF(j) > s / S}
    last = torch.searchsorted(cdf, edges[:, 1:].contiguous())  # the same just below (s + 1) / S
    value = (first.float() / c).clamp(max=1)  # in float32, as the straddlers' values are divided
    code = -1.0 - torch.arange(256 * slices, dtype=torch.float32).view(256, slices)
    guide = torch.where(first == last, value, code)
    step = torch.where(last == first + 1, first, -1)
    shifted = cdf + torch.arange(256, dtype=torch.float64)[:, None]
    return guide.flatten().to(device), step.flatten().to(device), shifted.flatten().to(device)


def shot_draw(x: torch.Tensor, generator) -> tuple[torch.Tensor | None, int]:
    """What shot noise at every severity is made of. Where x is on the 8-bit grid (every
    dataset's images), each value's table row and slice, k S + s (int32): 12 random bits pick
    the slice of u in [0, 1) that `shot_lookup` reads the count from; else None, and the
    severity draws torch.poisson (~50 ns a value on one core, serial: about 6x slower). Both
    with a seed for what a severity draws itself (`shot_lookup`'s few second uniforms)."""
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=x.device))
    off = []

    def fill(at, x, g):
        chunk = CHUNK if x.device.type == "cpu" else len(x)
        for lo in range(0, len(x), chunk):
            if ops.CPU_LOOPS and x.device.type == "cpu" and x.dtype == torch.float32:
                r = torch.empty((min(chunk, len(x) - lo) + 1) // 2, dtype=torch.int32).random_(generator=g)
                if off or not fill_slices(x[lo:lo + chunk].numpy(), r.numpy(), at[lo:lo + chunk].numpy()):
                    off.append(True)
                    return
                continue
            t = x[lo:lo + chunk].mul(255)
            level = t.round()
            below, above = t.sub_(level).aminmax()
            if off or max(-float(below), float(above)) > 1e-3:
                off.append(True)
                return
            r = torch.empty((len(t) + 1) // 2, dtype=torch.int32, device=x.device).random_(generator=g)
            # s from r's low 12 bits for the first half and the next 12 for the rest (from a float
            # index and a concatenated s: ~10% slower in all)
            part, half = at[lo:lo + chunk], len(r)
            part.copy_(level).bitwise_left_shift_(SLICE_BITS)
            part[:half].bitwise_or_(r & ((1 << SLICE_BITS) - 1))
            part[half:].bitwise_or_((r[:len(t) - half] >> SLICE_BITS).bitwise_and_((1 << SLICE_BITS) - 1))

    at = ops.in_streams(x, generator, fill, dtype=torch.int32)
    return (None if off else at), seed


def shot_lookup(out: torch.Tensor, at: torch.Tensor, c: float, generator) -> None:
    """out = min(Poisson(k c / 255) / c, 1) for flat `at` = k S + s from `shot_draw`, exactly,
    by inverse CDF: a guide table gives the value where it is constant on u's slice. Where it is
    not, u's place within the slice is drawn afresh (independent of the slice, so u is still
    uniform) and compared with the slice's one step of the CDF, or the row searched."""
    guide, one_step, shifted = shot_tables(float(c), str(at.device))
    slices, width = 1 << SLICE_BITS, len(shifted) // 256
    torch.index_select(guide, 0, at, out=out)
    miss = ops.negative_at(out)
    if not len(miss):
        return
    u = torch.rand(len(miss), dtype=torch.float64, generator=generator, device=at.device)
    if ops.CPU_LOOPS and out.device.type == "cpu" and out.dtype == torch.float32:
        settle(out.numpy(), miss.numpy(), u.numpy(), one_step.numpy(), shifted.numpy(), np.float32(c))
        return
    at = out[miss].neg_().sub_(1).long()  # k S + s
    row = at >> SLICE_BITS
    u.add_(at & (slices - 1)).div_(slices).add_(row)  # uniform on the slice, on row's shifted CDF
    j = one_step[at]
    far = (j < 0).nonzero().flatten()
    j.clamp_(min=0)
    j.add_(shifted[row * width + j].le(u))  # before the step or past it
    if len(far):
        j[far] = torch.searchsorted(shifted, u[far], right=True) - row[far] * width
    out[miss] = (j.float() / c).clamp_(max=1).to(out.dtype)


@register_corruption("noise", [500, 250, 100, 75, 50], chunk=None, draw=shot_draw)
def shot_noise(x, severity, drawn):
    """Poisson(x c) / c, from `shot_draw`'s slices (or torch.poisson off the 8-bit grid)."""
    c, (at, seed) = param("shot_noise", severity), drawn
    g = torch.Generator(device=x.device).manual_seed(seed + severity)  # this severity's own draws
    if at is None:
        return torch.poisson(x * c, generator=g).div_(c).clamp_(max=1)
    return ops.in_streams(at, g, lambda out, at, g: shot_lookup(out, at, c, g), dtype=x.dtype)


def bernoulli_positions(n: int, p: float, generator, device=None) -> torch.Tensor:
    """The indices where n independent Bernoulli(p) trials succeed, drawn as geometric gaps
    between successes: about p n draws instead of n uniforms (7% of them at p = 0.07)."""
    draws, gaps = int(n * p + 6 * (n * p) ** 0.5) + 16, []  # enough but about once in 1e9
    end = 0
    if n == 0:
        return torch.empty(0, dtype=torch.int64, device=device)
    while end < n:
        gaps.append(torch.empty(draws, dtype=torch.int64, device=device).geometric_(p, generator=generator))
        end += int(gaps[-1].sum())
    pos = torch.cat(gaps).cumsum_(0).sub_(1)
    return pos[: int(torch.searchsorted(pos, n))]


@register_corruption("noise", [0.01, 0.02, 0.03, 0.05, 0.07], chunk=None)
def impulse_noise(x, severity, generator=None):
    """skimage's random_noise(mode='s&p'): each value flipped with probability `amount`, to 1 or
    0 by a fair coin. The flipped values are drawn as geometric gaps, then one coin each."""
    amount = param("impulse_noise", severity)

    def flip(out, x, g):
        pos = bernoulli_positions(x.numel(), amount, g, x.device)
        salt = torch.randint(0, 2, pos.shape, generator=g, device=x.device, dtype=x.dtype)
        out.copy_(x).index_put_((pos,), salt)

    return ops.in_streams(x, generator, flip)


@register_corruption("noise", [0.06, 0.1, 0.12, 0.16, 0.2], extra=True, chunk=None, draw=standard_normals)
def speckle_noise(x, severity, z):
    return torch.addcmul(x, x, z, value=param("speckle_noise", severity)).clamp_(0, 1)
