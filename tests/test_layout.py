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


class _OutOfPlace(torch.overrides.TorchFunctionMode):
    """Runs a network's in-place ReLU and residual add out of place: the reference computation."""

    converted = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func is F.relu and kwargs.get("inplace"):
            kwargs["inplace"] = False
            self.converted += 1
        elif func is torch.Tensor.add_ and args[0].is_floating_point():  # not BatchNorm's batch counter
            func = torch.add
            self.converted += 1
        return func(*args, **kwargs)


def _small_nets():
    from classwise.models.resnet import Bottleneck, PreActBlock, ResNet
    from classwise.models.wide_resnet import WideResNet

    return {"resnet20": create_model("resnet20", num_classes=10),
            "preact": ResNet(PreActBlock, [1, 1], widths=(8, 16), preact=True),
            "bottleneck": ResNet(Bottleneck, [1, 1], widths=(8, 16)),
            "wide": WideResNet(10, 1)}


@pytest.mark.parametrize("name", ["resnet20", "preact", "bottleneck", "wide"])
def test_in_place_relu_and_add_compute_the_out_of_place_network_bit_for_bit(name):
    torch.manual_seed(0)
    nets = [_small_nets()[name].to(memory_format=torch.channels_last) for _ in range(2)]
    nets[1].load_state_dict(nets[0].state_dict())
    x = torch.rand(4, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    got, reference = [], _OutOfPlace()
    for net, mode in zip(nets, (reference, None), strict=True):
        xi = x.clone().requires_grad_()
        with mode if mode is not None else torch.enable_grad():
            net.train()(xi).square().sum().backward()  # BatchNorm in train mode: batch statistics
            eval_grad, = torch.autograd.grad(folded(net.eval())(xi).sum(), xi)  # the attacks' folded copy
        got.append([xi.grad, eval_grad, *(p.grad for p in net.parameters()), *net.buffers()])
    assert all(torch.equal(a, b) for a, b in zip(*got, strict=True))
    blocks = sum(type(m).__name__.endswith("Block") or type(m).__name__ == "Bottleneck" for m in nets[0].modules())
    assert reference.converted >= 2 * blocks  # the network does run them in place (what it is faster for)
