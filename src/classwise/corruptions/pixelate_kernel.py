"""Pixelate's two passes (Pillow's BOX resize down and back up, on 8-bit levels), compiled with
numba. Along one axis the composed down-and-up map takes one source pixel or the mean of two
neighbours, rounded half up (Pillow's 22-bit fixed point holds the weights 1/2 exactly): output
o is (v[a[o]] + v[b[o]] + 1) >> 1. The horizontal pass, then the vertical, each rounded, as Pillow
does them. L image planes are interleaved value by value (as in opencv.py), so the horizontal
pass's picks are whole SIMD vectors; the 8-bit levels are made once for all five severities."""

from __future__ import annotations

import numpy as np
import torch
from numba import njit

from . import ops

L = 16  # image planes side by side


@njit(nogil=True, cache=True)
def _levels(x, g0, g1, out):
    """Planes g0 L .. g1 L of (P, H, W) float32 x in [0, 1] as 8-bit levels (rounded half to
    even, as torch.round), interleaved: out[g, i, j L + q] is plane g L + q's pixel (i, j)."""
    p, h, w = x.shape
    for g in range(g0, g1):
        for q in range(min(L, p - g * L)):
            for i in range(h):
                src, dst = x[g * L + q, i], out[g, i]
                for j in range(w):
                    dst[j * L + q] = min(max(np.round(src[j] * np.float32(255)), np.float32(0)), np.float32(255))


@njit(nogil=True, cache=True)
def _pixelate(levels, cols, rows, g0, g1, out):
    """The two passes of groups g0..g1: cols (2, W) and rows (2, H) hold each output's two
    sources (equal for a copy); out (P, H, W) float32 in [0, 1]."""
    p, h, w = out.shape
    t = np.empty((h, w * L), np.int32)
    v = np.empty(w * L, np.int32)
    for g in range(g0, g1):
        lv = levels[g]
        for i in range(h):
            src, dst = lv[i], t[i]
            for o in range(w):
                # slices, so that the picks index from zero: numba then drops its negative-index
                # handling, which kept this loop from vectorising
                a, b = src[cols[0, o] * L:cols[0, o] * L + L], src[cols[1, o] * L:cols[1, o] * L + L]
                for q in range(L):
                    dst[o * L + q] = (a[q] + b[q] + 1) >> 1
        for i in range(h):
            r0, r1 = t[rows[0, i]], t[rows[1, i]]
            for c in range(w * L):
                v[c] = (r0[c] + r1[c] + 1) >> 1
            for q in range(min(L, p - g * L)):
                dst = out[g * L + q, i]
                for j in range(w):
                    dst[j] = np.float32(v[j * L + q]) / np.float32(255)


def levels(x: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) images in [0, 1] -> their planes' 8-bit levels, interleaved in groups of L."""
    n, c, h, w = x.shape
    planes = x.to("cpu", torch.float32).contiguous().numpy().reshape(n * c, h, w)
    groups = -(-len(planes) // L)
    out = np.empty((groups, h, w * L), np.int32)
    ops.two_halves(lambda g0, g1: _levels(planes, g0, g1, out), groups)
    return out


def pixelate(lv: np.ndarray, shape: tuple[int, int, int, int], cols: np.ndarray, rows: np.ndarray) -> torch.Tensor:
    """`levels`' images with each axis mapped by its composed down-and-up sources; (N, C, H, W)."""
    n, c, h, w = shape
    out = np.empty((n * c, h, w), np.float32)
    ops.two_halves(lambda g0, g1: _pixelate(lv, cols, rows, g0, g1, out), len(lv))
    return torch.from_numpy(out).view(shape)
