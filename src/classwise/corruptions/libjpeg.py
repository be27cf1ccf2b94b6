"""Pillow's JPEG round trip (libjpeg, islow DCT, 4:2:0 chroma) for a whole batch at once, to the
bit. Of libjpeg's steps only the DCT, quantisation and inverse DCT of each 8x8 block need the
codec, and a block knows nothing of the others; the steps around them are done here as tensor
ops, as libjpeg-turbo computes them: RGB to YCbCr in 16-bit fixed point (jccolor.c), each 2x2
chroma block averaged with a bias of 1 or 2 alternating by column (jcsample.c), the decoded
chroma upsampled by 3:1 triangle weights with the image's edge samples repeated
(h2v2_fancy_upsample, jdsample.c) and converted back (jdcolor.c). Each plane of the batch, tiled
into one grayscale image, then goes through the codec in one call instead of a call per image,
whose setup costs more than coding its 32x32 pixels. All fixed-point sums are integers below
2^24, which float32 holds exactly."""

from __future__ import annotations

import io
import math
import tempfile
from functools import lru_cache

import numpy as np
import torch
from PIL import Image


def _fix(v: float) -> int:
    return int(v * 65536 + 0.5)


_HALF, _CENTRE = 1 << 15, 128 << 16
TO_YCC = torch.tensor([[_fix(0.299), _fix(0.587), _fix(0.114)],
                       [-_fix(0.16874), -_fix(0.33126), _fix(0.5)],
                       [_fix(0.5), -_fix(0.41869), -_fix(0.08131)]], dtype=torch.float32)
YCC_OFFSET = torch.tensor([[_HALF], [_CENTRE + _HALF - 1], [_CENTRE + _HALF - 1]], dtype=torch.float32)
TO_RGB = torch.tensor([[0, _fix(1.402)], [-_fix(0.34414), -_fix(0.71414)], [_fix(1.772), 0]], dtype=torch.float32)
RGB_OFFSET = _HALF - 128 * TO_RGB.sum(1, keepdim=True)  # Cb and Cr enter centred on 128


def aligned(channels: int, h: int, w: int) -> bool:
    """Whether the mosaic gives libjpeg's result for this shape: any grey image (padded to
    whole blocks by repeating its edge, as libjpeg pads); colour in whole 16x16 MCUs (else
    libjpeg pads its chroma planes after downsampling and fills in dummy blocks)."""
    return channels == 1 or (channels == 3 and h % 16 == 0 and w % 16 == 0)


@lru_cache(maxsize=16)
def quant_tables(quality: int) -> tuple[list[int], list[int]]:
    """Pillow's luminance and chrominance tables at this quality, read back from a JPEG it wrote."""
    buf = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buf, "JPEG", quality=quality)
    tables = Image.open(buf).quantization
    return list(tables[0]), list(tables[1])


@lru_cache(maxsize=16)
def _upsample_matrix(n: int) -> torch.Tensor:
    """(2n, n): output 2i weighs sample i by 3 and i - 1 by 1, output 2i + 1 samples i and i + 1."""
    u = torch.zeros(2 * n, n)
    i = torch.arange(n)
    u[2 * i, i] = 3
    u[2 * i + 1, i] = 3
    u[2 * i, (i - 1).clamp(min=0)] += 1
    u[2 * i + 1, (i + 1).clamp(max=n - 1)] += 1
    return u


def codec(planes: torch.Tensor, table: list[int]) -> torch.Tensor:
    """(N, h, w) 8-bit levels (h, w multiples of 8), tiled into one grayscale image, through
    libjpeg with this quantisation table and back."""
    n, h, w = planes.shape
    cols = math.ceil(math.sqrt(n))
    rows = -(-n // cols)
    tiles = torch.zeros(rows * cols, h, w, dtype=torch.uint8)
    tiles[:n] = planes
    mosaic = tiles.view(rows, cols, h, w).transpose(1, 2).reshape(rows * h, cols * w)
    with tempfile.TemporaryFile() as f:  # Pillow's encoder holds the GIL writing to a BytesIO, not to a file
        Image.fromarray(mosaic.numpy(), "L").save(f, "JPEG", qtables=[table])
        f.seek(0)
        decoded = torch.from_numpy(np.array(Image.open(io.BytesIO(f.read()))))
    return decoded.view(rows, h, cols, w).transpose(1, 2).reshape(rows * cols, h, w)[:n].float()


def one_by_one(levels: torch.Tensor, quality: int) -> torch.Tensor:
    """`roundtrip` through Pillow an image at a time (the shapes that are not `aligned`)."""
    out = torch.empty_like(levels)
    for i, im in enumerate(levels.to(torch.uint8).permute(0, 2, 3, 1).numpy()):
        buf = io.BytesIO()
        Image.fromarray(im[..., 0] if im.shape[-1] == 1 else im).save(buf, "JPEG", quality=quality)
        out[i] = torch.from_numpy(np.array(Image.open(buf))).view(im.shape).permute(2, 0, 1)
    return out


def roundtrip(levels: torch.Tensor, quality: int) -> torch.Tensor:
    """Pillow's `save(..., 'JPEG', quality=quality)` and reload of each image of (N, C, H, W)
    float 8-bit levels on the CPU; grey images as grey JPEGs."""
    n, c, h, w = levels.shape
    if n == 0 or not aligned(c, h, w):
        return one_by_one(levels, quality)
    luma, chroma = quant_tables(quality)
    if c == 1:
        ph, pw = -h % 8, -w % 8
        padded = torch.nn.functional.pad(levels, (0, pw, 0, ph), mode="replicate") if ph or pw else levels
        return codec(padded[:, 0], luma)[:, None, :h, :w]
    ycc = torch.matmul(TO_YCC, levels.reshape(n, 3, h * w)).add_(YCC_OFFSET).mul_(1 / 65536).floor_()
    ycc = ycc.view(n, 3, h, w)
    y = codec(ycc[:, 0], luma)
    cbcr = ycc[:, 1:, 0::2, 0::2] + ycc[:, 1:, 1::2, 0::2]
    cbcr.add_(ycc[:, 1:, 0::2, 1::2]).add_(ycc[:, 1:, 1::2, 1::2])
    cbcr[..., 0::2] += 1
    cbcr[..., 1::2] += 2
    cbcr = codec(cbcr.mul_(0.25).floor_().view(2 * n, h // 2, w // 2), chroma)
    up = torch.matmul(torch.matmul(_upsample_matrix(h // 2), cbcr), _upsample_matrix(w // 2).T)
    up[..., 0::2] += 8
    up[..., 1::2] += 7
    up = up.mul_(1 / 16).floor_().view(n, 2, h * w)
    rgb = torch.matmul(TO_RGB, up).add_(RGB_OFFSET).mul_(1 / 65536).floor_().view(n, 3, h, w)
    return rgb.add_(y[:, None]).clamp_(0, 255)
