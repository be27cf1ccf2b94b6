"""Digital: brightness and saturate (in HSV, as scikit-image converts), contrast, elastic
(a random affine, then a smooth random displacement field), pixelate (Pillow's BOX down and
up) and JPEG."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from . import ops
from .kernels import filters, libjpeg, pillow_box
from .registry import param, register_corruption


@register_corruption("digital", [0.05, 0.1, 0.15, 0.2, 0.3])
@ops.colour_op
def brightness(x, severity, generator=None):
    """V += c in HSV with H and S kept: every channel scales by V'/V (a black pixel turns grey)."""
    v = x.amax(1, keepdim=True)
    v2 = (v + param("brightness", severity)).clamp(0, 1)
    return torch.where(v > 0, x * v2 / v.clamp(min=1e-12), v2).clamp_(0, 1)


@register_corruption("digital", [(0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)], extra=True)
@ops.colour_op
def saturate(x, severity, generator=None):
    """S' = clip(S a + b) in HSV: each channel's distance below V scales by S'/S. A grey pixel
    has hue 0 in scikit-image, so a positive b tints it red, as in the published files."""
    a, b = param("saturate", severity)
    v = x.amax(1, keepdim=True)
    delta = v - x.amin(1, keepdim=True)
    s = torch.where(delta > 0, delta / v.clamp(min=1e-12), 0.0)
    s2 = (s * a + b).clamp(0, 1)
    coloured = v - (v - x) * s2 * v / delta.clamp(min=1e-12)
    grey = torch.cat([v, v * (1 - s2), v * (1 - s2)], 1)
    return torch.where(delta > 0, coloured, grey).clamp_(0, 1)


@register_corruption("digital", [0.75, 0.5, 0.4, 0.3, 0.15])
def contrast(x, severity, generator=None):
    c = param("contrast", severity)
    mean = x.mean((2, 3), keepdim=True)
    return (x - mean).mul_(c).add_(mean).clamp_(0, 1)


def elastic_draws(x: torch.Tensor, generator) -> tuple[torch.Tensor, torch.Tensor]:
    """What every severity of elastic_transform is made of: the anchors' jitter in [0, 1) (n, 3,
    2) and the displacement's uniform noise in [-1, 1) (n, 2, h, w), scaled and smoothed per
    severity."""
    n, _, h, w = x.shape
    u = torch.rand((n, 3, 2), generator=generator, device=x.device, dtype=torch.float32).double()
    noise = ops.in_streams(torch.empty((n, 2, h, w), device=x.device, dtype=x.dtype), generator,
                           lambda out, _, g: out.uniform_(-1, 1, generator=g))
    return u, noise


# in units of the image side (IMSIZE in the reference, 32 for CIFAR): alpha, sigma, affine jitter
@register_corruption("digital", [(0, 0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05),
                                 (0.1, 0.03, 0.03)], chunk=None, draw=elastic_draws)
def elastic_transform(x, severity, drawn):
    """cv2.warpAffine (bilinear, reflect-101 border) with three anchor points jittered by up
    to `affine` pixels, then a displacement field of uniform noise smoothed by a Gaussian
    (sigma, reflect border, truncate 3) times alpha, read with scipy's map_coordinates
    (order 1, reflect border). Pixel-valued parameters scale with the image side."""
    n, c, h, w = x.shape
    size = min(h, w)
    alpha, sigma, jitter = (v * size for v in param("elastic_transform", severity))
    dev, f64 = x.device, torch.float64
    centre = torch.tensor([h // 2, w // 2], dtype=f64, device=dev)  # (x, y) as the reference builds it
    sq = size // 3
    pts1 = torch.stack([centre + sq, torch.stack([centre[0] + sq, centre[1] - sq]), centre - sq])
    u, noise = drawn
    pts2 = pts1 + (u * 2 - 1) * jitter
    a = torch.cat([pts1, torch.ones(3, 1, dtype=f64, device=dev)], 1)
    m = torch.linalg.solve(a, pts2).transpose(1, 2)  # (n, 2, 3): dst = M [src; 1] in pixels
    # The inverse map dst -> src in grid_sample's normalised coordinates (p = S (p_n + 1),
    # S = diag(w-1, h-1) / 2 for align_corners=True), so affine_grid builds the grid in one
    # pass instead of transforming pixel coordinates image by image.
    inv = torch.linalg.inv(m[:, :, :2])
    s = torch.tensor([(w - 1) / 2, (h - 1) / 2], dtype=f64, device=dev)
    lin = inv * s / s[:, None]  # S^-1 A S
    shift = (lin.sum(2) - (inv @ m[:, :, 2:]).squeeze(2) / s - 1)[..., None]
    theta = torch.cat([lin, shift], 2).to(x.dtype)[..., None, None]  # (n, 2, 3, 1, 1)
    cols = torch.linspace(-1, 1, w, dtype=x.dtype, device=dev).view(1, 1, w)
    rows = torch.linspace(-1, 1, h, dtype=x.dtype, device=dev).view(1, h, 1)
    # F.affine_grid(theta, align_corners=True) as broadcast products: its CPU batched product
    # measured 8 us an image on 32 px, these 1 us
    grid = torch.stack([torch.addcmul(theta[:, i, 2] + theta[:, i, 0] * cols, theta[:, i, 1], rows)
                        for i in range(2)], 3)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=True)  # reflect-101
    if alpha == 0:  # severity 1: no displacement
        return x.clamp_(0, 1)
    field = filters.gaussian_blur(noise, sigma, mode="symmetric", truncate=3)
    field = field.clone() if field is noise else field  # the noise is every severity's
    # pixel displacements in align_corners=False units: 2/w per column, 2/h per row
    scale = torch.tensor([2 * alpha / w, 2 * alpha / h], dtype=x.dtype, device=dev).view(1, 2, 1, 1)
    identity = torch.tensor([[1.0, 0, 0], [0, 1, 0]], dtype=x.dtype, device=dev).expand(1, 2, 3)
    base = F.affine_grid(identity, [1, c, h, w], align_corners=False).permute(0, 3, 1, 2)
    # in place on the fresh field, then read as a grid through a permuted view: the same values
    # as (base + field * scale) in grid layout, ~1.5 us an image faster on 32 px than the
    # strided product and sum into a new grid
    grid = field.mul_(scale).add_(base).permute(0, 2, 3, 1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False).clamp_(0, 1)


@lru_cache(maxsize=64)
def box_resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Pillow's resample coefficients for the BOX filter on one axis (its support scales with
    the reduction; a tap weighs 1 when its centre falls inside, then rows are normalised)."""
    scale = n_in / n_out
    filterscale = max(scale, 1.0)
    support = 0.5 * filterscale
    m = np.zeros((n_out, n_in))
    for o in range(n_out):
        centre = (o + 0.5) * scale
        lo = max(int(centre - support + 0.5), 0)
        hi = min(int(centre + support + 0.5), n_in)
        for i in range(lo, hi):
            t = (i - centre + 0.5) / filterscale
            m[o, i] = 1.0 if -0.5 < t <= 0.5 else 0.0
        if m[o].sum():
            m[o] /= m[o].sum()
    return m


@lru_cache(maxsize=64)
def _pixelate_picks(n: int, small: int) -> np.ndarray:
    """(n,) uint32: what BOX down to `small` and back up gives each position along one axis, as
    Pillow computes it: p < n the copy of pixel p, n + p the rounded mean of p and p + 1. The
    enlargement copies one reduced pixel to each position (its support is half a source pixel),
    and a reduction by under 2 averages one pixel or two neighbours, weights 1/2."""
    composed = box_resize_matrix(n, small)[box_resize_matrix(small, n).argmax(1)]
    picks = np.empty(n, np.uint32)
    for o, row in enumerate(composed):
        taps = np.flatnonzero(row)
        one = len(taps) == 1 and row[taps[0]] == 1
        assert one or (len(taps) == 2 and taps[1] == taps[0] + 1 and (row[taps] == 0.5).all())
        picks[o] = taps[0] + (0 if one else n)
    return picks


def pixelate_levels(x: torch.Tensor, generator=None) -> np.ndarray:
    """What every severity shares: the images' 8-bit levels."""
    return pillow_box.levels(x)


@register_corruption("digital", [0.95, 0.9, 0.85, 0.75, 0.65], chunk=None, draw=pixelate_levels)
def pixelate(x, severity, levels):
    """Pillow's BOX resize down by c and back up, on 8-bit levels, to the bit (`kernels.pillow_box`)."""
    h, w = x.shape[-2:]
    c = param("pixelate", severity)
    out = pillow_box.pixelate(levels, x.shape, _pixelate_picks(w, int(w * c)), _pixelate_picks(h, int(h * c)))
    return out.to(x.device, x.dtype)


def jpeg_coefficients(x: torch.Tensor, generator=None) -> libjpeg.Coefficients | None:
    """What every quality shares: the images' DCT coefficients (None where Pillow goes image by image)."""
    return libjpeg.encode(x)


@register_corruption("digital", [80, 65, 58, 50, 40], chunk=None, draw=jpeg_coefficients)
def jpeg_compression(x, severity, coefficients):
    """Pillow's `save(..., 'JPEG', quality=q)` and reload (libjpeg, 4:2:0 chroma for colour), to
    the bit: `libjpeg` decodes the coefficients it made once for all qualities; the shapes it does
    not model go through Pillow image by image."""
    q = param("jpeg_compression", severity)
    out = libjpeg.one_by_one(x, q) if coefficients is None else libjpeg.decode(coefficients, q)
    return out.to(x.device, x.dtype)
