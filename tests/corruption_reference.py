"""Per-image NumPy / SciPy / Pillow statements of the published make_cifar_c.py formulas, on one
HxWx3 float image in [0, 1]: the tests feed them the random numbers the tensor ops drew, the
corruption benchmark times them (benchmarks/corruptions.py imports this file)."""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage


def gauss(x: np.ndarray, s: float, mode: str = "nearest", truncate: float = 4.0) -> np.ndarray:
    """skimage.filters.gaussian over the two image axes (scipy's filter, `nearest` border)."""
    return ndimage.gaussian_filter(x, (s, s, 0)[:x.ndim], mode=mode, truncate=truncate) if s > 1e-15 else x


def clipped_zoom(img: np.ndarray, z: float) -> np.ndarray:
    """Crop the centre ceil(h / z) pixels, zoom them (order 1) by z, keep the centre h."""
    h = img.shape[0]
    ch = int(np.ceil(h / z))
    top = (h - ch) // 2
    out = ndimage.zoom(img[top:top + ch, top:top + ch], (z, z, 1)[:img.ndim], order=1)
    trim = (out.shape[0] - h) // 2
    return out[trim:trim + h, trim:trim + h]


def motion(x: np.ndarray, radius: float, sigma: float, angle: float) -> np.ndarray:
    """ImageMagick's MotionBlurImage: a one-sided Gaussian over 2 ceil(radius) + 1 taps along
    `angle`, edge pixels repeated."""
    width = int(2 * np.ceil(radius) + 1)
    k = np.exp(-np.arange(width) ** 2 / (2 * sigma**2))
    k /= k.sum()
    px, py = width * np.sin(np.deg2rad(angle)), width * np.cos(np.deg2rad(angle))
    h, w = x.shape[:2]
    out = np.zeros_like(x)
    for i in range(width):
        ox, oy = int(np.ceil(i * py / np.hypot(px, py) - 0.5)), int(np.ceil(i * px / np.hypot(px, py) - 0.5))
        rows, cols = np.clip(np.arange(h) + oy, 0, h - 1), np.clip(np.arange(w) + ox, 0, w - 1)
        out += k[i] * x[rows][:, cols]
    return out


def plasma(size: int, decay: float, uniform) -> np.ndarray:
    """The diamond-square height map in [0, 1]; `uniform(shape)` gives U[0, 1) draws, in the
    order of the reference (squares, then the two diamond sets, each step)."""
    a = np.zeros((size, size))
    step, wibble = size, 100.0

    def wibbled(arr):
        return arr / 4 + wibble * (uniform(arr.shape) * 2 - 1) * wibble

    while step >= 2:
        half = step // 2
        corner = a[0::step, 0::step]
        sq = corner + np.roll(corner, -1, axis=0)
        sq += np.roll(sq, -1, axis=1)
        a[half::step, half::step] = wibbled(sq)
        dr, ul = a[half::step, half::step], a[0::step, 0::step]
        a[0::step, half::step] = wibbled(dr + np.roll(dr, 1, axis=0) + ul + np.roll(ul, -1, axis=1))
        a[half::step, 0::step] = wibbled(dr + np.roll(dr, 1, axis=1) + ul + np.roll(ul, -1, axis=0))
        step //= 2
        wibble /= decay
    a -= a.min()
    return a / a.max()


def rgb2hsv(x: np.ndarray) -> np.ndarray:
    """scikit-image's rgb2hsv."""
    v = x.max(-1)
    delta = v - x.min(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.where(delta == 0, 0, delta / v)
        h = np.zeros_like(v)
        for i, (a, b, off) in enumerate([(1, 2, 0), (2, 0, 2), (0, 1, 4)]):
            idx = x[..., i] == v
            h[idx] = off + (x[idx][:, a] - x[idx][:, b]) / delta[idx]
    h = (h / 6) % 1
    h[delta == 0] = 0
    return np.stack([h, s, v], -1)


def hsv2rgb(hsv: np.ndarray) -> np.ndarray:
    """scikit-image's hsv2rgb."""
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    hi = np.floor(h * 6)
    f = h * 6 - hi
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    choices = [np.stack(c, -1) for c in ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))]
    return np.choose((hi.astype(int) % 6)[..., None], choices)


def pil_roundtrip(x: np.ndarray, fn) -> np.ndarray:
    """`fn` on the image as an 8-bit Pillow image, back as floats."""
    return np.asarray(fn(Image.fromarray(np.uint8(np.round(x * 255)))), dtype=np.float64) / 255
