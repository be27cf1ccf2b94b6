"""Filters of image planes compiled with numba: a 2-D correlation with a small kernel, the
motion blur (each image's own taps along its angle), short Gaussian blurs and glass blur's steps.
Each filter is the sum of its taps times shifted copies of the border-extended plane, each a SIMD
loop. The halves of a batch run in two threads (`ops.two_halves`)."""

from __future__ import annotations

import numpy as np
import torch
from numba import njit

from .. import ops


@njit(nogil=True, cache=True)
def _correlate(planes, kernel, rows, cols, lo, hi, out):
    """Planes lo..hi of (P, H, W) float32: rows (H + kh - 1) and cols (W + kw - 1) are the
    border-extended plane's source indices (unsigned). The plane is summed flat, on the
    extended width, so that each tap is one long loop (per row, the loops' setup outweighed
    their two vectors of work); the extra columns are dropped."""
    h, w = out.shape[1:]
    kh, kw = kernel.shape
    wide = w + kw - 1
    p = np.empty((h + kh - 1) * wide, np.float32)
    acc = np.empty(h * wide, np.float32)
    for k in range(lo, hi):
        plane = planes[k]
        r = kw // 2
        for i in range(h + kh - 1):
            src, dst = plane[rows[i]], p[i * wide:(i + 1) * wide]
            dst[r:r + w] = src
            for j in range(r):
                dst[j], dst[r + w + j] = src[cols[j]], src[cols[r + w + j]]
        acc[:] = 0
        for a in range(kh):
            for b in range(kw):
                weight = kernel[a, b]
                if weight != 0:
                    shifted = p[a * wide + b:a * wide + b + h * wide]
                    for f in range(h * wide):
                        acc[f] += weight * shifted[f]
        for i in range(h):
            dst, src = out[k, i], acc[i * wide:i * wide + w]
            for j in range(w):
                dst[j] = src[j]


def correlate(x: torch.Tensor, kernel: np.ndarray, mode: str) -> torch.Tensor:
    """Every channel of (N, C, H, W) x correlated with `kernel` (odd sides, anchor at its centre),
    as cv2.filter2D and scipy.ndimage.correlate compute it, the border extended by `mode`
    (`ops.border_index`); float32 on x's device."""
    n, c, h, w = x.shape
    kh, kw = kernel.shape
    planes = ops.cpu_array(x).reshape(n * c, h, w)
    rows = ops.border_index(h, -(kh // 2), h + kh // 2, mode).numpy().astype(np.uint32)
    cols = ops.border_index(w, -(kw // 2), w + kw // 2, mode).numpy().astype(np.uint32)
    k = np.ascontiguousarray(kernel, dtype=np.float32)
    out = np.empty(planes.shape, np.float32)
    ops.two_halves(lambda lo, hi: _correlate(planes, k, rows, cols, lo, hi, out), len(planes))
    return torch.from_numpy(out).view(n, c, h, w).to(x.device)


def _bounds(clip: bool) -> tuple[np.float32, np.float32]:
    """What the compiled loops clip their output to: [0, 1], or nothing."""
    return (np.float32(0), np.float32(1)) if clip else (np.float32(-np.inf), np.float32(np.inf))


@njit(nogil=True, cache=True)
def _motion(planes, per_image, weights, drow, dcol, rows, cols, top, left, low, high, lo, hi, out):
    """Planes lo..hi of (P, H, W) float32, plane p of image p // per_image: the sum over taps t
    of weights[t] times the plane shifted by (drow, dcol)[image, t], clipped to [low, high]. As
    in `_correlate`, each tap is one flat loop over the plane extended by `rows` and `cols`
    (edge-repeating source indices, `top` rows and `left` columns before the image), on the
    extended width; the extra columns are dropped."""
    h, w = out.shape[1:]
    wide, tall = len(cols), len(rows)
    p = np.empty(tall * wide, np.float32)
    acc = np.empty(h * wide, np.float32)
    for k in range(lo, hi):
        plane, image = planes[k], k // per_image
        for i in range(tall):
            for j in range(wide):
                p[i * wide + j] = plane[rows[i], cols[j]]
        acc[:] = 0
        for t in range(len(weights)):
            start = (top + drow[image, t]) * wide + left + dcol[image, t]
            weight, shifted = weights[t], p[start:start + h * wide]
            for f in range(h * wide):
                acc[f] += weight * shifted[f]
        dst = out[k]
        for i in range(h):
            for j in range(w):
                dst[i, j] = min(max(acc[i * wide + j], low), high)


def directional_blur(x: torch.Tensor, radius: float, sigma: float, angle: torch.Tensor, *,
                clip: bool = False) -> torch.Tensor:
    """ImageMagick's motion blur of each image along its own angle (`ops.motion_taps`), pixels
    past the border repeating the edge; clipped to [0, 1] with `clip`. On the CPU in float32 the
    compiled loop (`_motion`: 2,000 CIFAR images, 13-29 taps, 12-28 ms against 43-153 for the
    tensor form), else `ops.directional_blur_tensor`."""
    if not ops.CPU_LOOPS or x.device.type != "cpu" or x.dtype != torch.float32:
        out = ops.directional_blur_tensor(x, radius, sigma, angle)
        return out.clamp_(0, 1) if clip else out
    n, c, h, w = x.shape
    k, drow, dcol = ops.motion_taps(radius, sigma, angle)
    drow, dcol = drow.numpy(), dcol.numpy()
    top, left = max(0, -int(drow.min())), max(0, -int(dcol.min()))
    # one row more than the shifts need: the last row's dropped columns run into it
    rows = ops.border_index(h, -top, h + max(0, int(drow.max())) + 1, "nearest").numpy().astype(np.uint32)
    cols = ops.border_index(w, -left, w + max(0, int(dcol.max())), "nearest").numpy().astype(np.uint32)
    planes = ops.cpu_array(x).reshape(n * c, h, w)
    bounds = _bounds(clip)
    out = np.empty(planes.shape, np.float32)
    weights = np.asarray(k, np.float32)

    def run(lo, hi):
        _motion(planes, c, weights, drow, dcol, rows, cols, top, left, *bounds, lo, hi, out)

    ops.two_halves(run, len(planes))
    return torch.from_numpy(out).view(n, c, h, w)


@njit(nogil=True, cache=True)
def _scratch(h, w, taps):
    """`_blur_plane`'s work arrays for (h, w) planes and a kernel of `taps` (one set a thread)."""
    wide = w + taps - 1
    p = np.zeros(h * wide + taps, np.float32)  # the last row's taps read past it: taps spare values
    return p, np.empty(h * wide, np.float32), np.empty((h + taps - 1) * w, np.float32), np.empty(h * w, np.float32)


@njit(nogil=True, cache=True)
def _blur_plane(plane, k_rows, k_cols, rows, cols, p, acc, tall, flat):
    """(H, W) float32 plane correlated along W with k_cols, then along H with k_rows, into flat
    (H W); rows (H + kh - 1) and cols (W + kw - 1) as in `_correlate`. Along W the taps run flat
    over the plane extended to W + kw - 1 columns, along H over the first pass's rows that
    `rows` picks, laid one after the other. A tap reads through a slice, so that its loop's
    index is the counter alone (with `f + b` numba kept its negative-index handling and the
    loops did not vectorise: 2.5-4x slower)."""
    h, w = plane.shape
    kh, kw = len(k_rows), len(k_cols)
    wide = w + kw - 1
    for i in range(h):
        for j in range(wide):
            p[i * wide + j] = plane[i, cols[j]]
    weight = k_cols[0]
    for f in range(h * wide):
        acc[f] = weight * p[f]
    for b in range(1, kw):
        weight, shifted = k_cols[b], p[b:b + h * wide]
        for f in range(h * wide):
            acc[f] += weight * shifted[f]
    for i in range(h + kh - 1):
        start = rows[i] * wide
        for j in range(w):
            tall[i * w + j] = acc[start + j]
    weight = k_rows[0]
    for f in range(h * w):
        flat[f] = weight * tall[f]
    for a in range(1, kh):
        weight, shifted = k_rows[a], tall[a * w:a * w + h * w]
        for f in range(h * w):
            flat[f] += weight * shifted[f]


@njit(nogil=True, cache=True)
def _separable(planes, k_rows, k_cols, rows, cols, low, high, lo, hi, out):
    """Planes lo..hi of (P, H, W) float32 blurred (`_blur_plane`), clipped to [low, high]."""
    h, w = out.shape[1:]
    p, acc, tall, flat = _scratch(h, w, max(len(k_rows), len(k_cols)))
    for k in range(lo, hi):
        _blur_plane(planes[k], k_rows, k_cols, rows, cols, p, acc, tall, flat)
        dst = out[k]
        for i in range(h):
            for j in range(w):
                dst[i, j] = min(max(flat[i * w + j], low), high)


@njit(nogil=True, cache=True)
def _glass(planes, per_image, taps, rows, cols, moves, lo, hi, out):
    """Glass blur's steps on planes lo..hi (plane p of image p // per_image), one plane at a
    time in cache: blur, store as 8 bits (`ops.quantize`), move pixel f to where moves[image, f]
    says it comes from, blur, clip to [0, 1]."""
    h, w = out.shape[1:]
    p, acc, tall, flat = _scratch(h, w, len(taps))
    moved = np.empty((h, w), np.float32)
    levels = np.empty(h * w, np.float32)
    for k in range(lo, hi):
        _blur_plane(planes[k], taps, taps, rows, cols, p, acc, tall, flat)
        for f in range(h * w):
            v = min(max(flat[f], np.float32(0)), np.float32(1)) * np.float32(255)
            levels[f] = np.floor(v + np.float32(1e-4)) / np.float32(255)
        src = moves[k // per_image]
        for i in range(h):
            for j in range(w):
                moved[i, j] = levels[src[i * w + j]]
        _blur_plane(moved, taps, taps, rows, cols, p, acc, tall, flat)
        dst = out[k]
        for i in range(h):
            for j in range(w):
                dst[i, j] = min(max(flat[i * w + j], np.float32(0)), np.float32(1))


@njit(nogil=True, cache=True)
def _moves(words, h, w, prev, lo, hi, out):
    """Images lo..hi of `glass_moves_compiled`."""
    rows, cols = h - 2, w - 2
    for i in range(lo, hi):
        src = out[i]
        for f in range(h * w):
            src[f] = f
        base = i * rows * cols * 2
        for a in range(rows):
            for b in range(cols):
                draw = base + 2 * (rows * cols - 1 - (a * cols + b))  # the walk goes from the bottom-right
                dx = (words[draw // 31] >> (draw % 31)) & 1
                dy = (words[(draw + 1) // 31] >> ((draw + 1) % 31)) & 1
                src[(a + 2) * w + b + 2] -= dy * w + dx
        if prev.shape[0]:
            before = prev[i]
            for f in range(h * w):
                src[f] = before[src[f]]


def glass_moves_compiled(words: torch.Tensor, n: int, h: int, w: int, prev: torch.Tensor | None) -> torch.Tensor:
    """One pass of glass blur's walk for n (h, w) images from `ops.random_words`' words: for each
    pixel (raster order, (n, h w) int64) the one its value comes from, each pixel of rows and
    columns 2.. reading the one 0 or 1 up and 0 or 1 left (draws 2 t and 2 t + 1 of its image,
    t counted from the bottom-right); after the pass `prev` where given (pass k reads pass k - 1)."""
    out = np.empty((n, h * w), np.int64)
    before = prev.numpy() if prev is not None else np.empty((0, h * w), np.int64)
    bits = words.numpy()
    ops.two_halves(lambda lo, hi: _moves(bits, h, w, before, lo, hi, out), n)
    return torch.from_numpy(out)


def glass(x: torch.Tensor, sigma: float, moves: torch.Tensor) -> torch.Tensor:
    """Glass blur of (N, C, H, W) float32 CPU images with `GlassWalks`' moves (N, H W): each
    plane's blur, 8-bit store, shuffle and blur in one compiled pass (`_glass`) where the tensor
    form made four passes over the batch."""
    n, c, h, w = x.shape
    k = ops.gaussian_kernel1d(sigma) if sigma > 1e-15 else np.ones(1)
    rows, cols = (ops.border_index(m, -(len(k) // 2), m + len(k) // 2, "nearest").numpy().astype(np.uint32)
                  for m in (h, w))
    planes = ops.cpu_array(x).reshape(n * c, h, w)
    src = moves.numpy()
    out = np.empty(planes.shape, np.float32)
    taps = np.asarray(k, np.float32)
    ops.two_halves(lambda lo, hi: _glass(planes, c, taps, rows, cols, src, lo, hi, out), len(planes))
    return torch.from_numpy(out).view(n, c, h, w)


# Where the compiled loop beats ops.separable's two dense (n, n) products (medians on 4,000
# 32-px planes: 7 taps 5.3-6.5 ms against 9.8-10.6, 9 taps 7.9-9.7 against 8.2-11.1, 11 taps 9.5
# against 8.0): up to 9 taps, on whole batches (on chunks of 256 planes the products took 1.3-1.5
# us a plane, the loop 2.0-3.3 with its second thread's start).
MAX_TAPS, MIN_PLANES = 9, 2048


def gaussian_blur(x: torch.Tensor, sigma: float, mode: str = "nearest", truncate: float = 4.0, *,
                  clip: bool = False) -> torch.Tensor:
    """skimage.filters.gaussian over H and W (its default border is scipy's `nearest`), clipped
    to [0, 1] with `clip` (fused into the compiled loop's last pass: the gaussian_blur corruption
    went from 48.7-54.1 to 41.6-45.4 ms per 2,000 images x 5 severities); x itself where the
    kernel is the identity and not clipped."""
    k = ops.gaussian_kernel1d(sigma, truncate) if sigma > 1e-15 else [1.0]
    if len(k) == 1:  # radius 0 (sigma under 1 / (2 truncate)): the identity
        return x.clamp(0, 1) if clip else x
    n, c, h, w = x.shape
    if not ops.CPU_LOOPS or x.device.type != "cpu" or x.dtype != torch.float32 or len(k) > MAX_TAPS \
            or n * c < MIN_PLANES:
        out = ops.separable(x, k, k, mode)
        return out.clamp_(0, 1) if clip else out
    planes = ops.cpu_array(x).reshape(n * c, h, w)
    rows = ops.border_index(h, -(len(k) // 2), h + len(k) // 2, mode).numpy().astype(np.uint32)
    cols = ops.border_index(w, -(len(k) // 2), w + len(k) // 2, mode).numpy().astype(np.uint32)
    taps = np.asarray(k, np.float32)
    bounds = _bounds(clip)
    out = np.empty(planes.shape, np.float32)
    ops.two_halves(lambda lo, hi: _separable(planes, taps, taps, rows, cols, *bounds, lo, hi, out), len(planes))
    return torch.from_numpy(out).view(n, c, h, w)
