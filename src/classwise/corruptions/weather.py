"""Weather: snow (a zoomed, thresholded, motion-blurred noise layer), frost (the authors'
frost photographs, needs --frost-dir), fog (a diamond-square plasma fractal) and spatter
(water drops with their rims from Canny edges, or mud)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from ..errors import ClasswiseError
from . import ops
from .kernels import filters, opencv
from .registry import param, register_corruption

FROST_FILES = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg")  # the reference draws of 5
FROST_NEEDS = (f"the frost photographs of Hendrycks & Dietterich ({', '.join(FROST_FILES)}; in ImageNet-C/create_c "
               "of their robustness repository, and shipped by `pip install imagecorruptions-imaug`): pass "
               "--frost-dir DIR, or install that package")


def snow_draws(x: torch.Tensor, generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """What every severity of snow shares: the layer's standard normals (n, 1, h, w), the
    motion blur's angle and the brightened image max(x, 1.5 grey + 0.5)."""
    n, c, h, w = x.shape
    z = ops.in_streams(torch.empty((n, 1, h, w), device=x.device, dtype=x.dtype), generator,
                       lambda out, _, g: out.normal_(generator=g))
    angle = torch.rand(n, generator=generator, device=x.device, dtype=torch.float64) * 90 - 135
    grey = ops.luma(x) if c == 3 else x
    return z, angle, torch.maximum(x, grey * 1.5 + 0.5)


@register_corruption("weather", [(0.1, 0.2, 1, 0.6, 8, 3, 0.95), (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
                                 (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9), (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
                                 (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8)], chunk=None, draw=snow_draws)
def snow(x, severity, drawn):
    loc, scale, zoom, thr, radius, sigma, keep = param("snow", severity)
    z, angle, bright = drawn
    h, w = x.shape[-2:]
    layer = ops.apply_rows_cols(z * scale + loc, ops.zoom_matrix(h, zoom), ops.zoom_matrix(w, zoom))
    layer = ops.quantize(torch.where(layer < thr, 0.0, layer))  # stored as an 8-bit PNG
    layer = ops.round8(filters.directional_blur(layer, radius, sigma, angle))  # ImageMagick writes 8 bits back
    out = torch.lerp(bright, x, keep)  # keep x + (1 - keep) max(x, 1.5 grey + 0.5)
    return out.add_(layer).add_(layer.flip(-1, -2)).clamp_(0, 1)


def installed_frost_dir() -> str | None:
    """The frost folder of an installed imagecorruptions (or its -imaug fork), found without
    importing it (it imports OpenCV and numba)."""
    from importlib.util import find_spec

    try:
        spec = find_spec("imagecorruptions")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    folder = Path(spec.origin).parent / "frost"
    return str(folder) if all((folder / f).is_file() for f in FROST_FILES) else None


def resolve_frost_dir(frost_dir) -> str | None:
    """The folder the frost photographs are read from: the one given, else an installed package's."""
    return str(frost_dir) if frost_dir else installed_frost_dir()


def frost_textures(frost_dir) -> list[torch.Tensor]:
    """The five photographs as (3, h, w) floats, scaled by 0.2 as cv2.resize(INTER_LINEAR)
    does (half-pixel centres, no anti-aliasing) and stored as 8 bits."""
    frost_dir = resolve_frost_dir(frost_dir)
    if not frost_dir:
        raise ClasswiseError(f"frost is unavailable: it needs {FROST_NEEDS}")
    return list(_load_textures(str(Path(frost_dir).expanduser().resolve())))


@lru_cache(maxsize=2)
def _load_textures(frost_dir: str) -> tuple[torch.Tensor, ...]:
    from PIL import Image

    missing = [f for f in FROST_FILES if not os.path.isfile(os.path.join(frost_dir, f))]
    if missing:
        raise ClasswiseError(f"frost is unavailable: {frost_dir} lacks {', '.join(missing)}; it needs {FROST_NEEDS}")
    out = []
    for f in FROST_FILES:
        img = torch.from_numpy(np.asarray(Image.open(os.path.join(frost_dir, f)).convert("RGB"), dtype=np.float32))
        img = img.permute(2, 0, 1)[None] / 255
        h, w = img.shape[-2:]
        oh, ow = int(round(h * 0.2)), int(round(w * 0.2))
        rows = ((torch.arange(oh, dtype=torch.float64) + 0.5) / 0.2 - 0.5).clamp(min=0)
        cols = ((torch.arange(ow, dtype=torch.float64) + 0.5) / 0.2 - 0.5).clamp(min=0)
        rr, cc = torch.meshgrid(rows, cols, indexing="ij")
        out.append(ops.round8(ops.sample_bilinear(img, rr[None].float(), cc[None].float(), "nearest"))[0])
    return tuple(out)


@register_corruption("weather", [(1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)], needs=FROST_NEEDS)
def frost(x, severity, generator=None, *, frost_dir=None):
    a, b = param("frost", severity)
    textures = frost_textures(frost_dir)
    n, c, h, w = x.shape
    pick = torch.randint(0, len(textures), (n,), generator=generator, device=x.device).cpu()
    u = torch.rand((n, 2), generator=generator, device=x.device, dtype=torch.float64).cpu()
    crops = []
    for i in range(n):
        t = textures[int(pick[i])]
        if t.shape[1] <= h or t.shape[2] <= w:
            raise ClasswiseError(f"frost: texture {FROST_FILES[int(pick[i])]} is smaller than the {h}x{w} images")
        r0, c0 = int(u[i, 0] * (t.shape[1] - h)), int(u[i, 1] * (t.shape[2] - w))
        crops.append(t[:, r0:r0 + h, c0:c0 + w])
    layer = torch.stack(crops).to(x.device, x.dtype)
    if c == 1:
        layer = ops.luma(layer)
    return (a * x + b * layer).clamp_(0, 1)


@register_corruption("weather", [(0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)], chunk=1 << 21)
def fog(x, severity, generator=None):
    a, decay = param("fog", severity)
    n, c, h, w = x.shape
    size = max(32, 1 << (max(h, w) - 1).bit_length())  # the reference's 32, or the next power of two
    layer = ops.plasma_fractal(n, size, decay, generator, x.device)[:, None, :h, :w].to(x.dtype)
    top = x.amax((1, 2, 3), keepdim=True)
    return ((x + a * layer) * top / (top + a)).clamp_(0, 1)


def spatter_draws(x: torch.Tensor, generator) -> torch.Tensor:
    """The liquid layer's standard normals (n, 1, h, w), which every severity scales and shifts."""
    n, _, h, w = x.shape
    return ops.in_streams(torch.empty((n, 1, h, w), device=x.device, dtype=x.dtype), generator,
                          lambda out, _, g: out.normal_(generator=g))


@register_corruption("weather", [(0.62, 0.1, 0.7, 0.7, 0.5, 0), (0.65, 0.1, 0.8, 0.7, 0.5, 0),
                                 (0.65, 0.3, 1, 0.69, 0.5, 0), (0.65, 0.1, 0.7, 0.69, 0.6, 1),
                                 (0.65, 0.1, 0.5, 0.68, 0.6, 1)], extra=True, chunk=None, draw=spatter_draws)
@ops.colour_op
def spatter(x, severity, z):
    loc, scale, sigma, thr, intensity, mud = param("spatter", severity)
    liquid = filters.gaussian_blur(z * scale + loc, sigma)
    if not mud:  # water: pale turquoise drops, bright at their rims
        return opencv.water_spatter(x, liquid[:, 0], thr, intensity, (175, 238, 238)).to(x.dtype)
    # mud: brown blots (the published code zeroes the layer below thr first: no value above thr changes)
    m = filters.gaussian_blur((liquid > thr).to(x.dtype), intensity)
    m = torch.where(m < 0.8, 0.0, m)
    colour = x.new_tensor([63, 42, 20]).view(1, 3, 1, 1) / 255
    return torch.lerp(x, colour.expand_as(x), m).clamp_(0, 1)  # x (1 - m) + colour m
