"""Options and value parsers shared by several verbs, and the checks every verb makes of
its paths before it does any work."""

from __future__ import annotations

import argparse
import math
import sys
from fractions import Fraction
from pathlib import Path
from typing import Literal, get_args, get_origin

from ..io import check_out_dir, check_out_file  # noqa: F401 - the verbs' path checks


class OneLineParser(argparse.ArgumentParser):
    """argparse's errors as one line (usage is one `--help` away), exit code 2."""

    def error(self, message):
        sys.stderr.write(f"{self.prog}: error: {' '.join(message.split())} (see `{self.prog} --help`)\n")
        sys.exit(2)


def parse_eps(text: str) -> float:
    """`0.1`, `8/255` or `8` (values above 1 are read as pixel levels out of 255)."""
    try:
        value = float(Fraction(text))
    except (ValueError, ZeroDivisionError, OverflowError) as exc:
        raise argparse.ArgumentTypeError(f"eps must be a finite number like 0.1 or 8/255, got '{text}'") from exc
    if value < 0:
        raise argparse.ArgumentTypeError(f"eps must be >= 0, got '{text}'")
    if value > 255:
        raise argparse.ArgumentTypeError(f"eps {text} is more than the whole pixel range: give it in [0, 1] "
                                         "(e.g. 0.1) or in pixel levels up to 255 (e.g. 8)")
    return value / 255 if value > 1 else value


def finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a number, got '{text}'") from exc
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got '{text}'")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from exc
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


SEED_MAX = 2**32 - 1


def seed_value(text: str) -> int:
    """A seed: a whole number from 0 to 2^32 - 1 (what every generator we seed takes)."""
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"a seed is a whole number from 0 to {SEED_MAX}, got '{text}'") from exc
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"a seed is a whole number from 0 to {SEED_MAX} (2^32 - 1), got {value}")
    return value


def positive_float(text: str) -> float:
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number above 0, got {text}")
    return value


def known_names(text: str, known, what: str, *, allow_all: bool = False) -> list[str]:
    """Names separated by commas or spaces, each one of `known` (`all` for every one when
    `allow_all`); unknown names are refused with the choices."""
    names = [v.strip() for v in text.replace(",", " ").split() if v.strip()]
    if allow_all and names == ["all"]:
        return list(known)
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown {what}(s) {', '.join(unknown) or '(none given)'}; "
                                         f"choose {'all or ' if allow_all else ''}from: {', '.join(known)}")
    return names


def int_list(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected whole numbers separated by commas (e.g. 100,150), "
                                         f"got '{text}'") from exc


def common_options(p: argparse.ArgumentParser, dataset_default="fashion-mnist") -> None:
    p.add_argument("--dataset", default=dataset_default, help="data set name (see `classwise datasets`)")
    p.add_argument("--data-dir", help="folder to look in first (else $CLASSWISE_DATA, ./data, ~/.cache/classwise)")
    p.add_argument("--download", action="store_true", help="download the data set if it is not found")
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N, mps")
    p.add_argument("--seed", type=seed_value, default=0, help=f"0 to {SEED_MAX}")
    p.add_argument("--eps", type=parse_eps, help="threat radius in [0,1] pixel units; default 0.1 grey, 8/255 colour")
    p.add_argument("--norm", choices=["linf", "l2"], default="linf")
    p.add_argument("--quiet", action="store_true", help="no progress output")


def precision_options(p: argparse.ArgumentParser, what: str) -> None:
    """--precision and --compile (classwise/precision.py)."""
    p.add_argument("--precision", choices=["fp32", "bf16", "fp16"], help=f"arithmetic of {what}: fp32 (default), or "
                   "autocast to bf16 / fp16 (fp16 with a gradient scaler); verdicts and AutoAttack stay fp32")
    p.add_argument("--compile", action="store_true", default=None, help=f"torch.compile the model for {what} "
                   "(needs a C++ compiler on the CPU; pays off on GPUs)")


# the run fields `train` and `study` take as flags, each made from its field in config/ (its
# description the help)
TRAIN_FLAGS = ("arch", "epochs", "batch_size", "optimizer", "lr", "momentum", "nesterov", "weight_decay", "schedule",
               "milestones", "attack_steps", "train_limit", "imbalance", "eval_subset", "eval_steps", "test_limit",
               "test_steps")


def field_option(p, model: type, name: str) -> None:
    """`--name` for the pydantic field `name` of `model`: its type, its choices, its description."""
    info = model.model_fields[name]
    kinds = [a for a in (get_args(info.annotation) or (info.annotation,)) if a is not type(None)]
    kw = {"help": info.description}
    if get_origin(info.annotation) is Literal:
        kw["choices"] = list(get_args(info.annotation))
    elif kinds == [bool]:
        kw.update(action="store_true", default=None)
    elif list[int] in kinds:
        kw["type"] = int_list
    else:
        kw["type"] = next((t for t in (int, float) if t in kinds), str)
    p.add_argument("--" + name.replace("_", "-"), **kw)


def train_options(p: argparse.ArgumentParser) -> None:
    from ..config.run import RunConfig

    for name in TRAIN_FLAGS:
        field_option(p, RunConfig, name)
    precision_options(p, "the training step and the training and validation attacks' forward passes")
    p.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint (a finished "
                   "one is re-reported)")
    p.add_argument("--overwrite", action="store_true", help="replace what --out holds (without it, or --resume, a "
                   "folder that holds a result is refused)")
    p.add_argument("--force", action="store_true", help="run even with method settings that make it a no-op "
                   "within the run (e.g. a warm-up past the last epoch); they are warnings then")
    p.add_argument("--out", type=Path, help="run directory")


_TRAIN_KEYS = (*TRAIN_FLAGS, "eps", "norm", "seed", "dataset", "precision", "compile")


def overrides(args, default_arch: bool = True) -> dict:
    """The run fields given on the command line; the architecture defaults to the data set's
    (`default_arch=False`: left to the study preset, which resolves it per data set)."""
    fields = {k: getattr(args, k) for k in _TRAIN_KEYS if getattr(args, k, None) is not None}
    if default_arch and "arch" not in fields and "dataset" in fields:
        from ..data import get_spec

        fields["arch"] = get_spec(fields["dataset"]).default_arch
    return fields
