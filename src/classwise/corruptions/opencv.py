"""The OpenCV steps of the spatter corruption as batched integer-exact tensor ops: Canny edges,
the 5x5 chamfer distance transform (cv2.DIST_L2, mask 5), histogram equalisation, and the
8-bit box blur and filter. Images are (N, H, W) tensors of 8-bit levels (0..255)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .ops import pad

_TG22 = int(0.4142135623730950488016887242097 * (1 << 15) + 0.5)  # OpenCV's fixed-point tan(22.5)


def _conv(img: torch.Tensor, kernel, mode: str) -> torch.Tensor:
    k = torch.as_tensor(kernel, dtype=torch.float64, device=img.device)
    kh, kw = k.shape
    xp = pad(img.double()[:, None], kh // 2, kh // 2, kw // 2, kw // 2, mode)
    return F.conv2d(xp, k.view(1, 1, kh, kw))[:, 0]


def canny(img: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """cv2.Canny(img, low, high) with its defaults (3x3 Sobel on a replicated border, L1
    magnitude, non-maximum suppression in four directions, 8-connected hysteresis): a
    boolean edge map."""
    dx = _conv(img, [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], "nearest").long()
    dy = _conv(img, [[-1, -2, -1], [0, 0, 0], [1, 2, 1]], "nearest").long()
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
        grown = cand & (F.max_pool2d(edges[:, None].float(), 3, 1, 1)[:, 0] > 0)
        if torch.equal(grown, edges):
            return edges
        edges = grown


def chamfer_distance(nonzero: torch.Tensor, cap: float) -> torch.Tensor:
    """Distance of each pixel to the nearest zero pixel under the 5x5 chamfer mask of
    cv2.DIST_L2 (steps 1, 1.4 and 2.1969), exact up to `cap` (larger values are `cap`):
    a path of cost <= cap has at most cap steps, so that many parallel relaxations suffice."""
    inf = float("inf")
    d = torch.where(nonzero, inf, 0.0).float()
    h, w = d.shape[1:]
    steps = [(di, dj, 1.0) for di, dj in ((0, 1), (1, 0), (0, -1), (-1, 0))]
    steps += [(di, dj, 1.4) for di in (-1, 1) for dj in (-1, 1)]
    steps += [(di, dj, 2.1969) for di, dj in ((1, 2), (2, 1), (-1, 2), (-2, 1), (1, -2), (2, -1), (-1, -2), (-2, -1))]
    for _ in range(int(cap) + 1):
        p = F.pad(d, (2, 2, 2, 2), value=inf)
        new = d
        for di, dj, cost in steps:
            new = torch.minimum(new, p[:, 2 + di:2 + di + h, 2 + dj:2 + dj + w] + cost)
        if torch.equal(new, d):
            break
        d = new
    return d.clamp(max=cap)


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
    """cv2.blur(img, (3, 3)) in floating point (reflect-101 border)."""
    return _conv(img, [[1 / 9] * 3] * 3, "mirror")


def filter8(img: torch.Tensor, kernel) -> torch.Tensor:
    """cv2.filter2D(img, cv2.CV_8U, kernel): rounded and saturated to 8 bits."""
    return torch.round(_conv(img, kernel, "mirror")).clamp(0, 255)
