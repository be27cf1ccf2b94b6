"""Small digits models for the robustness-evaluation tests, trained once per test session
(cached here rather than in fixtures so that several test files share them)."""

import functools

import torch
import torch.nn.functional as F
from torch import nn

from classwise.attacks import perturb
from classwise.data import load_dataset
from classwise.models import create_model

EPS = 0.1  # the grey-image default threat radius


@functools.cache
def digits():
    return load_dataset("digits")


def _train(build, epochs: int, adversarial: bool, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)  # before the weights are drawn: the same model whatever ran before
    model = build()
    data = digits().train
    x, y = data.images.float() / 255, data.labels
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=gen)
        for i in range(0, len(y), 64):
            xb, yb = x[order[i:i + 64]], y[order[i:i + 64]]
            if adversarial:  # Madry et al.'s PGD with a random start, shortened to 3 steps of eps/2
                xb = perturb(model, xb, yb, eps=EPS, steps=3, alpha=EPS / 2, track=False, generator=gen).x_adv
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval().requires_grad_(False)


@functools.cache
def robust_digits() -> nn.Module:
    """mnist-cnn adversarially trained on digits at Linf eps 0.1."""
    stats = digits().train.channel_stats()
    return _train(lambda: create_model("mnist-cnn", 10, 1, 8, *stats), epochs=6, adversarial=True)


class Binarized(nn.Module):
    """Thresholds its input at 0.5 before the network: the forward pass is exact, the input
    gradient is zero everywhere (shattered gradients), and noise of up to 0.5 barely moves it."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net((x > 0.5).float())


@functools.cache
def binarized_digits() -> nn.Module:
    stats = digits().train.channel_stats()
    return _train(lambda: Binarized(create_model("mnist-cnn", 10, 1, 8, *stats)), epochs=6, adversarial=False)


class NoisyLogits(nn.Module):
    """A randomized defense (stochastic gradients): fresh noise on the logits at every call,
    enough to flip the borderline images from one call to the next."""

    def __init__(self, net: nn.Module, sigma: float = 3.0):
        super().__init__()
        self.net, self.sigma = net, sigma

    def forward(self, x):
        logits = self.net(x)
        return logits + self.sigma * torch.randn_like(logits)
