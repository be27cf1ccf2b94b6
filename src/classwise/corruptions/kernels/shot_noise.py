"""Shot noise's two compiled CPU loops (its tensor forms in noise.py run on CUDA and MPS, and
on the CPU with `ops.CPU_LOOPS = False`; tests/test_corruption_forms.py checks they agree)."""

from __future__ import annotations

import numpy as np
from numba import njit

SLICE_BITS = 12  # bits of u that pick its slice of the guide table (two slices per 31-bit draw)


@njit(nogil=True, cache=True)
def fill_slices(x, r, at):
    """noise.shot_draw's fill of one chunk on the CPU in one pass (its tensor form took seven): at =
    the 8-bit level << SLICE_BITS | 12 bits of r (the low ones for the first half of the chunk,
    the next for the rest). False where a value is off the grid or outside [0, 1]."""
    half, mask = len(r), (1 << SLICE_BITS) - 1
    for i in range(len(x)):
        t = x[i] * np.float32(255)
        level = np.round(t)
        if not (abs(t - level) <= 1e-3 and 0 <= level <= 255):
            return False
        bits = r[i] & mask if i < half else (r[i - half] >> SLICE_BITS) & mask
        at[i] = (np.int32(level) << SLICE_BITS) | bits
    return True


@njit(nogil=True, cache=True)
def settle(out, miss, u, one_step, shifted, c):
    """noise.shot_lookup's unsettled values on the CPU, the same arithmetic as its tensor form one
    value at a time (those ten tensor ops cost ~90 ns a value: 13 of a severity's 28 ms at c =
    500 on 2,000 CIFAR images)."""
    slices, width = 1 << SLICE_BITS, len(shifted) // 256
    for m in range(len(miss)):
        at = np.int64(-out[miss[m]]) - 1  # k S + s
        row = at >> SLICE_BITS
        v = (u[m] + np.float64(at & (slices - 1))) / slices + np.float64(row)
        j = one_step[at]
        if j < 0:
            j = np.searchsorted(shifted, v, side="right") - row * width
        elif shifted[row * width + j] <= v:
            j += 1
        out[miss[m]] = min(np.float32(j) / c, np.float32(1))
