"""2-D correlation of image planes with a small kernel, compiled with numba: the sum of the
kernel's nonzero taps times shifted copies of the border-extended plane, each a SIMD loop."""

from __future__ import annotations

import numpy as np
import torch
from numba import njit

from . import ops


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
