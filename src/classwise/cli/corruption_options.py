"""`--corruptions [all|NAMES] --severities 1-5 --frost-dir DIR`, shared by `evaluate` and
`study`. Names are checked against the corruptions registry when the option is used (importing
it at parser build would import torch for `classwise --help`)."""

from __future__ import annotations

import argparse

import pandas as pd

from .common import known_names


def corruption_names(text: str) -> list[str]:
    from ..corruptions import ORDER

    return known_names(text, ORDER, "corruption", allow_all=True)


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
    """The run fields (`corruptions`, `severities`, `frost_dir`) of the given options. A
    --frost-dir given by name must hold the photographs (only the default search may skip frost)."""
    if getattr(args, "frost_dir", None):
        from ..study.preflight import check_frost_dir

        check_frost_dir(args.frost_dir)
    if not getattr(args, "corruptions", None):
        return {}
    try:
        names = list(dict.fromkeys(n for text in args.corruptions for n in corruption_names(text)))
    except argparse.ArgumentTypeError as exc:
        from ..errors import ClasswiseError

        raise ClasswiseError(f"--corruptions: {exc}") from exc
    return {"corruptions": names, "severities": args.severities, "frost_dir": args.frost_dir}


def evaluation_corruptions(args, *, full_test: bool, test=None):
    """(CorruptionSpecs, {name: why it is skipped}) for `classwise evaluate`: the published files
    of the data set when found and the whole test set is evaluated, else corrupted in memory.
    With `test`, the files it would read are checked now (header, dtype, size, test set)."""
    fields = corruption_fields(args)
    if not fields:
        return [], {}
    from ..corruptions import corruption_specs, unavailable
    from ..data.corrupted import find_corrupted

    skipped = {n: r for n in fields["corruptions"] if (r := unavailable(n, fields["frost_dir"]))}
    files = find_corrupted(args.dataset, args.data_dir) if full_test else None
    if files is not None and test is not None:
        from ..data.corrupted import CorruptedFiles

        held = CorruptedFiles(files)
        wanted = [n for n in fields["corruptions"] if n not in skipped and n in set(held.names())]
        if wanted:
            held.check(test.labels.numpy(), tuple(test.shape), wanted)
    specs = corruption_specs([n for n in fields["corruptions"] if n not in skipped], fields["severities"],
                             frost_dir=fields["frost_dir"], files=files)
    return specs, skipped


def print_corruptions(res, attack: str | None, skipped: dict, record: dict | None, out_dir=None,
                      figures: dict | None = None) -> None:
    """Print per class the mean accuracy under corruption, its share of clean and the hardest
    corruption, the corruptions from the costliest, and the rank-correlation line, from `record`
    (the corruption summary `audit` made); with `out_dir` where `audit` wrote the class x
    corruption x severity table and the class x corruption heatmap (`figures`)."""
    from ..analysis.corruption import class_table, corruption_keys
    from ..report import print_lines, print_per_class
    from ..report.corruption import answers
    from ..rounding import percent, points

    lines = [f"skipped {n}: {why}" for n, why in skipped.items()]
    if not corruption_keys(res) or record is None:
        print_lines(lines)
        return
    s = {k: v for k, v in record.items() if k != "skipped"}
    if len(res.classes) <= 30:
        # the full class x corruption grid is 20+ columns, unreadable in a terminal: it goes to
        # the heatmap and the CSV; the terminal gets what it comes to per class
        grid = class_table(res)
        each = grid.drop(columns=["clean", "mean"])
        hardest = each.idxmin(axis=1)
        table = pd.DataFrame({"class": grid.index, "clean": grid["clean"], "corrupted": grid["mean"],
                              "% of clean": [s["relative"][k] for k in grid.index],
                              "hardest": [f"{c} {points(each.loc[k, c])}" for k, c in hardest.items()]})
        print_per_class(table, f"per-class accuracy (%) under {each.shape[1]} corruptions, mean over severities "
                        f"{','.join(map(str, s['severities']))} ({', '.join(s['sources'])})", {s["worst_class"]})
    if attack is not None:
        lines = answers({"this": s}, reference="")[:1] + lines
    lines.append(f"mean corruption accuracy {percent(s['overall'], 2)} (clean {percent(s['clean'], 2)}), worst class "
                 f"'{s['worst_class']}' {percent(s['worst'])}, lowest relative to clean "
                 f"'{s['worst_relative_class']}' {percent(s['worst_relative'], 0)}")
    lines.append("mean accuracy per corruption, costliest first: " + ", ".join(
        f"{c} {percent(a)}" for c, a in sorted(s["per_corruption"].items(), key=lambda t: t[1])))
    if out_dir is not None and figures:
        lines.append(f"per class, corruption and severity: {out_dir}/corruption_per_class.csv; heatmap: "
                     f"{next(iter(figures.values()))}")
    print_lines(lines)
