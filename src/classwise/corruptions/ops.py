"""Batched building blocks of the corruptions: the filters, border modes, resampling and
colour conversions of the libraries the published code calls (SciPy, scikit-image, OpenCV,
ImageMagick, Pillow), written once for (N, C, H, W) tensors."""

from __future__ import annotations

import math
import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

LUMA = (0.299, 0.587, 0.114)  # ITU-R 601, OpenCV's RGB2GRAY
# float32 batches on the CPU take the compiled loops where a corruption has them; False: the
# tensor forms CUDA and MPS run, on the CPU too (tests/test_corruption_forms.py sets them side by side)
CPU_LOOPS = True
STREAMS = 2  # fixed, not the thread count: the numbers depend on the seed alone


def in_streams(x: torch.Tensor, generator, fn, dtype: torch.dtype | None = None) -> torch.Tensor:
    """`fn(out, x, g)` on STREAMS contiguous parts of the flattened batch, part i drawing from
    its own generator seeded by the i-th of STREAMS integers drawn from `generator`
    (`torch.randint(0, 2**62, (STREAMS,))`), the parts run side by side. torch's CPU generator
    is one serial stream (about 4 ns a normal on one core), which made the draws, not the
    arithmetic, most of what the noises cost; a CUDA or MPS generator is parallel already.
    `fn` writes all of `out` (x's dtype unless `dtype`); `x` may be an uninitialised tensor of the
    shape to draw."""
    x = x.contiguous()
    out = torch.empty_like(x, dtype=dtype)
    if x.device.type != "cpu":
        fn(out, x, generator)
        return out
    seeds = torch.randint(0, 2**62, (STREAMS,), generator=generator).tolist()
    flat_out, flat_x, n = out.view(-1), x.view(-1), x.numel()

    def part(i):
        lo, hi = n * i // STREAMS, n * (i + 1) // STREAMS
        fn(flat_out[lo:hi], flat_x[lo:hi], torch.Generator().manual_seed(seeds[i]))

    with ThreadPoolExecutor(STREAMS - 1) as pool:  # torch releases the GIL inside each op
        rest = [pool.submit(part, i) for i in range(1, STREAMS)]
        part(0)
        for f in rest:
            f.result()
    return out


def cpu_array(x: torch.Tensor) -> np.ndarray:
    """x as a C-contiguous float32 NumPy array on the CPU, for the compiled loops (a view where
    it is one already)."""
    return x.to("cpu", torch.float32).contiguous().numpy()


_HALF_POOL: ThreadPoolExecutor | None = None  # made on first use; a forked child makes its own
os.register_at_fork(after_in_child=lambda: globals().update(_HALF_POOL=None))  # its thread is not copied


def two_halves(run, n: int) -> None:
    """run(lo, hi) on [0, n / 2) and [n / 2, n) side by side, for compiled loops that release
    the GIL (torch's ops spread over the threads themselves). One thread is kept for the second
    halves: making a pool took 170 us a call, 5% of a pixelate batch; a call from that thread
    runs both halves itself."""
    global _HALF_POOL
    if _HALF_POOL is None:
        _HALF_POOL = ThreadPoolExecutor(1, thread_name_prefix="classwise-half")
    half = (n + 1) // 2
    if threading.current_thread().name.startswith("classwise-half"):
        run(0, n)
        return
    other = _HALF_POOL.submit(run, half, n)
    run(0, half)
    other.result()


def negative_at(t: torch.Tensor) -> torch.Tensor:
    """The flat indices where t < 0. On the CPU NumPy's: torch's nonzero took 4.7 ms on 3M
    values where `np.flatnonzero(a < 0)` took 0.7."""
    if t.device.type == "cpu":
        return torch.from_numpy(np.flatnonzero(t.numpy() < 0))
    return t.lt(0).nonzero().flatten()


def random_words(n: int, generator, device=None) -> torch.Tensor:
    """n independent fair 0/1 draws packed 31 to an integer (int32, drawn in `in_streams`):
    draw 31 i + k is bit k of word i. About 30x fewer generator calls than one integer a draw."""
    words = torch.empty(-(-n // 31), dtype=torch.int32, device=device)
    return in_streams(words, generator, lambda out, _, g: out.random_(generator=g))  # [0, 2^31): 31 fair bits


def border_index(n: int, lo: int, hi: int, mode: str, device=None) -> torch.Tensor:
    """Source indices for positions lo..hi-1 of a length-n axis extended past its ends:
    `nearest` repeats the edge (scipy nearest, ImageMagick edge), `mirror` reflects about the
    edge pixel (OpenCV's default BORDER_REFLECT_101, scipy mirror), `symmetric` repeats it
    (scipy reflect)."""
    i = torch.arange(lo, hi, device=device)
    if mode == "nearest":
        return i.clamp(0, n - 1)
    if n == 1:
        return torch.zeros_like(i)
    if mode == "mirror":
        p = 2 * (n - 1)
        i = i.remainder(p)
        return torch.where(i > n - 1, p - i, i)
    if mode == "symmetric":
        i = i.remainder(2 * n)
        return torch.where(i >= n, 2 * n - 1 - i, i)
    raise ValueError(f"unknown border mode {mode}")


def pad(x: torch.Tensor, top: int, bottom: int, left: int, right: int, mode: str) -> torch.Tensor:
    h, w = x.shape[-2:]
    if x.ndim in (3, 4) and x.is_floating_point() and (mode == "nearest" or (mode == "mirror" and max(top, bottom) < h
                                                                              and max(left, right) < w)):
        # F.pad is 5-10x faster than the index gather below (which serves every other case)
        x4 = x if x.ndim == 4 else x[:, None]
        out = F.pad(x4, (left, right, top, bottom), mode="replicate" if mode == "nearest" else "reflect")
        return out if x.ndim == 4 else out[:, 0]
    rows = border_index(h, -top, h + bottom, mode, x.device)
    cols = border_index(w, -left, w + right, mode, x.device)
    return x.index_select(-2, rows).index_select(-1, cols)


def gaussian_kernel1d(sigma: float, truncate: float = 4.0) -> np.ndarray:
    """scipy.ndimage.gaussian_filter's kernel (what skimage.filters.gaussian uses)."""
    radius = int(truncate * sigma + 0.5)
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * t**2 / sigma**2)
    return k / k.sum()


@lru_cache(maxsize=256)
def _filter_matrix(n: int, kernel: tuple, mode: str) -> np.ndarray:
    k = np.asarray(kernel)
    r = len(k) // 2
    src = border_index(n, -r, n + r, mode).numpy()
    m = np.zeros((n, n))
    for o in range(n):
        np.add.at(m[o], src[o:o + 2 * r + 1], k)
    return m


def filter_matrix(n: int, kernel, mode: str) -> np.ndarray:
    """The (n, n) matrix of a 1-D correlation with `kernel` (odd length, centred) on a
    border-extended axis: a separable filter becomes two small matrix products."""
    return _filter_matrix(n, tuple(float(v) for v in kernel), mode)


def separable(x: torch.Tensor, k_rows, k_cols, mode: str) -> torch.Tensor:
    h, w = x.shape[-2:]
    return apply_rows_cols(x, filter_matrix(h, k_rows, mode), filter_matrix(w, k_cols, mode))


def to_sparse(m: np.ndarray, device) -> torch.Tensor:
    with warnings.catch_warnings():  # "sparse CSR support is in beta": the product it needs works
        warnings.simplefilter("ignore", UserWarning)
        return torch.as_tensor(m, dtype=torch.float32).to_sparse_csr().to(device)


def apply_operator(x: torch.Tensor, op: torch.Tensor) -> torch.Tensor:
    """A (H W, H W) sparse linear map applied to every channel."""
    n, c, h, w = x.shape
    flat = x.reshape(n * c, h * w).to(torch.float32).T
    return (op @ flat).T.reshape(n, c, h, w).to(x.dtype)


def sample_bilinear(x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, mode: str) -> torch.Tensor:
    """x (N, C, H, W) read at real coordinates rows, cols (N, H', W') with linear
    interpolation of the border-extended image (scipy map_coordinates order=1, cv2 INTER_LINEAR)."""
    n, c, h, w = x.shape
    r0, c0 = rows.floor(), cols.floor()
    fr, fc = (rows - r0).unsqueeze(1), (cols - c0).unsqueeze(1)
    r0, c0 = r0.long(), c0.long()
    lo_r, lo_c = int(r0.min()), int(c0.min())
    hi_r, hi_c = int(r0.max()) + 2, int(c0.max()) + 2
    rmap, cmap = border_index(h, lo_r, hi_r, mode, x.device), border_index(w, lo_c, hi_c, mode, x.device)
    flat = x.reshape(n, c, h * w)

    def at(ri, ci):
        idx = (rmap[ri - lo_r] * w + cmap[ci - lo_c]).view(n, 1, -1).expand(n, c, -1)
        return flat.gather(2, idx).view(n, c, *rows.shape[1:])

    top = at(r0, c0) * (1 - fc) + at(r0, c0 + 1) * fc
    bottom = at(r0 + 1, c0) * (1 - fc) + at(r0 + 1, c0 + 1) * fc
    return top * (1 - fr) + bottom * fr


def as_rgb(x: torch.Tensor) -> torch.Tensor:
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def luma(x: torch.Tensor) -> torch.Tensor:
    w = x.new_tensor(LUMA).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def colour_op(fn):
    """Apply an RGB formula to grey images too: as R = G = B in, their luma out."""
    def run(x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        out = fn(as_rgb(x), *args, **kwargs)
        return luma(out) if x.shape[1] == 1 else out
    run.__doc__, run.__name__ = fn.__doc__, fn.__name__
    return run


def zoom_matrix(n: int, zoom: float) -> np.ndarray:
    """The (n, n) linear map of the reference `clipped_zoom` on one axis: crop the centre
    ceil(n / zoom) pixels, scipy.ndimage.zoom them (order 1) to round(crop * zoom), keep the
    centre n."""
    ch = int(np.ceil(n / zoom))
    top = (n - ch) // 2
    out = int(round(ch * zoom))
    trim = (out - n) // 2
    m = np.zeros((n, n))
    for o in range(n):
        pos = (o + trim) * (ch - 1) / (out - 1) if out > 1 else 0.0
        i0 = min(int(np.floor(pos)), ch - 1)
        f = pos - i0 if i0 < ch - 1 else 0.0
        m[o, top + i0] += 1 - f
        if f > 0:
            m[o, top + i0 + 1] += f
    return m


def apply_rows_cols(x: torch.Tensor, mr: np.ndarray | torch.Tensor, mc: np.ndarray | torch.Tensor) -> torch.Tensor:
    """mr @ x @ mc^T on every channel: a separable linear resampling."""
    mr = torch.as_tensor(mr, dtype=x.dtype, device=x.device)
    mc = torch.as_tensor(mc, dtype=x.dtype, device=x.device)
    return torch.matmul(torch.matmul(mr, x), mc.transpose(-1, -2))


def motion_taps(radius: float, sigma: float, angle: torch.Tensor):
    """ImageMagick's MotionBlurImage: weights of a one-sided Gaussian over width =
    2 ceil(radius) + 1 taps, and each image's integer (row, col) offsets along `angle`
    (degrees): tap i reads the pixel at round(i cos a) columns and round(i sin a) rows away."""
    width = int(2 * math.ceil(radius) + 1)
    i = np.arange(width, dtype=np.float64)
    k = np.exp(-(i * i) / (2 * sigma * sigma))
    k /= k.sum()
    a = torch.deg2rad(angle.double())
    px, py = width * torch.sin(a), width * torch.cos(a)
    hyp = torch.hypot(px, py)
    ii = torch.arange(width, dtype=torch.float64, device=angle.device)
    dcol = torch.ceil(ii[None] * py[:, None] / hyp[:, None] - 0.5).long()
    drow = torch.ceil(ii[None] * px[:, None] / hyp[:, None] - 0.5).long()
    return k, drow, dcol


def directional_blur_tensor(x: torch.Tensor, radius: float, sigma: float, angle: torch.Tensor) -> torch.Tensor:
    """Each image blurred along its own angle; pixels past the border repeat the edge (the CUDA
    and MPS form: `filters.directional_blur` is the CPU's). Sorted by angle, the images that share a
    tap's (row, col) shift are one contiguous run, so every tap is a few slices of one
    edge-padded copy instead of a per-pixel gather."""
    n, c, h, w = x.shape
    order = torch.argsort(angle)
    k, drow, dcol = motion_taps(radius, sigma, angle[order])
    drow, dcol = drow.cpu().numpy(), dcol.cpu().numpy()  # NumPy: ~20% of the time went to indexing tensors
    top, bottom = max(0, -int(drow.min())), max(0, int(drow.max()))
    left, right = max(0, -int(dcol.min())), max(0, int(dcol.max()))
    xp = pad(x[order], top, bottom, left, right, "nearest")
    out = torch.zeros_like(x)
    shift_changes = (np.diff(drow, axis=0) != 0) | (np.diff(dcol, axis=0) != 0)  # (n - 1, taps)
    s0, s1, s2, s3 = xp.stride()
    for t in range(len(k)):
        cuts = [0, *(np.flatnonzero(shift_changes[:, t]) + 1).tolist(), n]
        for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):
            at = lo * s0 + (top + int(drow[lo, t])) * s2 + (left + int(dcol[lo, t])) * s3
            # views by as_strided and narrow: multi-axis slicing cost more than a short run's add
            out.narrow(0, lo, hi - lo).add_(xp.as_strided((hi - lo, c, h, w), (s0, s1, s2, s3), at), alpha=float(k[t]))
    return out[torch.argsort(order)]


def plasma_fractal(n: int, size: int, decay: float, generator, device=None, dtype=torch.float32) -> torch.Tensor:
    """The reference diamond-square height map (values in [0, 1]) for n images at once;
    random numbers are drawn in the reference's order (squares, then the two diamond sets,
    each step)."""
    a = torch.zeros(n, size, size, device=device, dtype=dtype)
    step, wibble = size, 100.0

    def wibbled(s):
        u = torch.rand(s.shape, generator=generator, device=device, dtype=dtype)
        return s / 4 + wibble * (u * 2 - 1) * wibble

    while step >= 2:
        half = step // 2
        corner = a[:, 0::step, 0::step]
        sq = corner + corner.roll(-1, 1)
        sq = sq + sq.roll(-1, 2)
        a[:, half::step, half::step] = wibbled(sq)
        dr, ul = a[:, half::step, half::step], a[:, 0::step, 0::step]
        a[:, 0::step, half::step] = wibbled(dr + dr.roll(1, 1) + ul + ul.roll(-1, 2))
        a[:, half::step, 0::step] = wibbled(dr + dr.roll(1, 2) + ul + ul.roll(-1, 1))
        step //= 2
        wibble /= decay
    a = a - a.amin((1, 2), keepdim=True)
    return a / a.amax((1, 2), keepdim=True)


def quantize(x: torch.Tensor) -> torch.Tensor:
    """8-bit levels as np.uint8 stores a float image (truncation), guarded against float32
    round-off just below a level."""
    return x.clamp(0, 1).mul_(255).add_(1e-4).floor_().div_(255)


def round8(x: torch.Tensor) -> torch.Tensor:
    """8-bit levels as Pillow rounds them."""
    return x.clamp(0, 1).mul_(255).add_(0.5).floor_().div_(255)
