"""A faster input gradient through a network's first convolution, for the attack passes.

An attack differentiates the loss with respect to the image, so every pass ends with the
input gradient of the first convolution: a convolution *to* 1-3 channels, a shape oneDNN
handles poorly on CPU. For the MNIST CNN's 5x5 conv (1 -> 32 channels, batch 128, 28 px) it
took 17-22 ms, more than the rest of that layer's forward and backward together; one matmul
and k*k shifted adds give the same gradient in 4.3 ms (channels-last) / 6.5 ms (contiguous).
The first-layer conv of ResNet-20 (3 -> 16, 3x3, 32 px) gains less (4.0 -> 3.6 ms).
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from ..precision import is_compiled

MAX_IN_CHANNELS = 3


class _FirstConv(torch.autograd.Function):
    """conv2d whose backward gives only the input gradient: an attack never needs the
    weights' (they come in detached)."""

    @staticmethod
    def forward(ctx, x, weight, bias, padding):
        ctx.save_for_backward(weight)
        ctx.shape, ctx.padding, ctx.dtype = x.shape, padding, x.dtype
        return F.conv2d(x, weight, bias, padding=padding)

    @staticmethod
    def backward(ctx, g):
        weight, = ctx.saved_tensors
        # under autocast the forward ran in bf16/fp16: the gradient is summed in the weights' fp32
        # (a no-op at fp32) and given back in the input's dtype
        g = g.to(weight.dtype)
        (ph, pw), (h, w) = ctx.padding, ctx.shape[2:]
        n, c_out, ho, wo = g.shape
        c_in, kh, kw = weight.shape[1:]
        # cols[(ci, a, b), (n, i, j)] = sum_c w[c, ci, a, b] * g[n, c, i, j]; a free view for channels-last g
        cols = (weight.reshape(c_out, -1).t() @ g.permute(0, 2, 3, 1).reshape(-1, c_out).t()).view(
            c_in, kh, kw, n, ho, wo)
        out = g.new_zeros(c_in, n, h + 2 * ph, w + 2 * pw)
        for a in range(kh):
            for b in range(kw):
                out[:, :, a:a + ho, b:b + wo] += cols[:, a, b]
        return out[:, :, ph:ph + h, pw:pw + w].permute(1, 0, 2, 3).to(ctx.dtype), None, None, None


def _eligible(m: nn.Module) -> bool:
    return (type(m) is nn.Conv2d and m.in_channels <= MAX_IN_CHANNELS and m.groups == 1
            and m.stride == (1, 1) and m.dilation == (1, 1) and m.padding_mode == "zeros"
            and isinstance(m.padding, tuple) and "forward" not in vars(m))


def _forward(conv: nn.Conv2d):
    def forward(x):
        bias = None if conv.bias is None else conv.bias.detach()
        return _FirstConv.apply(x, conv.weight.detach(), bias, conv.padding)
    return forward


@contextmanager
def fast_input_grad(model: nn.Module):
    """Within the block, `model`'s few-channel convolutions give the input gradient as above
    (the same values up to float rounding) and no weight gradient; on leaving they are plain
    `nn.Conv2d` again. Only for passes that differentiate with respect to the input."""
    if is_compiled(model):  # the compiled graph has its own kernels; patching a conv would recompile it
        yield model
        return
    convs = [m for m in model.modules() if _eligible(m)]
    for conv in convs:
        conv.forward = _forward(conv)
    try:
        yield model
    finally:
        for conv in convs:
            vars(conv).pop("forward", None)
