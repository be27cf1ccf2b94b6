"""The OpenCV steps of the spatter corruption as batched integer-exact tensor ops: Canny edges,
the 5x5 chamfer distance transform (cv2.DIST_L2, mask 5), histogram equalisation, and the
8-bit box blur and filter. Images are (N, H, W) tensors of 8-bit levels (0..255)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .ops import pad

_TG22 = int(0.4142135623730950488016887242097 * (1 << 15) + 0.5)  # OpenCV's fixed-point tan(22.5)


def _conv(img: torch.Tensor, kernel, mode: str, dtype=torch.float32) -> torch.Tensor:
    """Correlation with a small integer kernel as a sum of shifted slices: on CPU, conv2d with
    one channel takes a slow path (measured 108 us an image for a 3x3 kernel on 32 px in float64,
    the slices 12 us). Sums of 8-bit levels are exact in float32."""
    k = [[int(v) for v in row] for row in kernel]
    kh, kw = len(k), len(k[0])
    h, w = img.shape[-2:]
    xp = pad(img.to(dtype), kh // 2, kh // 2, kw // 2, kw // 2, mode)
    out = torch.zeros(img.shape, dtype=dtype, device=img.device)
    for a in range(kh):
        for b in range(kw):
            v, term = k[a][b], xp[:, a:a + h, b:b + w]
            if v == 1:
                out += term
            elif v == -1:
                out -= term
            elif v:
                out += term * v
    return out


def canny(img: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """cv2.Canny(img, low, high) with its defaults (3x3 Sobel on a replicated border, L1
    magnitude, non-maximum suppression in four directions, 8-connected hysteresis): a
    boolean edge map."""
    dx = _conv(img, [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], "nearest").int()
    dy = _conv(img, [[-1, -2, -1], [0, 0, 0], [1, 2, 1]], "nearest").int()
    mag = dx.abs() + dy.abs()
    m = F.pad(mag, (1, 1, 1, 1))  # outside the image the magnitude is zero
    h, w = mag.shape[1:]

    def nb(di, dj):
        return m[:, 1 + di:1 + di + h, 1 + dj:1 + dj + w]

    ax, ay = dx.abs(), dy.abs() << 15
    tg22x = ax * _TG22
    tg67x = tg22x + (ax << 16)
    horizontal = ay < tg22x
    vertical = ~horizontal & (ay > tg67x)
    s = torch.where((dx ^ dy) < 0, -1, 1)
    diag_a = torch.where(s < 0, nb(-1, 1), nb(-1, -1))  # row above, column j - s
    diag_b = torch.where(s < 0, nb(1, -1), nb(1, 1))  # row below, column j + s
    peak = torch.where(horizontal, (mag > nb(0, -1)) & (mag >= nb(0, 1)),
                       torch.where(vertical, (mag > nb(-1, 0)) & (mag >= nb(1, 0)),
                                   (mag > diag_a) & (mag > diag_b)))
    cand = peak & (mag > low)
    edges = cand & (mag > high)
    while True:
        grown = cand & dilate3(edges)
        if torch.equal(grown, edges):
            return edges
        edges = grown


def dilate3(mask: torch.Tensor) -> torch.Tensor:
    """Each pixel or its 8 neighbours set, as two passes of shifted ORs: CPU max_pool2d
    (which also computes indices) measured 10 ns a pixel, about 20x slower."""
    p = F.pad(mask.to(torch.uint8), (1, 1, 1, 1))
    rows = p[:, :, :-2] | p[:, :, 1:-1] | p[:, :, 2:]
    return (rows[:, :-2] | rows[:, 1:-1] | rows[:, 2:]).bool()


def chamfer_distance(nonzero: torch.Tensor, cap: float) -> torch.Tensor:
    """Distance of each pixel to the nearest zero pixel under the 5x5 chamfer mask of
    cv2.DIST_L2 (steps 1, 1.4 and 2.1969), exact up to `cap` (larger values are `cap`):
    a path of cost <= cap has at most cap steps, so that many parallel relaxations suffice.
    An image leaves the relaxation once a pass changes none of its pixels (on spatter's masks
    the median image's largest distance is half the largest of the batch)."""
    inf = float("inf")
    d = torch.where(nonzero, inf, 0.0).float()
    h, w = d.shape[1:]
    out, active = torch.empty_like(d), torch.arange(len(d), device=d.device)
    # the 16 steps of the mask share their column minima: min(a + c, b + c) = min(a, b) + c
    # exactly, so 14 tensor ops a relaxation instead of 32, with the same values
    for _ in range(int(cap) + 1):
        p = F.pad(d, (2, 2, 2, 2), value=inf)
        r1 = torch.minimum(p[:, :, 1:1 + w], p[:, :, 3:3 + w])  # one column away, every padded row
        r2 = torch.minimum(p[:, :, 0:w], p[:, :, 4:4 + w])  # two columns away
        c0 = p[:, :, 2:2 + w]
        straight = torch.minimum(torch.minimum(r1[:, 2:2 + h], c0[:, 1:1 + h]), c0[:, 3:3 + h]) + 1.0
        diagonal = torch.minimum(r1[:, 1:1 + h], r1[:, 3:3 + h]) + 1.4
        knight = torch.minimum(torch.minimum(r2[:, 1:1 + h], r2[:, 3:3 + h]),
                               torch.minimum(r1[:, 0:h], r1[:, 4:4 + h])) + 2.1969
        new = torch.minimum(torch.minimum(d, straight), torch.minimum(diagonal, knight))
        moved = (new != d).flatten(1).any(1)
        if not bool(moved.all()):  # the settled images leave: written out, dropped from the relaxation
            out[active[~moved]] = new[~moved]
            active, new = active[moved], new[moved]
        d = new
        if not len(active):
            break
    out[active] = d
    return out.clamp_(max=cap)


def equalize_hist(img: torch.Tensor) -> torch.Tensor:
    """cv2.equalizeHist per image."""
    n = img.shape[0]
    flat = img.reshape(n, -1).long()
    total = flat.shape[1]
    hist = torch.zeros(n, 256, dtype=torch.long, device=img.device).scatter_add_(1, flat, torch.ones_like(flat))
    first = (hist > 0).long().argmax(1, keepdim=True)
    h_first = hist.gather(1, first)
    scale = (255.0 / (total - h_first).clamp(min=1)).float()
    bins = torch.arange(256, device=img.device)[None]
    csum = (hist * (bins > first)).cumsum(1)
    lut = torch.round(csum.float() * scale).clamp(0, 255)
    lut = torch.where(bins <= first, 0.0, lut)
    lut = torch.where(h_first == total, first.float().expand(-1, 256), lut)
    return lut.gather(1, flat).view_as(img)


def box3(img: torch.Tensor) -> torch.Tensor:
    """cv2.blur(img, (3, 3)) in floating point (reflect-101 border): the sum, then the scale, as
    its box filter does (the sum of nine float32 values is exact in float64)."""
    return _conv(img, [[1] * 3] * 3, "mirror", torch.float64) / 9


def filter8(img: torch.Tensor, kernel) -> torch.Tensor:
    """cv2.filter2D(img, cv2.CV_8U, kernel): rounded and saturated to 8 bits."""
    return torch.round(_conv(img, kernel, "mirror")).clamp(0, 255)
