"""`--corruptions [all|NAMES] --severities 1-5 --frost-dir DIR`, shared by `evaluate` and
`study`. Names are checked against the corruptions registry when the option is used (importing
it at parser build would import torch for `classwise --help`)."""

from __future__ import annotations

import argparse


def corruption_names(text: str) -> list[str]:
    from ..corruptions import ORDER

    names = [v.strip() for v in text.replace(",", " ").split() if v.strip()]
    if names == ["all"]:
        return list(ORDER)
    unknown = [n for n in names if n not in ORDER]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown corruption(s) {', '.join(unknown) or '(none given)'}; "
                                         f"choose all or from: {', '.join(ORDER)}")
    return names


def severity_list(text: str) -> list[int]:
    """`1-5`, `3` or `1,3,5`."""
    try:
        out = []
        for part in text.split(","):
            lo, _, hi = part.strip().partition("-")
            out += list(range(int(lo), int(hi or lo) + 1))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"severities look like 1-5, 3 or 1,3,5; got '{text}'") from exc
    if not out or any(s not in range(1, 6) for s in out):
        raise argparse.ArgumentTypeError(f"severities run from 1 to 5; got '{text}'")
    return sorted(set(out))


def add_corruption_options(p) -> None:
    p.add_argument("--corruptions", nargs="+", metavar="NAME",
                   help="natural corruptions per class: all, or names (gaussian_noise, fog, ...; see "
                        "classwise.corruptions.ORDER); the published CIFAR-10-C/-100-C files are used when found")
    p.add_argument("--severities", type=severity_list, default=[1, 2, 3, 4, 5], help="e.g. 1-5 (default), 3, 1,3,5")
    p.add_argument("--frost-dir", help="folder with the frost photographs (frost1.png ... frost5.jpg); without "
                                       "it frost is reported unavailable")


def corruption_fields(args) -> dict:
    """The run fields (`corruptions`, `severities`, `frost_dir`) of the given options."""
    if not getattr(args, "corruptions", None):
        return {}
    try:
        names = list(dict.fromkeys(n for text in args.corruptions for n in corruption_names(text)))
    except argparse.ArgumentTypeError as exc:
        from ..errors import ClasswiseError

        raise ClasswiseError(f"--corruptions: {exc}") from exc
    return {"corruptions": names, "severities": args.severities, "frost_dir": args.frost_dir}
