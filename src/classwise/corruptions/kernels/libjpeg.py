"""Pillow's JPEG round trip (libjpeg-turbo: islow DCT, 4:2:0 chroma, fancy upsampling) to the
bit, compiled with numba. Each step is libjpeg-turbo's integer arithmetic: RGB to YCbCr in 16-bit
fixed point (jccolor.c), each 2x2 chroma block averaged with a bias of 1 or 2 alternating by
column (jcsample.c), the LL&M forward DCT of each 8x8 block in 13-bit fixed point, rows then
columns, each output rounded (jfdctint.c), quantisation rounding half away from zero (what
jcdctmgr.c's reciprocal multiply gives for every 16-bit coefficient), dequantisation and the
inverse DCT, columns then rows (jidctint.c), the chroma upsampled by 3:1 triangle weights with the
edge samples repeated (h2v2_fancy_upsample, jdsample.c) and converted back (jdcolor.c). Entropy
coding, the rest of the codec, is lossless. What depends on the image alone (colour conversion,
subsampling, forward DCT: `encode`) is done once for all qualities. As in opencv.py, L images
are interleaved value by value, so that each butterfly runs as SIMD across images: about 4 us
an image to encode and 8 an image and quality to decode on one core, where Pillow's codec on
mosaics of the batch took 19 an image and quality on two (its Huffman coding and the tensor
steps around it); the halves of a batch run side by side in two threads."""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from numba import njit
from PIL import Image

from .. import ops

L = 16  # images side by side
# jfdctint.c / jidctint.c: FIX(c) = round(c * 2^13) of the LL&M rotations
C0298, C0390, C0541, C0765, C0899, C1175 = 2446, 3196, 4433, 6270, 7373, 9633
C1501, C1847, C1961, C2053, C2562, C3072 = 12299, 15137, 16069, 16819, 20995, 25172
HALF = 1 << 15


def _fix(v: float) -> int:
    return int(v * 65536 + 0.5)


# jccolor.c / jdcolor.c in 16-bit fixed point
Y_R, Y_G, Y_B = _fix(0.299), _fix(0.587), _fix(0.114)
CB_R, CB_G, C_HALF = _fix(0.16874), _fix(0.33126), _fix(0.5)
CR_G, CR_B = _fix(0.41869), _fix(0.08131)
R_CR, G_CB, G_CR, B_CB = _fix(1.402), _fix(0.34414), _fix(0.71414), _fix(1.772)
CENTRE = (128 << 16) + HALF - 1


@njit(inline="always")
def _odd(a, b, c, d):
    z1, z2, z3, z4 = a + d, b + c, a + c, b + d
    z5 = (z3 + z4) * C1175
    z1, z2 = z1 * -C0899, z2 * -C2562
    z3, z4 = z3 * -C1961 + z5, z4 * -C0390 + z5
    return a * C0298 + z1 + z3, b * C2053 + z2 + z4, c * C3072 + z2 + z3, d * C1501 + z1 + z4


@njit(inline="always")
def _fdct8(x0, x1, x2, x3, x4, x5, x6, x7):
    s0, s1, s2, s3 = x0 + x7, x1 + x6, x2 + x5, x3 + x4
    t10, t13, t11, t12 = s0 + s3, s0 - s3, s1 + s2, s1 - s2
    z1 = (t12 + t13) * C0541
    o7, o5, o3, o1 = _odd(x3 - x4, x2 - x5, x1 - x6, x0 - x7)
    return (t10 + t11) << 13, o1, z1 + t13 * C0765, o3, (t10 - t11) << 13, o5, z1 - t12 * C1847, o7


@njit(inline="always")
def _idct8(x0, x1, x2, x3, x4, x5, x6, x7):
    z1 = (x2 + x6) * C0541
    t2, t3 = z1 - x6 * C1847, z1 + x2 * C0765
    t0, t1 = (x0 + x4) << 13, (x0 - x4) << 13
    e0, e1, e2, e3 = t0 + t3, t1 + t2, t1 - t2, t0 - t3
    d3, d2, d1, d0 = _odd(x7, x5, x3, x1)
    return e0 + d0, e1 + d1, e2 + d2, e3 + d3, e3 - d3, e2 - d2, e1 - d1, e0 - d0


@njit(nogil=True, cache=True)
def _fdct_plane(plane, coef):
    """plane (h, w L) int64 levels, h and w multiples of 8 -> coef (h, w L): block (by, bx)'s
    coefficient (u, v) at [8 by + u, (8 bx + v) L + q]."""
    h, wl = plane.shape
    tmp = np.empty((8, 8 * L), np.int64)
    for by in range(h // 8):
        for bx in range(wl // (8 * L)):
            base = bx * 8 * L
            for r in range(8):
                row = plane[by * 8 + r]
                t = tmp[r]
                for q in range(L):
                    o0, o1, o2, o3, o4, o5, o6, o7 = _fdct8(
                        row[base + q] - 128, row[base + L + q] - 128, row[base + 2 * L + q] - 128,
                        row[base + 3 * L + q] - 128, row[base + 4 * L + q] - 128, row[base + 5 * L + q] - 128,
                        row[base + 6 * L + q] - 128, row[base + 7 * L + q] - 128)
                    t[q] = (o0 + 1024) >> 11
                    t[L + q] = (o1 + 1024) >> 11
                    t[2 * L + q] = (o2 + 1024) >> 11
                    t[3 * L + q] = (o3 + 1024) >> 11
                    t[4 * L + q] = (o4 + 1024) >> 11
                    t[5 * L + q] = (o5 + 1024) >> 11
                    t[6 * L + q] = (o6 + 1024) >> 11
                    t[7 * L + q] = (o7 + 1024) >> 11
            r0, r1, r2, r3, r4, r5, r6, r7 = tmp[0], tmp[1], tmp[2], tmp[3], tmp[4], tmp[5], tmp[6], tmp[7]
            c0, c1, c2, c3 = coef[by * 8], coef[by * 8 + 1], coef[by * 8 + 2], coef[by * 8 + 3]
            c4, c5, c6, c7 = coef[by * 8 + 4], coef[by * 8 + 5], coef[by * 8 + 6], coef[by * 8 + 7]
            for c in range(8 * L):
                o0, o1, o2, o3, o4, o5, o6, o7 = _fdct8(r0[c], r1[c], r2[c], r3[c], r4[c], r5[c], r6[c], r7[c])
                c0[base + c] = (o0 + 16384) >> 15
                c1[base + c] = (o1 + 16384) >> 15
                c2[base + c] = (o2 + 16384) >> 15
                c3[base + c] = (o3 + 16384) >> 15
                c4[base + c] = (o4 + 16384) >> 15
                c5[base + c] = (o5 + 16384) >> 15
                c6[base + c] = (o6 + 16384) >> 15
                c7[base + c] = (o7 + 16384) >> 15


@njit(nogil=True, cache=True)
def _idct_plane(coef, table, out):
    """`_fdct_plane`'s coefficients quantised with `table` (64, natural order: rounded half away
    from zero, as libjpeg-turbo's reciprocal multiply does), dequantised and inverted (jidctint.c)
    -> out (h, w L) int64 levels."""
    h, wl = coef.shape
    d = np.empty((8, 8 * L), np.int64)
    ws = np.empty((8, 8 * L), np.int64)
    for by in range(h // 8):
        for bx in range(wl // (8 * L)):
            base = bx * 8 * L
            for u in range(8):
                src, dst = coef[by * 8 + u], d[u]
                for v in range(8):
                    qv = table[u * 8 + v]
                    # floor((|c| + 4Q) / 8Q) in float64 is exact: the quotient of these integers is whole or
                    # at least 1/2040 from whole (a reciprocal multiply rounded some ties the wrong way)
                    half, step = np.float64(4 * qv), np.float64(8 * qv)
                    for q in range(L):
                        c = src[base + v * L + q]
                        m = np.int64((abs(c) + half) / step) * qv
                        dst[v * L + q] = m if c >= 0 else -m
            d0, d1, d2, d3, d4, d5, d6, d7 = d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]
            w0, w1, w2, w3, w4, w5, w6, w7 = ws[0], ws[1], ws[2], ws[3], ws[4], ws[5], ws[6], ws[7]
            for c in range(8 * L):
                o0, o1, o2, o3, o4, o5, o6, o7 = _idct8(d0[c], d1[c], d2[c], d3[c], d4[c], d5[c], d6[c], d7[c])
                w0[c] = (o0 + 1024) >> 11
                w1[c] = (o1 + 1024) >> 11
                w2[c] = (o2 + 1024) >> 11
                w3[c] = (o3 + 1024) >> 11
                w4[c] = (o4 + 1024) >> 11
                w5[c] = (o5 + 1024) >> 11
                w6[c] = (o6 + 1024) >> 11
                w7[c] = (o7 + 1024) >> 11
            for r in range(8):
                wr, row = ws[r], out[by * 8 + r]
                for q in range(L):
                    o0, o1, o2, o3, o4, o5, o6, o7 = _idct8(
                        wr[q], wr[L + q], wr[2 * L + q], wr[3 * L + q], wr[4 * L + q], wr[5 * L + q],
                        wr[6 * L + q], wr[7 * L + q])
                    row[base + q] = min(max(((o0 + 131072) >> 18) + 128, 0), 255)
                    row[base + L + q] = min(max(((o1 + 131072) >> 18) + 128, 0), 255)
                    row[base + 2 * L + q] = min(max(((o2 + 131072) >> 18) + 128, 0), 255)
                    row[base + 3 * L + q] = min(max(((o3 + 131072) >> 18) + 128, 0), 255)
                    row[base + 4 * L + q] = min(max(((o4 + 131072) >> 18) + 128, 0), 255)
                    row[base + 5 * L + q] = min(max(((o5 + 131072) >> 18) + 128, 0), 255)
                    row[base + 6 * L + q] = min(max(((o6 + 131072) >> 18) + 128, 0), 255)
                    row[base + 7 * L + q] = min(max(((o7 + 131072) >> 18) + 128, 0), 255)


@njit(nogil=True, cache=True)
def _encode(x, k, ycoef, ccoef):
    """Images k..k+L of (N, C, H, W) float32 x in [0, 1], as 8-bit levels, -> their DCT
    coefficients: luma (or grey) into ycoef (Hp, Wp L) (grey padded to whole blocks by repeating
    the edge, as libjpeg pads), for colour the chroma into ccoef (2, H/2, W/2 L)."""
    n, ch, h, w = x.shape
    levels = np.empty((min(L, n - k), ch, h, w), np.int64)
    for q in range(len(levels)):
        for c in range(ch):
            for i in range(h):
                src, dst = x[k + q, c, i], levels[q, c, i]
                for j in range(w):
                    dst[j] = np.int64(np.floor(min(max(src[j], np.float32(0)), np.float32(1)) * np.float32(255)
                                               + np.float32(0.5)))
    hp, wp = ycoef.shape[0], ycoef.shape[1] // L
    plane = np.zeros((hp, wp * L), np.int64)
    if ch == 1:
        for q in range(min(L, n - k)):
            for i in range(hp):
                src = levels[q, 0, min(i, h - 1)]
                for j in range(wp):
                    plane[i, j * L + q] = src[min(j, w - 1)]
        _fdct_plane(plane, ycoef)
        return
    cb = np.zeros((h, w * L), np.int64)
    cr = np.zeros((h, w * L), np.int64)
    for q in range(min(L, n - k)):
        img = levels[q]
        for i in range(h):
            r, g, b = img[0, i], img[1, i], img[2, i]
            for j in range(w):
                rv, gv, bv = r[j], g[j], b[j]
                plane[i, j * L + q] = (Y_R * rv + Y_G * gv + Y_B * bv + HALF) >> 16
                cb[i, j * L + q] = (C_HALF * bv - CB_R * rv - CB_G * gv + CENTRE) >> 16
                cr[i, j * L + q] = (C_HALF * rv - CR_G * gv - CR_B * bv + CENTRE) >> 16
    _fdct_plane(plane, ycoef)
    small = np.empty((h // 2, w // 2 * L), np.int64)
    for p, full in enumerate((cb, cr)):
        for i in range(h // 2):
            a, b = full[2 * i], full[2 * i + 1]
            for j in range(w // 2):
                bias = 1 + (j & 1)  # jcsample.c: 1 and 2 alternating by column
                for q in range(L):
                    c = 2 * j * L + q
                    small[i, j * L + q] = (a[c] + a[c + L] + b[c] + b[c + L] + bias) >> 2
        _fdct_plane(small, ccoef[p])


@njit(nogil=True, cache=True)
def _decode(ycoef, ccoef, qy, qc, k, out):
    """`_encode`'s coefficients quantised with tables qy (luma) and qc (chroma), decoded as
    libjpeg-turbo decodes them, into out[k:k + L] as float32 in [0, 1]."""
    n, ch, h, w = out.shape
    y = np.empty(ycoef.shape, np.int64)
    _idct_plane(ycoef, qy, y)
    if ch == 1:
        for q in range(min(L, n - k)):
            for i in range(h):
                dst, src = out[k + q, 0, i], y[i]
                for j in range(w):
                    dst[j] = np.float32(src[j * L + q]) / np.float32(255)
        return
    hs, ws = h // 2, w // 2
    small = np.empty((hs, ws * L), np.int64)
    up = np.empty((2, h, w * L), np.int64)
    vert = np.empty(ws * L, np.int64)
    for p in range(2):
        _idct_plane(ccoef[p], qc, small)
        # h2v2_fancy_upsample: vertically 3 x the nearer row + the farther, horizontally 3 x the
        # nearer column + the farther, + 8 or 7, over 16; the edge rows and columns repeated
        for i in range(h):
            near, far = small[i // 2], small[min(max(i // 2 + (1 if i & 1 else -1), 0), hs - 1)]
            for c in range(ws * L):
                vert[c] = 3 * near[c] + far[c]
            dst = up[p, i]
            for j in range(ws):
                left, right = max(j - 1, 0), min(j + 1, ws - 1)
                for q in range(L):
                    v = 3 * vert[j * L + q]
                    dst[2 * j * L + q] = (v + vert[left * L + q] + 8) >> 4
                    dst[(2 * j + 1) * L + q] = (v + vert[right * L + q] + 7) >> 4
    for q in range(min(L, n - k)):
        for i in range(h):
            yr, cbr, crr = y[i], up[0, i], up[1, i]
            ro, go, bo = out[k + q, 0, i], out[k + q, 1, i], out[k + q, 2, i]
            for j in range(w):
                c = j * L + q
                yv, cbv, crv = yr[c], cbr[c] - 128, crr[c] - 128
                ro[j] = min(max(yv + ((R_CR * crv + HALF) >> 16), 0), 255) / np.float32(255)
                go[j] = min(max(yv + ((-G_CB * cbv - G_CR * crv + HALF) >> 16), 0), 255) / np.float32(255)
                bo[j] = min(max(yv + ((B_CB * cbv + HALF) >> 16), 0), 255) / np.float32(255)


@njit(nogil=True, cache=True)
def _encode_groups(x, g0, g1, ycoef, ccoef):
    for g in range(g0, g1):
        _encode(x, g * L, ycoef[g], ccoef[g])


@njit(nogil=True, cache=True)
def _decode_groups(ycoef, ccoef, qy, qc, g0, g1, out):
    for g in range(g0, g1):
        _decode(ycoef[g], ccoef[g], qy, qc, g * L, out)


def aligned(channels: int, h: int, w: int) -> bool:
    """Whether the kernels give libjpeg's result for this shape: any grey image (padded to whole
    blocks by repeating its edge, as libjpeg pads); colour in whole 16x16 MCUs (else libjpeg pads
    its chroma planes after downsampling and fills in dummy blocks)."""
    return channels == 1 or (channels == 3 and h % 16 == 0 and w % 16 == 0)


@lru_cache(maxsize=16)
def quant_tables(quality: int) -> tuple[np.ndarray, np.ndarray]:
    """Pillow's luminance and chrominance tables at this quality (natural order), read back from a
    JPEG it wrote."""
    buf = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buf, "JPEG", quality=quality)
    tables = Image.open(buf).quantization
    return np.array(tables[0], np.int64), np.array(tables[1], np.int64)


def one_by_one(x: torch.Tensor, quality: int) -> torch.Tensor:
    """Pillow's round trip an image at a time, for the shapes that are not `aligned`."""
    levels = x.cpu().clamp(0, 1).mul(255).add_(0.5).floor_().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    out = torch.empty(x.shape)
    for i, im in enumerate(levels):
        buf = io.BytesIO()
        Image.fromarray(im[..., 0] if im.shape[-1] == 1 else im).save(buf, "JPEG", quality=quality)
        out[i] = torch.from_numpy(np.array(Image.open(buf))).view(im.shape).permute(2, 0, 1)
    return out.div_(255)


@dataclass
class Coefficients:
    """What every quality of a batch shares: its blocks' DCT coefficients, L images interleaved."""
    shape: tuple[int, int, int, int]
    luma: np.ndarray  # (groups, Hp, Wp L): luma, or grey padded to whole blocks
    chroma: np.ndarray  # (groups, 2, H / 2, W / 2 L); (groups, 0, 0, 0) for grey


def encode(x: torch.Tensor) -> Coefficients | None:
    """The coefficients of (N, C, H, W) images in [0, 1] as 8-bit levels; None for the shapes
    that are not `aligned`."""
    n, c, h, w = x.shape
    if not aligned(c, h, w):
        return None
    xs = ops.cpu_array(x)
    groups = -(-n // L)
    luma = np.empty((groups, -(-h // 8) * 8, -(-w // 8) * 8 * L), np.int32)
    chroma = np.empty((groups, 2, h // 2, w // 2 * L) if c == 3 else (groups, 0, 0, 0), np.int32)
    ops.two_halves(lambda g0, g1: _encode_groups(xs, g0, g1, luma, chroma), groups)
    return Coefficients((n, c, h, w), luma, chroma)


def decode(coef: Coefficients, quality: int) -> torch.Tensor:
    """Images in [0, 1] from `encode`'s coefficients quantised at this quality, as Pillow's
    `save(..., 'JPEG', quality=quality)` and reload gives them."""
    qy, qc = quant_tables(quality)
    out = np.empty(coef.shape, np.float32)
    ops.two_halves(lambda g0, g1: _decode_groups(coef.luma, coef.chroma, qy, qc, g0, g1, out), len(coef.luma))
    return torch.from_numpy(out)
