"""Noise: gaussian, shot (Poisson), impulse (salt and pepper) and speckle, per pixel and channel."""

from __future__ import annotations

import torch

from .registry import param, register_corruption


def _rand(x, generator):
    return torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def _randn(x, generator):
    return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


@register_corruption("noise", [0.04, 0.06, 0.08, 0.09, 0.10])
def gaussian_noise(x, severity, generator=None):
    return _randn(x, generator).mul_(param("gaussian_noise", severity)).add_(x).clamp_(0, 1)


@register_corruption("noise", [500, 250, 100, 75, 50])
def shot_noise(x, severity, generator=None):
    c = param("shot_noise", severity)
    return torch.poisson(x * c, generator=generator).div_(c).clamp_(0, 1)


@register_corruption("noise", [0.01, 0.02, 0.03, 0.05, 0.07])
def impulse_noise(x, severity, generator=None):
    """skimage's random_noise(mode='s&p'): each value flipped with probability `amount`,
    to 1 or 0 with equal odds. One uniform u serves both draws: given u < amount, u / amount
    is uniform, so u < amount / 2 is the fair coin (half the random numbers of two draws)."""
    amount = param("impulse_noise", severity)
    u = _rand(x, generator)
    return torch.where(u < amount, (u < amount / 2).to(x.dtype), x)


@register_corruption("noise", [0.06, 0.1, 0.12, 0.16, 0.2], extra=True)
def speckle_noise(x, severity, generator=None):
    return _randn(x, generator).mul_(param("speckle_noise", severity)).add_(1).mul_(x).clamp_(0, 1)
