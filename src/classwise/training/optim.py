"""Optimizers and learning-rate schedules, stepped once per iteration."""

from __future__ import annotations

import math

import torch

from ..config import TrainConfig


def make_optimizer(params, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                               weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def lr_factor(cfg: TrainConfig, epoch: float) -> float:
    """Multiplier of cfg.lr at (fractional) epoch `epoch`: the schedule's, ramped up linearly
    over the warm-up epochs."""
    warm = min(1.0, epoch / cfg.warmup_epochs) if cfg.warmup_epochs else 1.0
    return warm * _schedule_factor(cfg, epoch)


def _schedule_factor(cfg: TrainConfig, epoch: float) -> float:
    total = cfg.epochs
    if cfg.schedule == "constant":
        return 1.0
    if cfg.schedule == "cyclic":
        # one cycle: linear 0 -> lr over the first 2/5 of training, then back to 0
        # ("Fast is better than free", Wong et al. 2020)
        peak = 0.4 * total
        return epoch / peak if epoch < peak else max(0.0, (total - epoch) / (total - peak))
    if cfg.schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * min(epoch, total) / total))
    if cfg.schedule == "step":
        size = cfg.step_size or max(1, total // 3)
        return cfg.gamma ** int(epoch // size)
    milestones = cfg.milestones or [total // 2, (3 * total) // 4]
    gammas = cfg.gamma if isinstance(cfg.gamma, list) else [cfg.gamma] * len(milestones)
    return math.prod(g for m, g in zip(milestones, gammas, strict=True) if epoch >= m)


def make_scheduler(optimizer, cfg: TrainConfig, steps_per_epoch: int):
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda it: lr_factor(cfg, it / steps_per_epoch))
