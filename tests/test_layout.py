"""models/layout.py: the layers whose backward keeps a channels-last network's gradient channels-last
compute the stock ops' values and gradients bit for bit, and stay calls in the folded copy."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from classwise.attacks.fold import folded
from classwise.models import create_model
from classwise.models.layout import flatten, global_avg_pool, subsample_pad

CASES = [
    ("global_avg_pool", global_avg_pool, lambda x: F.adaptive_avg_pool2d(x, 1).flatten(1)),
    ("subsample_pad", lambda x: subsample_pad(x, 3, 5), lambda x: F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, 3, 5))),
    ("flatten", flatten, lambda x: x.flatten(1)),
]


@pytest.mark.parametrize("layout", [torch.channels_last, torch.contiguous_format], ids=["channels_last", "nchw"])
@pytest.mark.parametrize("name,ours,stock", CASES, ids=[c[0] for c in CASES])
def test_same_values_and_gradients_as_the_stock_ops_in_the_input_layout(name, ours, stock, layout):
    torch.manual_seed(0)
    x = torch.randn(4, 6, 8, 8).contiguous(memory_format=layout)
    # the gradient as it reaches the layer before (a leaf's .grad is re-laid out to its own strides)
    a, b = (x.clone().requires_grad_() * 1 for _ in range(2))
    out_a, out_b = ours(a), stock(b)
    assert torch.equal(out_a, out_b)
    g = torch.randn_like(out_a)
    (grad_a,), (grad_b,) = torch.autograd.grad(out_a, a, g), torch.autograd.grad(out_b, b, g)
    assert torch.equal(grad_a, grad_b)
    assert grad_a.is_contiguous(memory_format=layout)
    if layout == torch.channels_last:  # what the stock backward gets wrong, and these exist for
        assert not grad_b.is_contiguous(memory_format=torch.channels_last)


def test_the_folded_copy_keeps_them_as_calls():
    model = create_model("resnet20", num_classes=10).eval().to(memory_format=torch.channels_last)
    copy = folded(model)
    called = {getattr(n.target, "__name__", "") for n in copy.graph.nodes if n.op == "call_function"}
    assert {"global_avg_pool", "subsample_pad"} <= called
    x = torch.rand(2, 3, 32, 32).contiguous(memory_format=torch.channels_last).requires_grad_()
    copy(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
