"""Options and value parsers shared by several verbs."""

from __future__ import annotations

import argparse
from fractions import Fraction
from pathlib import Path


def parse_eps(text: str) -> float:
    """`0.1`, `8/255` or `8` (values above 1 are read as pixel levels out of 255)."""
    try:
        value = float(Fraction(text))
    except (ValueError, ZeroDivisionError) as exc:
        raise argparse.ArgumentTypeError(f"eps must be a number like 0.1 or 8/255, got '{text}'") from exc
    if value < 0:
        raise argparse.ArgumentTypeError("eps must be >= 0")
    return value / 255 if value > 1 else value


def common_options(p: argparse.ArgumentParser, dataset_default="fashion-mnist") -> None:
    p.add_argument("--dataset", default=dataset_default, help="data set name (see `classwise datasets`)")
    p.add_argument("--data-dir", help="folder to look in first (else $CLASSWISE_DATA, ./data, ~/.cache/classwise)")
    p.add_argument("--download", action="store_true", help="download the data set if it is not found")
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N, mps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eps", type=parse_eps, help="threat radius in [0,1] pixel units; default 0.1 grey, 8/255 colour")
    p.add_argument("--norm", choices=["linf", "l2"], default="linf")
    p.add_argument("--quiet", action="store_true", help="no progress output")


def train_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--arch", default="mnist-cnn", help="architecture (see `classwise models`)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--optimizer", choices=["sgd", "adam", "adamw"])
    p.add_argument("--lr", type=float)
    p.add_argument("--momentum", type=float)
    p.add_argument("--nesterov", action="store_true", default=None)
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--schedule", choices=["constant", "step", "multistep", "cyclic", "cosine"])
    p.add_argument("--milestones", type=lambda s: [int(v) for v in s.split(",")], help="e.g. 100,150")
    p.add_argument("--attack-steps", type=int, help="PGD steps for pgd adversarial training")
    p.add_argument("--train-limit", type=int, help="train on a stratified subset of this size")
    p.add_argument("--eval-subset", type=int, help="size of the fixed validation subset evaluated after each epoch")
    p.add_argument("--eval-steps", type=int, help="PGD steps of the per-epoch evaluation")
    p.add_argument("--test-limit", type=int, help="final evaluation on a stratified test subset of this size")
    p.add_argument("--test-steps", type=int, help="PGD steps of the final test evaluation (default 20)")
    p.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    p.add_argument("--out", type=Path, help="run directory")


_TRAIN_KEYS = ("arch", "epochs", "batch_size", "optimizer", "lr", "momentum", "nesterov", "weight_decay",
               "schedule", "milestones", "attack_steps", "train_limit", "eval_subset", "eval_steps", "test_limit",
               "test_steps", "eps", "norm", "seed", "dataset")


def overrides(args) -> dict:
    return {k: getattr(args, k) for k in _TRAIN_KEYS if getattr(args, k, None) is not None}
