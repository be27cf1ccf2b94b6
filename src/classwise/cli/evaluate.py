"""`classwise evaluate`: per-class clean and robust accuracy of a registry model or your own.
This module parses the options into specs, builds the model (`models.sources.evaluation_model`),
runs `auditing.audit` (which evaluates and writes the files) and prints what it found."""

from __future__ import annotations

import argparse
from fractions import Fraction
from pathlib import Path

from ..errors import ClasswiseError
from ..rounding import percent, points
from .common import check_out_dir, check_out_file, common_options, parse_eps, positive_int, precision_options
from .corruption_options import add_corruption_options, evaluation_corruptions, print_corruptions

ORDER = 30


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="per-class clean and robust accuracy of a registry model or your own")
    common_options(p)
    # values above 1 are pixel levels out of 255 for Linf only: L2 radii above 1 are common
    next(a for a in p._actions if a.dest == "eps").type = _eps_number
    p.add_argument("--arch", help="architecture (see `classwise models`, or tv:<torchvision name>); "
                   "read from the checkpoint when it says")
    p.add_argument("--model", metavar="MODULE:FACTORY", help="your own model instead: package.module:factory or "
                   "path/to/file.py:factory returning an nn.Module that maps images to logits")
    p.add_argument("--checkpoint", type=Path, help="weights file (`module.` prefixes and nested "
                   "state_dict/model keys are handled)")
    p.add_argument("--robustbench", metavar="NAME", help="a RobustBench zoo model by name, loaded by RobustBench's "
                   "loader from --model-dir (needs classwise[robustbench]); see `classwise zoo --list`")
    p.add_argument("--threat", choices=["linf", "l2", "corruptions"], help="the zoo leaderboard of --robustbench "
                   "(default linf); sets --norm, and --eps to the leaderboard's unless given")
    p.add_argument("--model-dir", type=Path, default=Path("models"), help="RobustBench's model directory, "
                   "<dir>/<dataset>/<Linf|L2|corruptions>/<name>.pt (default ./models)")
    p.add_argument("--mean", help="the model expects (x - mean) / std: per-channel values, or imagenet / cifar10")
    p.add_argument("--std", help="see --mean")
    p.add_argument("--attack", nargs="+", choices=["pgd", "fgsm", "autoattack"], default=["pgd"],
                   help="one or more untargeted attacks, e.g. --attack pgd autoattack")
    p.add_argument("--steps", type=positive_int, default=20)
    p.add_argument("--restarts", type=positive_int, default=1)
    p.add_argument("--loss", choices=["ce", "margin"], default="ce", help="PGD/FGSM loss: ce or CW margin")
    p.add_argument("--version", choices=["standard", "plus", "rand", "custom"], default="standard",
                   help="AutoAttack version")
    p.add_argument("--aa-attacks", help="AutoAttack components for the custom version, e.g. apgd-ce,apgd-t")
    p.add_argument("--aa-iterations", type=positive_int,
                   help="reduced AutoAttack budget: APGD/FAB iterations (not standard)")
    p.add_argument("--aa-restarts", type=positive_int,
                   help="reduced AutoAttack budget: APGD/FAB restarts (not standard)")
    p.add_argument("--aa-queries", type=positive_int, help="reduced AutoAttack budget: Square queries (not standard)")
    p.add_argument("--victim", action="append", metavar="CLASS",
                   help="attack the images of this class (name or index) with a bigger budget; repeatable")
    p.add_argument("--target", action="append", metavar="CLASS",
                   help="push the images of every other class into this class; repeatable")
    p.add_argument("--eps-curve", nargs="?", const="auto", metavar="EPS,EPS,...",
                   help="per-class accuracy over these eps (default: eps x 0.25, 0.5, 1, 2, 4)")
    p.add_argument("--no-sanity", action="store_true", help="skip the sanity checks of the robust evaluation")
    p.add_argument("--limit", type=positive_int, help="evaluate a stratified test subset of this size")
    p.add_argument("--per-class", type=positive_int, help="evaluate N images of every class (equal counts)")
    p.add_argument("--batch-size", type=positive_int, default=256)
    precision_options(p, "the gradient attacks' forward passes")
    p.add_argument("--top-k", type=positive_int, default=5, help="classes listed when there are too many for a table")
    p.add_argument("--robustbench-json", type=Path, help="write RobustBench's model_info fields plus the per-class "
                   "table to this file")
    p.add_argument("--out", type=Path, help="write eval.json, results.json, per_class.csv, robustbench.json "
                   "(and eps_curve.*) here")
    p.add_argument("--overwrite", action="store_true", help="replace the evaluation --out holds (refused without)")
    add_corruption_options(p)
    p.set_defaults(func=run)


def _class_index(text: str, classes: list[str]) -> int:
    if text in classes:
        return classes.index(text)
    if text.isdigit() and int(text) < len(classes):
        return int(text)
    shown = ", ".join(classes[:12]) + (", ..." if len(classes) > 12 else "")
    raise ClasswiseError(f"no class '{text}': give a class name ({shown}) or an index below {len(classes)}")


def _eps_number(text: str) -> float:
    """--eps of `evaluate`, kept as written: whether a value above 1 means pixel levels out of
    255 depends on the norm (an L2 radius of 3 is just that), see `_eps_for`."""
    value = parse_eps(text)  # validates
    return float(Fraction(text)) if value != float(Fraction(text)) else value


def _eps_for(value: float, norm: str) -> float:
    return value / 255 if norm == "linf" and value > 1 else value


def _eps_grid(text: str, eps: float, norm: str) -> list[float]:
    if text == "auto":  # an linf radius beyond the whole pixel range means nothing: left out
        return [eps * f for f in (0.25, 0.5, 1, 2, 4) if norm != "linf" or eps * f <= 1]
    try:
        return [_eps_for(_eps_number(v.strip()), norm) for v in text.split(",") if v.strip()]
    except argparse.ArgumentTypeError as exc:
        raise ClasswiseError(f"--eps-curve: {exc}") from exc


def _evaluation_specs(args, eps: float, classes: list[str]):
    """(untargeted attacks, class-targeted threats, the gradient attack the threats and curves use)."""
    from ..attacks import AttackSpec, AutoAttackSpec, IntoClassSpec, VictimSpec
    from ..attacks.autoattack import parse_components

    def gradient(name):
        return AttackSpec(name=name, eps=eps, steps=args.steps, norm=args.norm, restarts=args.restarts, loss=args.loss)

    attacks = []
    for name in dict.fromkeys(args.attack):
        if name == "autoattack":
            parts = parse_components(args.aa_attacks) if args.aa_attacks else None
            version = "custom" if parts else args.version
            attacks.append(AutoAttackSpec(eps=eps, norm=args.norm, version=version, attacks=parts,
                                          iterations=args.aa_iterations, restarts=args.aa_restarts,
                                          queries=args.aa_queries))
        else:
            attacks.append(gradient(name))
    base = next((a for a in attacks if isinstance(a, AttackSpec) and a.name == "pgd"), None) or gradient("pgd")
    threats = [VictimSpec(victim=_class_index(v, classes), attack=base) for v in args.victim or []]
    threats += [IntoClassSpec(target=_class_index(t, classes), attack=base) for t in args.target or []]
    return attacks, threats, base


def _summary_line(name: str, s: dict) -> str:
    return (f"{name}: overall {percent(s['overall'], 2)}, class mean {percent(s['mean'], 2)}, std "
            f"{points(s['std'], 2)}, gap {points(s['gap'], 2)}, worst '{s['worst_class']}' {percent(s['worst'])}, "
            f"best '{s['best_class']}' {percent(s['best'])}")


def _print_threats(res, threats) -> None:
    from ..evaluation import into_table, victim_summary, victim_table
    from ..report import print_lines, print_per_class

    for spec in threats:
        if spec.threat == "victim":
            v = victim_summary(res, spec.label)
            accs = ", ".join(f"{k} {percent(a)}" for k, a in v["accuracy"].items())
            dest = victim_table(res, spec.label).drop(index=spec.victim).sort_values(spec.label, ascending=False)
            where = ", ".join(f"'{r['class']}' {percent(r[spec.label])}" for _, r in dest.head(3).iterrows()
                              if r[spec.label] > 0)
            print_lines([f"victim class '{v['victim']}' ({v['n']} images), accuracy: {accs}"
                         + (f"; its images go to {where}" if where else "")])
        else:
            table = into_table(res, spec.label)
            name = res.classes[spec.target]
            if len(table) <= 30:
                print_per_class(table.drop(columns="n"), f"share of each class pushed into '{name}' (%)")
            moved = float((res.adv_pred[spec.label][res.labels != spec.target] == spec.target).mean())
            print_lines([f"into '{name}': {percent(moved)} of the other classes' images end up in it under "
                         f"{spec.attack.label}"])


def run(args) -> int:
    from ..auditing import audit, check_audit_out
    from ..data import load_dataset, per_class_subset, stratified_subset
    from ..device import resolve_device
    from ..evaluation import curve_table, half_accuracy_eps
    from ..models.sources import evaluation_model
    from ..progress import console
    from ..report import print_lines, print_per_class

    if args.robustbench or args.threat:
        from .zoo import evaluation_defaults

        evaluation_defaults(args)  # the leaderboard's norm and eps, and no --arch/--model/--checkpoint beside it
    check_out_dir(args.out)  # before any work: a bad output path must not cost an evaluation
    check_out_file(args.robustbench_json, "--robustbench-json")
    check_audit_out(args.out, overwrite=args.overwrite)
    device = resolve_device(args.device)  # an unknown or missing device, before the data and the model
    if args.eps_curve:
        _eps_grid(args.eps_curve, 0.1, args.norm)  # a bad value is refused now, not after the evaluation
    splits = load_dataset(args.dataset, args.data_dir, seed=args.seed, download=args.download)
    test = splits.test
    if args.per_class:
        test = per_class_subset(test, args.per_class, seed=args.seed)
    elif args.limit:
        test = stratified_subset(test, args.limit, seed=args.seed)
    if args.robustbench:
        from .zoo import evaluation_model as zoo_model

        model, name, fmt = zoo_model(args)
    else:
        model, name, fmt = evaluation_model(test, arch=args.arch, factory=args.model, checkpoint=args.checkpoint,
                                            mean=args.mean, std=args.std, train=splits.train)
    model.to(device)
    c = test.shape[0]
    eps = _eps_for(args.eps, args.norm) if args.eps is not None else (0.1 if c == 1 else 8 / 255)
    attacks, threats, base = _evaluation_specs(args, eps, list(test.classes))
    corrupted, skipped = evaluation_corruptions(args, full_test=not (args.per_class or args.limit), test=test)
    if not args.quiet:  # what it will take, before it takes it
        from ..estimate import estimate_evaluation, estimate_line

        line = estimate_line(estimate_evaluation(model, test, [*attacks, *threats, *corrupted],
                                                 batch_size=args.batch_size, device=device, seed=args.seed))
        if line:
            console.print(line, highlight=False)
    precision = args.precision or "fp32"
    done = audit(model, test, [*attacks, *threats, *corrupted], args.out, name=name, dataset=args.dataset,
                 checkpoint_format=fmt, eps_curve=_eps_grid(args.eps_curve, eps, args.norm) if args.eps_curve else None,
                 curve_attack=base, sanity=not args.no_sanity, skipped_corruptions=skipped,
                 robustbench_file=args.robustbench_json, overwrite=args.overwrite, batch_size=args.batch_size,
                 device=device, seed=args.seed, precision=precision, compile=bool(args.compile))

    res, curve, sanity = done.result, done.curve, done.sanity
    keys = res.robust_keys
    table, summaries = done.table(), done.summaries()
    print_lines([f"{name} ({fmt} checkpoint) on {args.dataset}: {len(test)} images, {test.num_classes} classes"]
                + [spec.describe() for spec in [*attacks, *threats]]
                + ([f"gradient attacks searched in {precision} (autocast); every prediction read again "
                    "in fp32, AutoAttack in fp32"] if precision != "fp32" else []))
    if len(table) <= 30:
        print_per_class(table, "per-class accuracy (%)", {s["worst_class"] for s in summaries.values()})
    else:
        k = args.top_k
        for key in summaries:
            t = res.per_class(key).sort_values("accuracy", kind="stable")
            print_lines([f"{key}: worst {k}: {_listing(t.head(k))}", f"{key}: best {k}: {_listing(t.tail(k)[::-1])}"])
    print_lines([_summary_line(key, s) for key, s in summaries.items()])
    _print_threats(res, threats)
    if curve is not None:
        ctab, half = curve_table(curve), half_accuracy_eps(curve)
        if len(ctab) <= 30:
            print_per_class(ctab, f"per-class accuracy (%) over eps, {base.label}")
        print_lines(["eps at which each class falls below half its clean accuracy: " + ", ".join(
            f"'{r['class']}' " + ("never" if r["eps_below_half"] != r["eps_below_half"] else f"{r['eps_half']:.3g}")
            for _, r in half.iterrows())])
    if sanity is not None:
        print_lines(sanity.lines())
    if corrupted or skipped:
        print_corruptions(res, keys[0] if keys else None, skipped, done.corruptions, args.out, done.figures)
    return 0


def _listing(rows) -> str:
    return ", ".join(f"{r['class']} {percent(r['accuracy'])}" for _, r in rows.iterrows())
