"""The OpenCV steps of spatter's water drops, computed as OpenCV computes them: Canny edges,
the 5x5 chamfer distance transform (cv2.DIST_L2, mask 5), the 3x3 box blur, histogram
equalisation and the 8-bit emboss filter, compiled with numba. As tensor ops over the batch they
cost 60-95 us an image (the distance transform needed up to 21 whole-image relaxations, Canny's
hysteresis a dilation per step of growth), and OpenCV's own raster passes are serial along each
row. Here L images are interleaved pixel by pixel (`_lanes`: row i holds pixel (i, j) of image q
at j * L + q), so each step is a loop along a row that the compiler turns into SIMD over the
images, and each serial chain of a raster pass carries L images at once: about 12 us an image on
one core, 6 on two (the halves of a batch run side by side; the loops release the GIL). numba
compiles them on first use and caches the machine code (beside this file, or in
NUMBA_CACHE_DIR). The results equal cv2's to the bit (tests/test_corruptions.py checks it)."""

from __future__ import annotations

import numpy as np
import torch
from numba import njit

from .. import ops

_TG22 = int(0.4142135623730950488016887242097 * (1 << 15) + 0.5)  # OpenCV's fixed-point tan(22.5)
HV, DIAG, KNIGHT = np.float32(1), np.float32(1.4), np.float32(2.1969)  # cv2.DIST_L2's 5x5 mask
L = 16  # images side by side: one AVX-512 register of float32 (two of AVX2)


@njit(nogil=True, cache=True)
def _lanes(batch, k, dtype, border, fill):
    """Images k..k+L of a (N, H, W) batch interleaved: (H + 2 border, (W + 2 border) L), pixel
    (i, j) of image k + q at [i + border, (j + border) L + q]. Lanes past the batch hold `fill`,
    as does the border."""
    n, h, w = batch.shape
    out = np.full((h + 2 * border, (w + 2 * border) * L), fill, dtype)
    for q in range(min(L, n - k)):
        for i in range(h):
            for j in range(w):
                out[i + border, (j + border) * L + q] = batch[k + q, i, j]
    return out


@njit(nogil=True, cache=True)
def _unlanes(lanes, k, border, out):
    """The inverse of `_lanes`: lanes' images into out[k:k + L]."""
    n, h, w = out.shape
    for q in range(min(L, n - k)):
        for i in range(h):
            for j in range(w):
                out[k + q, i, j] = lanes[i + border, (j + border) * L + q]


@njit(nogil=True, cache=True)
def _border(p, reflect):
    """Fill a 1-pixel border of interleaved images in place: replicated, or reflected about the
    edge pixel (BORDER_REFLECT_101, OpenCV's default)."""
    rows, cols = p.shape
    w = cols // L - 2
    h = rows - 2
    a, b = (2, w - 1) if reflect else (1, w)
    for i in range(1, h + 1):
        for q in range(L):
            p[i, q], p[i, (w + 1) * L + q] = p[i, a * L + q], p[i, b * L + q]
    top, bottom = (2, h - 1) if reflect else (1, h)
    p[0] = p[top]
    p[h + 1] = p[bottom]


@njit(nogil=True, cache=True)
def _canny(levels, k, low, high):
    """cv2.Canny(img, low, high) with its defaults (3x3 Sobel on a replicated border, L1
    magnitude, non-maximum suppression in four directions, 8-connected hysteresis) of images
    k..k+L: (H + 2, W + 2) words whose bit q is image k + q's edge (a zero border)."""
    n, h, w = levels.shape
    p = _lanes(levels, k, np.int32, 1, 0)
    _border(p, False)
    dx, dy = np.empty((h, w * L), np.int32), np.empty((h, w * L), np.int32)
    mag = np.zeros((h + 2, (w + 2) * L), np.int32)  # zero outside the image
    for i in range(h):
        p0, p1, p2, gxr, gyr, m = p[i], p[i + 1], p[i + 2], dx[i], dy[i], mag[i + 1]
        for c in range(w * L):
            gx = (p0[c + 2 * L] - p0[c]) + 2 * (p1[c + 2 * L] - p1[c]) + (p2[c + 2 * L] - p2[c])
            gy = (p2[c] - p0[c]) + 2 * (p2[c + L] - p0[c + L]) + (p2[c + 2 * L] - p0[c + 2 * L])
            gxr[c], gyr[c] = gx, gy
            m[c + L] = abs(gx) + abs(gy)
    # non-maximum suppression: each test a mask, combined with & and |, so no branch
    cand, strong = np.empty((h, w * L), np.uint8), np.empty((h, w * L), np.uint8)
    for i in range(h):
        up, mid, dn, gxr, gyr, cr, sr = mag[i], mag[i + 1], mag[i + 2], dx[i], dy[i], cand[i], strong[i]
        for c in range(w * L):
            m, gx, gy = mid[c + L], gxr[c], gyr[c]
            ax, ay = abs(gx), abs(gy) << 15
            tg22x = ax * _TG22
            horizontal, vertical = ay < tg22x, ay > tg22x + (ax << 16)
            along_x = (m > mid[c]) & (m >= mid[c + 2 * L])
            along_y = (m > up[c + L]) & (m >= dn[c + L])
            anti = (m > up[c + 2 * L]) & (m > dn[c])  # gx and gy of opposite signs
            main = (m > up[c]) & (m > dn[c + 2 * L])
            opposite = (gx ^ gy) < 0
            diagonal = (opposite & anti) | (~opposite & main)
            peak = ((horizontal & along_x) | (vertical & along_y) | (~horizontal & ~vertical & diagonal)) & (m > low)
            cr[c], sr[c] = peak, peak & (m > high)
    # hysteresis on bit words (bit q: image k + q): raster passes down and up, each growing the
    # edges into candidates touching an edge already visited, until a pair of passes grows none
    cw, edges = np.zeros((h + 2, w + 2), np.int64), np.zeros((h + 2, w + 2), np.int64)
    for i in range(h):
        for j in range(w):
            cb, sb = 0, 0
            for q in range(L):
                cb |= np.int64(cand[i, j * L + q]) << q
                sb |= np.int64(strong[i, j * L + q]) << q
            cw[i + 1, j + 1], edges[i + 1, j + 1] = cb, sb
    grown = True
    while grown:
        grown = False
        for s in (1, -1):
            for ii in range(h):
                i = 1 + ii if s > 0 else h - ii
                for jj in range(w):
                    j = 1 + jj if s > 0 else w - jj
                    near = edges[i - s, j - 1] | edges[i - s, j] | edges[i - s, j + 1] | edges[i, j - s]
                    v = edges[i, j] | (cw[i, j] & near)
                    grown |= v != edges[i, j]
                    edges[i, j] = v
    return edges


@njit(nogil=True, cache=True)
def _chamfer_pass(t, forward):
    """One of OpenCV's two raster passes of the 5x5 chamfer distance, in place on interleaved
    images with a 2-pixel border: each row takes the minimum over the two rows done before it
    first (the mask is symmetric, so the same loop serves both directions), then the running
    minimum along the row. A min is exact, so this order changes no bit. The indices are loop
    counters plus constants: numba then leaves out its negative-index handling, which kept the
    loops from vectorising (4.7x slower)."""
    rows, cols = t.shape
    width = cols // L - 4
    tmp = np.empty(cols, np.float32)
    for ii in range(rows - 4):
        i = 2 + ii if forward else rows - 3 - ii
        far, near, row = (t[i - 2], t[i - 1], t[i]) if forward else (t[i + 2], t[i + 1], t[i])
        for b in range(cols - 4 * L):
            knight = min(min(far[b + L], far[b + 3 * L]), min(near[b], near[b + 4 * L])) + KNIGHT
            diagonal = min(near[b + L], near[b + 3 * L]) + DIAG
            tmp[b] = min(min(row[b + 2 * L], knight), min(diagonal, near[b + 2 * L] + HV))
        for jj in range(width):  # the running minimum, read back from the column done before
            b = (jj if forward else width - 1 - jj) * L
            done, cur, fresh = row[b + (L if forward else 3 * L):], row[b + 2 * L:b + 3 * L], tmp[b:b + L]
            for q in range(L):
                cur[q] = min(fresh[q], done[q] + HV)


@njit(nogil=True, cache=True)
def _distance(edges, cap):
    """cv2.distanceTransform(255 - edges, cv2.DIST_L2, 5) truncated at `cap` (cv2.THRESH_TRUNC)
    from `_canny`'s words: OpenCV's two raster passes in float32, the outside of the image
    infinitely far; interleaved, with a 1-pixel border for the box blur."""
    h, w = edges.shape[0] - 2, edges.shape[1] - 2
    t = np.full((h + 4, (w + 4) * L), np.inf, np.float32)
    inf_or_zero = np.array([np.inf, 0], np.float32)  # a lookup, not a branch per bit
    for i in range(h):
        row = t[i + 2]
        for j in range(w):
            e = edges[i + 1, j + 1]
            for q in range(L):
                row[(j + 2) * L + q] = inf_or_zero[(e >> q) & 1]
    _chamfer_pass(t, True)
    _chamfer_pass(t, False)
    out = np.empty((h + 2, (w + 2) * L), np.float64)
    for i in range(h):
        src, dst = t[i + 2], out[i + 1]
        for b in range(w * L):
            dst[b + L] = min(src[b + 2 * L], cap)
    return out


@njit(nogil=True, cache=True)
def _box3(p):
    """cv2.blur(img, (3, 3)) before its rounding, of interleaved images with a filled border: the
    sum of the nine values, then / 9. Of distances up to 20 (float32) or 8-bit levels the float64
    sum is exact in any order, so the rows are summed first."""
    h, w = p.shape[0] - 2, p.shape[1] // L - 2
    rows = np.empty((h + 2, w * L), np.float64)
    for i in range(h + 2):
        src, dst = p[i], rows[i]
        for c in range(w * L):
            dst[c] = src[c] + src[c + L] + src[c + 2 * L]
    out = np.empty((h, w * L), np.float64)
    for i in range(h):
        r0, r1, r2, dst = rows[i], rows[i + 1], rows[i + 2], out[i]
        for c in range(w * L):
            dst[c] = (r0[c] + r1[c] + r2[c]) / 9
    return out


@njit(nogil=True, cache=True)
def _equalize(levels):
    """cv2.equalizeHist of each interleaved image of 8-bit levels (int32): the cumulative count
    past the first level present, times 255 / (count - that level's count) in float32, rounded."""
    h, wl = levels.shape
    hist = np.zeros((256, L), np.int32)
    for i in range(h):
        row = levels[i]
        for b in range(0, wl, L):
            for q in range(L):
                hist[row[b + q], q] += 1
    lut = np.zeros((256, L), np.int32)
    total, top = h * wl // L, levels.max()
    for q in range(L):
        first = 0
        while hist[first, q] == 0:
            first += 1
        if hist[first, q] == total:
            lut[:, q] = first
            continue
        scale = np.float32(255) / np.float32(total - hist[first, q])
        s = 0
        for v in range(first + 1, top + 1):
            s += hist[v, q]
            lut[v, q] = int(np.round(np.float32(s) * scale))
    out = np.empty((h + 2, wl + 2 * L), np.int32)  # with a border for the filter
    for i in range(h):
        src, dst = levels[i], out[i + 1]
        for b in range(0, wl, L):
            for q in range(L):
                dst[b + L + q] = lut[src[b + q], q]
    return out


@njit(nogil=True, cache=True)
def _rims(liquid, thr, intensity, x, colour, out):
    """make_cifar_c's water spatter on (N, 3, H, W) float32 x, into `out`: x + m colour, clipped
    to [0, 1], where m is the (N, H, W) float32 liquid layer as 8-bit levels (zero below `thr`),
    each level times blur(emboss(equalize(blur(its distance to the Canny edges)))), over the
    image's largest such product, times `intensity`."""
    n, h, w = liquid.shape
    levels = np.empty((n, h, w), np.uint8)
    for k in range(n):
        for i in range(h):
            for j in range(w):
                v = liquid[k, i, j]
                v = np.float32(0) if v < thr else v * np.float32(255)
                levels[k, i, j] = np.uint8(min(max(v, np.float32(0)), np.float32(255)))
    m = np.empty((h, w), np.float32)
    for k in range(0, n, L):
        d = _distance(_canny(levels, k, 50, 150), np.float32(20))
        _border(d, True)
        b = _box3(d)
        q8 = np.empty((h, w * L), np.int32)
        for i in range(h):
            for c in range(w * L):
                q8[i, c] = np.int32(np.floor(b[i, c]))  # the first blur's cast to uint8
        e = _equalize(q8)
        _border(e, True)
        f = np.empty((h + 2, (w + 2) * L), np.float64)  # cv2.filter2D(CV_8U, [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]])
        for i in range(h):
            e0, e1, e2, dst = e[i], e[i + 1], e[i + 2], f[i + 1]
            for c in range(w * L):
                v = (-2 * e0[c] - e0[c + L] - e1[c] + e1[c + L] + e1[c + 2 * L] + e2[c + L] + 2 * e2[c + 2 * L])
                dst[c + L] = min(max(v, 0), 255)
        _border(f, True)
        b = _box3(f)
        # back to one image at a time from here: the lanes are read once, by the products, and
        # the three channels' compose reads its image's plane contiguously (it read the lanes
        # once a channel, a cache line a value, and re-interleaved the levels first: 1.4 us)
        for q in range(min(L, n - k)):
            peak = np.float32(1e-12)
            for i in range(h):
                lv, bi, mi = levels[k + q, i], b[i], m[i]
                for j in range(w):
                    mi[j] = np.float32(lv[j]) * np.float32(np.floor(bi[j * L + q] + 0.5))  # 2nd blur's rounding
                    peak = max(peak, mi[j])
            for ch in range(3):
                tint = colour[ch]
                for i in range(h):
                    src, dst, mi = x[k + q, ch, i], out[k + q, ch, i], m[i]
                    for j in range(w):
                        dst[j] = min(max(src[j] + mi[j] / peak * intensity * tint, np.float32(0)), np.float32(1))


def canny(levels: np.ndarray, low: int, high: int) -> np.ndarray:
    """cv2.Canny of each image of (N, H, W) uint8 levels: (N, H, W) booleans."""
    n, h, w = levels.shape
    out = np.empty((n, h, w), bool)
    for k in range(0, n, L):
        words = _canny(levels, k, low, high)[1:-1, 1:-1]
        for q in range(min(L, n - k)):
            out[k + q] = (words >> q) & 1
    return out


def distance_transform(zero: np.ndarray, cap: float) -> np.ndarray:
    """cv2.distanceTransform(255 * ~zero, cv2.DIST_L2, 5) of each (H, W) boolean image, capped."""
    n, h, w = zero.shape
    out = np.empty((n, h, w), np.float32)
    for k in range(0, n, L):
        words = np.zeros((h + 2, w + 2), np.int64)
        for q in range(min(L, n - k)):
            words[1:-1, 1:-1] |= zero[k + q].astype(np.int64) << q
        d = _distance(words, np.float32(cap))
        _unlanes(d, k, 1, out)
    return out


def equalize_hist(img: np.ndarray) -> np.ndarray:
    """cv2.equalizeHist of one (H, W) image of 8-bit levels."""
    h, w = img.shape
    lanes = np.repeat(np.asarray(img, np.int32).reshape(h, w, 1), L, axis=2).reshape(h, w * L)
    return _equalize(lanes)[1:-1, L:-L:L]


def water_spatter(x: torch.Tensor, liquid: torch.Tensor, thr: float, intensity: float, colour) -> torch.Tensor:
    """make_cifar_c's water spatter (`_rims`) of (N, 3, H, W) images in [0, 1] with (N, H, W)
    liquid layers, `colour` the drops' 8-bit RGB; float32 on x's device."""
    xs = ops.cpu_array(x)
    lq = ops.cpu_array(liquid)
    out = np.empty(xs.shape, np.float32)
    args = np.float32(thr), np.float32(intensity)
    tint = np.array(colour, np.float32) / np.float32(255)

    def run(lo, hi):
        _rims(lq[lo * L:hi * L], *args, xs[lo * L:hi * L], tint, out[lo * L:hi * L])

    ops.two_halves(run, -(-len(lq) // L))
    return torch.from_numpy(out).to(x.device)
