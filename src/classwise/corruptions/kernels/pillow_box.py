"""Pixelate's two passes (Pillow's BOX resize down and back up, on 8-bit levels), compiled with
numba. Along one axis the composed down-and-up map takes one source pixel or the mean of two
neighbours, rounded half up (Pillow's 22-bit fixed point holds the weights 1/2 exactly): output
o is v[a] or (v[a] + v[a + 1] + 1) >> 1. The horizontal pass, then the vertical, each rounded, as
Pillow does them; the 8-bit levels are made once for all five severities. The picks are unsigned,
so that numba leaves out its negative-index handling (1.5x faster than signed: they become vector
gathers); interleaving planes as opencv.py does was slower here, its un-interleaving of the
output costing as much as both passes."""

from __future__ import annotations

import numpy as np
import torch
from numba import njit

from .. import ops


@njit(nogil=True, cache=True)
def _levels(x, lo, hi, out):
    """Planes lo..hi of (P, H, W) float32 x in [0, 1] as 8-bit levels, rounded half to even
    (as torch.round)."""
    for k in range(lo, hi):
        for i in range(x.shape[1]):
            src, dst = x[k, i], out[k, i]
            for j in range(x.shape[2]):
                dst[j] = min(max(np.round(src[j] * np.float32(255)), np.float32(0)), np.float32(255))


@njit(nogil=True, cache=True)
def _pixelate(levels, cols, rows, lo, hi, out):
    """Planes lo..hi into out (P, H, W) float32 in [0, 1]. cols (W,) and rows (H,) pick each
    output's source along their axis: p < n copies pixel p, n + p is the mean of p and p + 1. A
    row's copies and neighbour means are laid side by side so that each output is one pick (one
    vector gather for 16 outputs, not two)."""
    h, w = out.shape[1:]
    t = np.empty((h, w), np.int32)
    both = np.empty(2 * w, np.int32)
    for k in range(lo, hi):
        lv = levels[k]
        for i in range(h):
            src, dst = lv[i], t[i]
            for j in range(w):
                both[j] = src[j]
            for j in range(w - 1):
                both[w + j] = (src[j] + src[j + 1] + 1) >> 1
            for o in range(w):
                dst[o] = both[cols[o]]
        for i in range(h):
            a = rows[i] % h
            r0, r1, dst = t[a], t[a + (rows[i] >= h)], out[k, i]
            for j in range(w):
                dst[j] = np.float32((r0[j] + r1[j] + 1) >> 1) / np.float32(255)


def levels(x: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) images in [0, 1] -> their planes' 8-bit levels, (N C, H, W) int32."""
    n, c, h, w = x.shape
    planes = ops.cpu_array(x).reshape(n * c, h, w)
    out = np.empty(planes.shape, np.int32)
    ops.two_halves(lambda lo, hi: _levels(planes, lo, hi, out), len(planes))
    return out


def pixelate(lv: np.ndarray, shape: tuple[int, int, int, int], cols: np.ndarray, rows: np.ndarray) -> torch.Tensor:
    """`levels`' images with each axis mapped by its picks (`_pixelate`); (N, C, H, W) float32 in [0, 1]."""
    out = np.empty(lv.shape, np.float32)
    ops.two_halves(lambda lo, hi: _pixelate(lv, cols, rows, lo, hi, out), len(lv))
    return torch.from_numpy(out).view(shape)
