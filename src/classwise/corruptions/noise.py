"""Noise: gaussian, shot (Poisson), impulse (salt and pepper) and speckle, per pixel and channel.
Each draws in `ops.in_streams`, two generator streams side by side on the CPU, into one fresh
tensor it then works on in place: a whole batch at once (`chunk=None`), as chunks would add
only their copy (measured 15-35% slower)."""

from __future__ import annotations

import math
from functools import lru_cache

import torch

from . import ops
from .registry import param, register_corruption


@register_corruption("noise", [0.04, 0.06, 0.08, 0.09, 0.10], chunk=None)
def gaussian_noise(x, severity, generator=None):
    c = param("gaussian_noise", severity)
    return ops.in_streams(x, generator, lambda out, x, g: out.normal_(0, c, generator=g).add_(x).clamp_(0, 1))


SLICE_BITS = 12  # bits of u that pick its slice of the guide table (two slices per 31-bit draw)
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


def shot_8bit(out: torch.Tensor, x: torch.Tensor, c: float, generator) -> None:
    """out = min(Poisson(x c) / c, 1) for flat x, exactly, by inverse CDF where x is on the 8-bit
    grid (every dataset's images): 12 random bits pick each value's slice of u, and a guide
    table gives the value where it is constant on the slice. Where it is not, u's place within
    the slice is drawn afresh (independent of the slice, so u is still uniform) and compared
    with the slice's one step of the CDF, or the row searched. About 6x faster than
    torch.poisson (~50 ns a value on one core, serial); chunks off the grid go to it."""
    guide, one_step, shifted = shot_tables(float(c), str(x.device))
    slices, width = 1 << SLICE_BITS, len(shifted) // 256
    chunk = CHUNK if x.device.type == "cpu" else len(x)
    for lo in range(0, len(x), chunk):
        xs, os = x[lo:lo + chunk], out[lo:lo + chunk]
        t = xs.mul(255)
        level = t.round()
        below, above = t.sub_(level).aminmax()
        if max(-float(below), float(above)) > 1e-3:  # off the 8-bit grid
            os.copy_(torch.poisson(xs * c, generator=generator)).div_(c).clamp_(max=1)
            continue
        r = torch.empty((len(xs) + 1) // 2, dtype=torch.int32, device=x.device).random_(generator=generator)
        # the table index k S + s built in int32, s from r's low 12 bits for the first half and the
        # next 12 for the rest (from a float index and a concatenated s: ~10% slower in all)
        at = level.to(torch.int32).bitwise_left_shift_(SLICE_BITS)
        half = len(r)
        at[:half].bitwise_or_(r & (slices - 1))
        at[half:].bitwise_or_((r[:len(xs) - half] >> SLICE_BITS).bitwise_and_(slices - 1))
        torch.index_select(guide, 0, at, out=os)
    miss = out.lt(0).nonzero().flatten()
    if len(miss):
        at = out[miss].neg_().sub_(1).long()  # k S + s
        row = at >> SLICE_BITS
        u = torch.rand(len(miss), dtype=torch.float64, generator=generator, device=x.device)
        u.add_(at & (slices - 1)).div_(slices).add_(row)  # uniform on the slice, on row's shifted CDF
        j = one_step[at]
        far = (j < 0).nonzero().flatten()
        j.clamp_(min=0)
        j.add_(shifted[row * width + j].le(u))  # before the step or past it
        if len(far):
            j[far] = torch.searchsorted(shifted, u[far], right=True) - row[far] * width
        out[miss] = (j.float() / c).clamp_(max=1).to(out.dtype)


@register_corruption("noise", [500, 250, 100, 75, 50], chunk=None)
def shot_noise(x, severity, generator=None):
    """Poisson(x c) / c, drawn in `shot_8bit`."""
    c = param("shot_noise", severity)
    return ops.in_streams(x, generator, lambda out, x, g: shot_8bit(out, x, c, g))


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


@register_corruption("noise", [0.06, 0.1, 0.12, 0.16, 0.2], extra=True, chunk=None)
def speckle_noise(x, severity, generator=None):
    c = param("speckle_noise", severity)
    return ops.in_streams(x, generator, lambda out, x, g: out.normal_(1, c, generator=g).mul_(x).clamp_(0, 1))
