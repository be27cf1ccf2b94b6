"""The OpenCV steps of spatter's water drops, computed as OpenCV computes them: Canny edges,
the 5x5 chamfer distance transform (cv2.DIST_L2, mask 5), the 3x3 box blur, histogram
equalisation and the 8-bit emboss filter. Each is a per-image loop compiled with numba: as
tensor ops over the batch they cost 60-95 us an image (the distance transform alone needed up
to 21 whole-image relaxations, Canny's hysteresis a dilation per step of growth), compiled
about 15; the two halves of a batch run side by side in two threads (the loops release the GIL).
Per image, the results equal cv2's to the bit (tests/test_corruptions.py checks it where OpenCV
is installed)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from numba import njit

_TG22 = int(0.4142135623730950488016887242097 * (1 << 15) + 0.5)  # OpenCV's fixed-point tan(22.5)
HV, DIAG, KNIGHT = np.float32(1), np.float32(1.4), np.float32(2.1969)  # cv2.DIST_L2's 5x5 mask
LANES = 16  # images side by side: one AVX-512 register of float32 (two of AVX2)


@njit(nogil=True, cache=True)
def _lanes(batch, k, dtype, border, fill):
    """Images k..k+LANES of a (N, H, W) batch as one (H + 2 border, W + 2 border, LANES) array,
    image index last, so that each step below is the same arithmetic on LANES images side by side
    (one SIMD instruction) and the raster passes' running minima and growth, serial along a row
    in one image, run LANES chains at once. Lanes past the batch's end hold `fill`."""
    n, h, w = batch.shape
    out = np.full((h + 2 * border, w + 2 * border, LANES), fill, dtype)
    for lane in range(min(LANES, n - k)):
        for i in range(h):
            for j in range(w):
                out[i + border, j + border, lane] = batch[k + lane, i, j]
    return out


@njit(nogil=True, cache=True)
def canny(levels, low, high):
    """cv2.Canny(img, low, high) of each (H, W) image of 8-bit levels with its defaults (3x3
    Sobel on a replicated border, L1 magnitude, non-maximum suppression in four directions,
    8-connected hysteresis): (N, H, W) booleans. Every test is a select, not a branch."""
    n, h, w = levels.shape
    edges = np.empty((n, h, w), np.bool_)
    mag = np.zeros((h + 2, w + 2, LANES), np.int32)  # zero outside the image
    dx, dy = np.empty((h, w, LANES), np.int32), np.empty((h, w, LANES), np.int32)
    state = np.zeros((h + 2, w + 2, LANES), np.uint8)  # 1 a candidate, 2 an edge
    for k in range(0, n, LANES):
        p = _lanes(levels, k, np.int32, 1, 0)
        for i in range(1, h + 1):  # the replicated border
            p[i, 0], p[i, w + 1] = p[i, 1], p[i, w]
        p[0], p[h + 1] = p[1], p[h]
        for i in range(h):
            for j in range(w):
                for q in range(LANES):
                    gx = (p[i, j + 2, q] - p[i, j, q]) + 2 * (p[i + 1, j + 2, q] - p[i + 1, j, q]) \
                        + (p[i + 2, j + 2, q] - p[i + 2, j, q])
                    gy = (p[i + 2, j, q] - p[i, j, q]) + 2 * (p[i + 2, j + 1, q] - p[i, j + 1, q]) \
                        + (p[i + 2, j + 2, q] - p[i, j + 2, q])
                    dx[i, j, q], dy[i, j, q] = gx, gy
                    mag[i + 1, j + 1, q] = abs(gx) + abs(gy)
        for i in range(h):
            for j in range(w):
                for q in range(LANES):
                    m, gx, gy = mag[i + 1, j + 1, q], dx[i, j, q], dy[i, j, q]
                    ax, ay = abs(gx), abs(gy) << 15
                    tg22x = ax * _TG22
                    horizontal, vertical = ay < tg22x, ay > tg22x + (ax << 16)
                    along_x = (m > mag[i + 1, j, q]) & (m >= mag[i + 1, j + 2, q])
                    along_y = (m > mag[i, j + 1, q]) & (m >= mag[i + 2, j + 1, q])
                    anti = (m > mag[i, j + 2, q]) & (m > mag[i + 2, j, q])
                    main = (m > mag[i, j, q]) & (m > mag[i + 2, j + 2, q])
                    diagonal = anti if (gx ^ gy) < 0 else main
                    peak = (along_x if horizontal else (along_y if vertical else diagonal)) & (m > low)
                    state[i + 1, j + 1, q] = np.uint8(peak) + np.uint8(peak & (m > high))
        # hysteresis: raster passes down and up, each growing the edges into candidates that touch
        # an edge already visited, until a pair of passes grows nothing (two or three on spatter)
        grown = 1
        while grown:
            grown = 0
            for step in (1, -1):
                for ii in range(h):
                    i = 1 + ii if step > 0 else h - ii
                    above, row = state[i - step], state[i]
                    for jj in range(w):
                        j = 1 + jj if step > 0 else w - jj
                        for q in range(LANES):
                            touch = (above[j - 1, q] == 2) | (above[j, q] == 2) | (above[j + 1, q] == 2) \
                                | (row[j - step, q] == 2)
                            joins = np.uint8((row[j, q] == 1) & touch)
                            row[j, q] += joins
                            grown += joins
        for lane in range(min(LANES, n - k)):
            for i in range(h):
                for j in range(w):
                    edges[k + lane, i, j] = state[i + 1, j + 1, lane] == 2
    return edges


@njit(nogil=True, cache=True)
def distance_transform(zero, cap):
    """cv2.distanceTransform(~zero, cv2.DIST_L2, 5) of each (H, W) image, truncated at `cap`
    (cv2.THRESH_TRUNC): OpenCV's two raster passes in float32, the outside of the image
    infinitely far. Each row takes the minimum over the two rows already done first, then the
    running minimum along the row itself: a min is exact, so this order changes no bit."""
    n, h, w = zero.shape
    out = np.empty((n, h, w), np.float32)
    tmp = np.empty((w + 4, LANES), np.float32)
    for k in range(0, n, LANES):
        t = _lanes(zero, k, np.float32, 2, 0)  # 1 where nonzero; lanes past the end all zero
        for i in range(2, h + 2):
            for j in range(2, w + 2):
                for q in range(LANES):
                    t[i, j, q] = 0 if t[i, j, q] else np.inf
        t[:2] = np.inf
        t[h + 2:] = np.inf
        t[:, :2] = np.inf
        t[:, w + 2:] = np.inf
        for step in (1, -1):
            for i in range(2, h + 2) if step > 0 else range(h + 1, 1, -1):
                far, near, row = t[i - 2 * step], t[i - step], t[i]
                for j in range(2, w + 2):
                    for q in range(LANES):
                        knight = min(min(far[j - 1, q], far[j + 1, q]), min(near[j - 2, q], near[j + 2, q])) + KNIGHT
                        diagonal = min(near[j - 1, q], near[j + 1, q]) + DIAG
                        tmp[j, q] = min(min(row[j, q], knight), min(diagonal, near[j, q] + HV))
                for j in range(2, w + 2) if step > 0 else range(w + 1, 1, -1):
                    for q in range(LANES):
                        row[j, q] = min(tmp[j, q], row[j - step, q] + HV)
        for lane in range(min(LANES, n - k)):
            for i in range(h):
                for j in range(w):
                    out[k + lane, i, j] = min(t[i + 2, j + 2, lane], cap)
    return out


@njit(nogil=True, cache=True)
def _reflect101(img, dtype):
    """img with a 1-pixel BORDER_REFLECT_101 border (OpenCV's default): -1 -> 1, n -> n - 2."""
    h, w = img.shape
    p = np.empty((h + 2, w + 2), dtype)
    for i in range(h + 2):
        src = img[abs(i - 1) if i <= h else 2 * h - i - 1]
        for j in range(w):
            p[i, j + 1] = src[j]
        p[i, 0], p[i, w + 1] = p[i, 2], p[i, w - 1]
    return p


@njit(nogil=True, cache=True)
def box3(img):
    """cv2.blur(img, (3, 3)) before its rounding: the sum of the nine values, then / 9. Of
    float32 values at most 20 apart by 2^-23, or of 8-bit levels, the float64 sum is exact in
    any order, so the rows are summed first."""
    h, w = img.shape
    p = _reflect101(img, np.float64)
    rows = np.empty((h + 2, w), np.float64)
    for i in range(h + 2):
        for j in range(w):
            rows[i, j] = p[i, j] + p[i, j + 1] + p[i, j + 2]
    out = np.empty((h, w), np.float64)
    for i in range(h):
        for j in range(w):
            out[i, j] = (rows[i, j] + rows[i + 1, j] + rows[i + 2, j]) / 9
    return out


@njit(nogil=True, cache=True)
def equalize_hist(img):
    """cv2.equalizeHist of 8-bit levels (any integer array): the cumulative count past the
    first level present, times 255 / (count - that level's count) in float32, rounded."""
    hist = np.zeros(256, np.int64)
    for v in img.ravel():
        hist[v] += 1
    total = img.size
    first = 0
    while hist[first] == 0:
        first += 1
    lut = np.zeros(256, np.int64)
    if hist[first] == total:
        lut[:] = first
    else:
        scale = np.float32(255) / np.float32(total - hist[first])
        s = 0
        for v in range(first + 1, 256):
            s += hist[v]
            lut[v] = int(np.round(np.float32(s) * scale))
    out = np.empty_like(img)
    for i in range(img.shape[0]):
        for j in range(img.shape[1]):
            out[i, j] = lut[img[i, j]]
    return out


@njit(nogil=True, cache=True)
def emboss(img):
    """cv2.filter2D(img, cv2.CV_8U, [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]]), saturated to 8 bits."""
    h, w = img.shape
    p = _reflect101(img, np.int32)
    out = np.empty((h, w), np.int64)
    for i in range(h):
        for j in range(w):
            v = (-2 * p[i, j] - p[i, j + 1] - p[i + 1, j] + p[i + 1, j + 1] + p[i + 1, j + 2]
                 + p[i + 2, j + 1] + 2 * p[i + 2, j + 2])
            out[i, j] = min(max(v, 0), 255)
    return out


@njit(nogil=True, cache=True)
def _rims(levels, out):
    dists = distance_transform(canny(levels, 50, 150), 20)
    for k in range(len(levels)):
        dist = emboss(equalize_hist(np.floor(box3(dists[k])).astype(np.int64)))  # the first blur's uint8 cast
        out[k] = levels[k] * np.floor(box3(dist) + 0.5).astype(np.float32)  # the second blur's 8-bit rounding


def water_rims(levels: torch.Tensor) -> torch.Tensor:
    """make_cifar_c's water spatter weights `level * blur(filter(equalize(blur(distance to Canny
    edges))))` for (N, H, W) uint8 levels; a float32 tensor on the levels' device."""
    lv = levels.cpu().contiguous().numpy()
    out = np.empty(lv.shape, np.float32)
    half = len(lv) // 2
    with ThreadPoolExecutor(1) as pool:
        other = pool.submit(_rims, lv[half:], out[half:])
        _rims(lv[:half], out[:half])
        other.result()
    return torch.from_numpy(out).to(levels.device)
