"""Blurs: defocus (anti-aliased disk), glass (blur, local pixel shuffle, blur), motion
(ImageMagick's one-sided Gaussian along a random angle), zoom (the mean of centre zooms) and
gaussian."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from . import ops
from .kernels import filters
from .registry import CPU_CHUNK, param, register_corruption


@lru_cache(maxsize=64)
def disk_kernel(radius: float, alias_blur: float) -> np.ndarray:
    """The reference's anti-aliased disk: a pixel disk of `radius` on a 17x17 grid (wider
    past radius 8), normalised, then cv2.GaussianBlur (3x3, or 5x5 past radius 8, sigma
    alias_blur, reflect-101 border); cropped to where it is non-zero, which changes nothing
    but the work."""
    lim = 8 if radius <= 8 else int(np.ceil(radius))
    t = np.arange(-lim, lim + 1)
    xx, yy = np.meshgrid(t, t)
    d = (xx**2 + yy**2 <= radius**2).astype(np.float64)
    d /= d.sum()
    k = 3 if radius <= 8 else 5
    g = np.exp(-((np.arange(k) - (k - 1) / 2) ** 2) / (2 * alias_blur**2))
    g /= g.sum()
    p = k // 2
    d = np.pad(d, p, mode="reflect")  # numpy's reflect is OpenCV's reflect-101
    d = sum(g[i] * d[i:i + 2 * lim + 1, :] for i in range(k))
    d = sum(g[i] * d[:, i:i + 2 * lim + 1] for i in range(k))
    nz = np.argwhere(np.abs(d) > 0)
    r = int(np.abs(nz - lim).max())
    return d[lim - r:lim + r + 1, lim - r:lim + r + 1]


@register_corruption("blur", [(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)], chunk=None)
def defocus_blur(x, severity, generator=None):
    return filters.correlate(x, disk_kernel(*param("defocus_blur", severity)), "mirror").to(x.dtype).clamp_(0, 1)


def glass_moves_tensor(words: torch.Tensor, n: int, h: int, w: int, prev: torch.Tensor | None) -> torch.Tensor:
    """`kernels.filters.glass_moves_compiled` as tensor ops (for CUDA and MPS; on the CPU they took
    14 ms a pass on 2,000 CIFAR images, the compiled loop 2-3)."""
    rows, cols = h - 2, w - 2  # the walk: rows h-1 .. 2, each from col w-1 down (max_delta 1)
    shifts = torch.arange(31, dtype=torch.int32, device=words.device)
    d = (words[:, None] >> shifts).bitwise_and_(1).view(-1)[:n * rows * cols * 2].view(n, rows * cols, 2)
    step = d.flip(1).view(n, rows, cols, 2)  # the walk's draws in raster order: -(dx, dy), randint(-1, 1)
    src = torch.arange(h * w, device=words.device).repeat(n, 1).view(n, h, w)
    src[:, 2:, 2:] -= step[..., 1] * w + step[..., 0]
    src = src.view(n, h * w)
    return prev.gather(1, src) if prev is not None else src  # pass k reads pass k-1


class GlassWalks:
    """The local shuffles of glass blur, drawn when first needed and in order: `after(k)` is,
    for each pixel, where its value comes from after k passes of the walk (n, h w). Every
    severity has max_delta 1, so they share them: the passes are drawn once for all five (the
    index building was a third of a severity's time), and two passes are one gather."""

    def __init__(self, x: torch.Tensor, generator):
        self.shape, self.device, self.generator, self.walks = x.shape, x.device, generator, []

    def after(self, k: int) -> torch.Tensor:
        n, _, h, w = self.shape
        moves = filters.glass_moves_compiled if ops.CPU_LOOPS and self.device.type == "cpu" else glass_moves_tensor
        while len(self.walks) < k:
            words = ops.random_words(n * (h - 2) * (w - 2) * 2, self.generator, self.device)
            self.walks.append(moves(words, n, h, w, self.walks[-1] if self.walks else None))
        return self.walks[k - 1]


@register_corruption("blur", [(0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)], chunk=None,
                     draw=GlassWalks)
def glass_blur(x, severity, walks: GlassWalks):
    """Blur, store as 8 bits, shuffle locally, blur. The reference walks the pixels from the
    bottom-right and 'swaps' each with a neighbour up to max_delta up/left; its swap of two
    NumPy row views copies the neighbour into the pixel and leaves the neighbour as it was
    (that is what the published files hold). With max_delta 1 every neighbour read is one the
    walk has not reached yet, so one pass is a single gather with per-pixel offsets."""
    sigma, delta, iterations = param("glass_blur", severity)
    assert delta == 1, "the gather form needs every offset to point to a pixel not yet visited"
    n, c, h, w = x.shape
    src = walks.after(iterations)
    if ops.CPU_LOOPS and x.device.type == "cpu" and x.dtype == torch.float32:
        return filters.glass(x, sigma, src)
    out = torch.empty_like(x)
    # in chunks of CPU_CHUNK values: temporaries in cache (~5% faster; the draws are the batch's)
    step = max(1, CPU_CHUNK // (c * h * w)) if x.device.type == "cpu" else n
    for i in range(0, n, step):
        part = ops.quantize(filters.gaussian_blur(x[i:i + step], sigma))
        m = len(part)
        part = part.reshape(m, c, h * w).gather(2, src[i:i + step, None].expand(m, c, -1)).view(m, c, h, w)
        out[i:i + step] = filters.gaussian_blur(part, sigma, clip=True)
    return out


@register_corruption("blur", [(6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)], chunk=1 << 23)
def motion_blur(x, severity, generator=None):
    radius, sigma = param("motion_blur", severity)
    angle = torch.rand(len(x), generator=generator, device=x.device, dtype=torch.float64) * 90 - 45
    return filters.directional_blur(x, radius, sigma, angle, clip=True)


@lru_cache(maxsize=32)
def _zoom_operator(h: int, w: int, stop: float, device: str):
    """(I + sum over zooms of the zoomed image) / (zooms + 1) as one sparse (h w, h w) map:
    every output pixel reads a few nearby pixels, so the sparse product beats a dense one."""
    zooms = np.arange(1, stop, 0.01)
    k = np.eye(h * w)
    for z in zooms:
        k += np.kron(ops.zoom_matrix(h, z), ops.zoom_matrix(w, z))
    return ops.to_sparse(k / (len(zooms) + 1), device)


@register_corruption("blur", [1.06, 1.11, 1.16, 1.21, 1.26])  # zooms np.arange(1, stop, 0.01)
def zoom_blur(x, severity, generator=None):
    h, w = x.shape[-2:]
    return ops.apply_operator(x, _zoom_operator(h, w, param("zoom_blur", severity), str(x.device))).clamp_(0, 1)


@register_corruption("blur", [0.4, 0.6, 0.7, 0.8, 1.0], extra=True, chunk=None)
def gaussian_blur(x, severity, generator=None):
    return filters.gaussian_blur(x, param("gaussian_blur", severity), clip=True)
