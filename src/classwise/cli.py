"""`classwise` command line: study | train | evaluate | datasets | models."""

from __future__ import annotations

import argparse
import sys
from fractions import Fraction
from pathlib import Path

from . import progress
from .errors import ClasswiseError


def parse_eps(text: str) -> float:
    """`0.1`, `8/255` or `8` (values above 1 are read as pixel levels out of 255)."""
    try:
        value = float(Fraction(text))
    except (ValueError, ZeroDivisionError) as exc:
        raise argparse.ArgumentTypeError(f"eps must be a number like 0.1 or 8/255, got '{text}'") from exc
    if value < 0:
        raise argparse.ArgumentTypeError("eps must be >= 0")
    return value / 255 if value > 1 else value


def _common(p: argparse.ArgumentParser, dataset_default="fashion-mnist") -> None:
    p.add_argument("--dataset", default=dataset_default, help="data set name (see `classwise datasets`)")
    p.add_argument("--data-dir", help="folder to look in first (else $CLASSWISE_DATA, ./data, ~/.cache/classwise)")
    p.add_argument("--download", action="store_true", help="download the data set if it is not found")
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N, mps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eps", type=parse_eps, help="threat radius in [0,1] pixel units; default 0.1 grey, 8/255 colour")
    p.add_argument("--norm", choices=["linf", "l2"], default="linf")
    p.add_argument("--quiet", action="store_true", help="no progress output")


def _train_options(p: argparse.ArgumentParser) -> None:
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


def _overrides(args) -> dict:
    return {k: getattr(args, k) for k in _TRAIN_KEYS if getattr(args, k, None) is not None}


def cmd_study(args) -> int:
    from .study import preset_config, run_study

    cfg = preset_config(args.preset, **_overrides(args))
    if args.adversarial_method:
        cfg = cfg.model_copy(update={"adversarial_method": args.adversarial_method})
    out = args.out or Path("runs") / f"study-{cfg.run.dataset}-{cfg.run.arch}-{args.preset}"
    run_study(cfg, out, data_dir=args.data_dir, device=args.device, resume=args.resume,
              download=args.download)
    return 0


def cmd_train(args) -> int:
    from .distributed import is_main
    from .report import print_lines
    from .study.execute import execute_run
    from .study.grid import RunConfig

    cfg = RunConfig(**{"epochs": 3, "lr": 0.05, "weight_decay": 0.0, **_overrides(args), "method": args.method})
    out = args.out or Path("runs") / f"train-{cfg.dataset}-{cfg.arch}-{cfg.method}"
    run = execute_run(cfg, out, device=args.device, data_dir=args.data_dir, resume=args.resume,
                      download=args.download)
    if is_main():
        last, res, label = run.history[-1], run.evaluation, run.attack.label
        print_lines([
            f"trained {cfg.arch} ({cfg.method}) on {cfg.dataset}: val clean {last['val_clean'] * 100:.1f}%"
            + (f", val robust {last['val_robust'] * 100:.1f}%" if "val_robust" in last else ""),
            f"test ({len(res.labels)} images): clean {res.accuracy('clean') * 100:.2f}%, {label} "
            f"{res.accuracy(label) * 100:.2f}%; worst class clean '{res.summary('clean')['worst_class']}', "
            f"{label} '{res.summary(label)['worst_class']}'",
            f"weights: {out / 'model.pt'}; per-epoch per-class metrics: {out / 'metrics.jsonl'}; "
            f"per-sample test predictions: {out / 'eval.json'}"])
    return 0


def _evaluation_model(args, test, splits):
    """(model taking [0, 1] images, its name, checkpoint format) from --arch or --model."""
    from .models import create_model, load_weights, read_weights_file
    from .models.custom import build_custom_model, load_custom_weights, normalization, wrap_normalization

    c, h, _ = test.shape
    stats = normalization(args.mean, args.std, c)
    if args.model:
        if args.arch:
            raise ClasswiseError("give --arch (a registry architecture) or --model (your own factory), not both")
        model = build_custom_model(args.model, test.num_classes)
        fmt = "no"
        if args.checkpoint is not None:
            load_custom_weights(model, args.checkpoint)
            fmt = "state_dict"
        return (wrap_normalization(model, *stats) if stats else model), args.model, fmt
    if args.checkpoint is None:
        raise ClasswiseError("--checkpoint is needed with a registry architecture "
                             "(or use --model package.module:factory)")
    raw = read_weights_file(args.checkpoint)
    arch = args.arch or (raw.get("arch") if isinstance(raw, dict) else None)
    if arch is None:
        raise ClasswiseError("--arch is needed: the checkpoint does not say which architecture it holds")
    # the data's own statistics unless the file brings its normalizer (or the model is tv:*)
    mean, std = splits.train.channel_stats() if splits.train is not None else (None, None)
    model = create_model(arch, test.num_classes, c, h, mean=mean, std=std)
    fmt = load_weights(model, args.checkpoint, raw)
    if stats:  # what the user says wins over what the file carries
        model.mean.copy_(model.mean.new_tensor(stats[0]).view_as(model.mean))
        model.std.copy_(model.std.new_tensor(stats[1]).view_as(model.std))
    return model, arch, fmt


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
    if text == "auto":
        return [eps * f for f in (0.25, 0.5, 1, 2, 4)]
    try:
        return [_eps_for(_eps_number(v.strip()), norm) for v in text.split(",") if v.strip()]
    except argparse.ArgumentTypeError as exc:
        raise ClasswiseError(f"--eps-curve: {exc}") from exc


def _evaluation_specs(args, eps: float, classes: list[str]):
    """(untargeted attacks, class-targeted threats, the gradient attack the threats and curves use)."""
    from .attacks import AttackSpec, AutoAttackSpec, IntoClassSpec, VictimSpec
    from .attacks.autoattack import parse_components

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
    return (f"{name}: overall {s['overall'] * 100:.2f}%, class mean {s['mean'] * 100:.2f}%, std {s['std'] * 100:.2f}, "
            f"gap {s['gap'] * 100:.2f}, worst '{s['worst_class']}' {s['worst'] * 100:.1f}%, "
            f"best '{s['best_class']}' {s['best'] * 100:.1f}%")


def _print_threats(res, threats) -> None:
    from .attacks import into_table, victim_summary, victim_table
    from .report import print_lines, print_per_class

    for spec in threats:
        if spec.threat == "victim":
            v = victim_summary(res, spec.label)
            accs = ", ".join(f"{k} {a * 100:.1f}%" for k, a in v["accuracy"].items())
            dest = victim_table(res, spec.label).drop(index=spec.victim).sort_values(spec.label, ascending=False)
            where = ", ".join(f"'{r['class']}' {r[spec.label] * 100:.1f}%" for _, r in dest.head(3).iterrows()
                              if r[spec.label] > 0)
            print_lines([f"victim class '{v['victim']}' ({v['n']} images), accuracy: {accs}"
                         + (f"; its images go to {where}" if where else "")])
        else:
            table = into_table(res, spec.label)
            name = res.classes[spec.target]
            if len(table) <= 30:
                print_per_class(table.drop(columns="n"), f"share of each class pushed into '{name}' (%)")
            moved = float((res.adv_pred[spec.label][res.labels != spec.target] == spec.target).mean())
            print_lines([f"into '{name}': {moved * 100:.1f}% of the other classes' images end up in it under "
                         f"{spec.attack.label}"])


def cmd_evaluate(args) -> int:
    from .attacks import curve_table, eps_curve, half_accuracy_eps
    from .data import load_dataset, per_class_subset, stratified_subset
    from .device import resolve_device
    from .evaluate import evaluate, robustbench_json, sanity_checks
    from .io import atomic_write_json, atomic_write_text
    from .report import print_lines, print_per_class

    splits = load_dataset(args.dataset, args.data_dir, seed=args.seed, download=args.download)
    test = splits.test
    if args.per_class:
        test = per_class_subset(test, args.per_class, seed=args.seed)
    elif args.limit:
        test = stratified_subset(test, args.limit, seed=args.seed)
    model, name, fmt = _evaluation_model(args, test, splits)
    device = resolve_device(args.device)
    model.to(device)
    c = test.shape[0]
    eps = _eps_for(args.eps, args.norm) if args.eps is not None else (0.1 if c == 1 else 8 / 255)
    attacks, threats, base = _evaluation_specs(args, eps, list(test.classes))
    res = evaluate(model, test, [*attacks, *threats], batch_size=args.batch_size, device=device, seed=args.seed)
    curve = None
    if args.eps_curve:
        curve = eps_curve(model, test, base, _eps_grid(args.eps_curve, eps, args.norm), batch_size=args.batch_size,
                          device=device, seed=args.seed)
    sanity = None
    if not args.no_sanity and (attacks or threats):
        grad_spec = next((a for a in attacks if a.name in ("pgd", "fgsm")), base if threats else None)
        sanity = sanity_checks(res, model, test, curve=curve, spec=grad_spec, batch_size=args.batch_size,
                               device=device, seed=args.seed)

    keys = res.robust_keys
    table = res.per_class("clean")[["class", "accuracy"]].rename(columns={"accuracy": "clean"})
    for key in keys:
        table[key] = res.per_class(key)["accuracy"]
    summaries = {k: res.summary(k) for k in ["clean", *keys]}
    print_lines([f"{name} ({fmt} checkpoint) on {args.dataset}: {len(test)} images, {test.num_classes} classes"]
                + [spec.describe() for spec in [*attacks, *threats]])
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
    rb = None
    if args.out or args.robustbench_json:
        rb = robustbench_json(res, dataset=args.dataset, name=name, architecture=name,
                              unreliable=None if sanity is None else not sanity.passed)
    if args.robustbench_json:
        atomic_write_json(args.robustbench_json, rb)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(args.out / "eval.json", res.to_dict())
        first = keys[0] if keys else None
        atomic_write_json(args.out / "results.json", {
            "arch": name, "dataset": args.dataset, "checkpoint_format": fmt,
            "attack": res.attacks[first] if first else None, "clean": summaries["clean"],
            "robust": summaries[first] if first else None,
            "attacks": {k: {"spec": res.attacks[k], "summary": summaries[k], "notes": res.notes.get(k, [])}
                        for k in keys},
            "threats": {t.label: t.model_dump() for t in threats},
            "sanity": sanity.to_dict() if sanity is not None else None})
        atomic_write_text(args.out / "per_class.csv", table.to_csv(index=False))
        atomic_write_json(args.out / "robustbench.json", rb)
        if curve is not None:
            atomic_write_json(args.out / "eps_curve.json", curve.to_dict())
            atomic_write_text(args.out / "eps_curve.csv", curve_table(curve).merge(
                half_accuracy_eps(curve).drop(columns="clean"), on="class").to_csv(index=False))
    return 0


def cmd_sweep(args) -> int:
    from .study.sweep import SlurmOptions, sweep

    slurm = SlurmOptions(partition=args.partition, time_min=args.time, gpus=args.gpus, cpus=args.cpus,
                         max_parallel=args.max_parallel, mem_gb=args.mem_gb)
    failures = sweep(args.config, args.out, executor=args.executor, jobs=args.jobs, device=args.device, slurm=slurm)
    return 1 if failures else 0


def _study_db(target: Path) -> Path:
    """A study folder, its study.db, or the TOML config that names it."""
    from .study.grid import load_grid
    from .study.sweep import DB, study_dir_for

    if target.suffix == ".toml":
        target = study_dir_for(load_grid(target), None)
    db = target if target.suffix == ".db" else target / DB
    if not db.is_file():
        raise ClasswiseError(f"no study database at {db}; run `classwise sweep CONFIG` first")
    return db


def cmd_runs(args) -> int:
    from .report.table import console
    from .study.store import Store

    db = _study_db(args.study)
    store = Store(db)
    if args.export:
        table = store.tidy()
        out = args.output or db.with_name(f"results.{args.export}")
        if args.export == "parquet":
            try:
                table.to_parquet(out, index=False)
            except ImportError as exc:
                raise ClasswiseError("parquet export needs pyarrow: pip install 'classwise[parquet]'") from exc
        else:
            table.to_csv(out, index=False)
        console.print(f"{len(table)} rows (run, epoch, split, attack, class, accuracy, n) -> {out}")
        return 0
    from rich.table import Table

    runs = store.runs_table()
    table = Table(title=f"{db}", title_justify="left")
    for col in runs.columns:
        table.add_column(str(col))
    for _, row in runs.iterrows():
        style = {"finished": "green", "failed": "red", "running": "yellow"}.get(row["status"])
        table.add_row(*["" if v is None else str(v) for v in row], style=style)
    console.print(table)
    counts = runs["status"].value_counts().to_dict()
    console.print(", ".join(f"{v} {k}" for k, v in counts.items()))
    return 0


def _listing(rows) -> str:
    return ", ".join(f"{r['class']} {r['accuracy'] * 100:.1f}%" for _, r in rows.iterrows())


def cmd_datasets(args) -> int:
    from rich.table import Table

    from .data import DATASETS, get_spec, load_raw, search_roots
    from .report.table import console

    roots = search_roots(args.data_dir)
    for name in args.download or []:
        spec = get_spec(name)
        if spec.builtin:
            continue
        train, test = load_raw(name, args.data_dir, download=True)
        console.print(f"{name}: {len(train)} training and {len(test)} test images at {spec.locate(roots)}")
    table = Table(title="Data sets", title_justify="left")
    for col in ("name", "status", "location / how to get it", "description"):
        table.add_column(col)
    for name, spec in sorted(DATASETS.items()):
        found = None if spec.needs_data_dir and not args.data_dir else spec.locate(roots)
        if spec.builtin:
            table.add_row(name, "built in", spec.how_to_get, spec.description)
        elif found:
            table.add_row(name, "[green]found[/green]", str(found), spec.description)
        else:
            table.add_row(name, "[red]missing[/red]", spec.how_to_get, spec.description)
    console.print(table)
    console.print("Searched roots: " + ", ".join(str(r) for r in roots))
    return 0


def cmd_models(args) -> int:
    from rich.table import Table

    from .models import MODELS, count_parameters, create_model
    from .report.table import console

    table = Table(title="Architectures (parameters for 10 classes at the reference input)", title_justify="left")
    for col in ("name", "input", "parameters", "published", "description"):
        table.add_column(col, justify="right" if col in ("parameters", "published") else "left")
    for name, entry in sorted(MODELS.items()):
        c, h, _ = entry.reference_shape
        n = count_parameters(create_model(name, 10, c, h).net)
        table.add_row(name, f"{c}x{h}x{h}", f"{n / 1e6:.3f} M", entry.published_params or "-", entry.description)
    console.print(table)
    console.print("Also: tv:<name> for any torchvision classification model with ImageNet normalization "
                  "(e.g. tv:resnet50), to load and audit a weights file.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="classwise", description="Train and audit image classifiers class by class.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("study", help="train a standard and an adversarially trained model, compare them per class")
    _common(p)
    _train_options(p)
    p.add_argument("--preset", default="quick", help="smoke (seconds) or quick (minutes on a CPU)")
    p.add_argument("--adversarial-method", choices=["fgsm-rs", "pgd"], help="default fgsm-rs")
    p.set_defaults(func=cmd_study)

    p = sub.add_parser("train", help="train one model")
    _common(p)
    _train_options(p)
    p.add_argument("--method", default="standard", choices=["standard", "pgd", "fgsm-rs"])
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="per-class clean and robust accuracy of a registry model or your own")
    _common(p)
    # values above 1 are pixel levels out of 255 for Linf only: L2 radii above 1 are common
    next(a for a in p._actions if a.dest == "eps").type = _eps_number
    p.add_argument("--arch", help="architecture (see `classwise models`, or tv:<torchvision name>); "
                   "read from the checkpoint when it says")
    p.add_argument("--model", metavar="MODULE:FACTORY", help="your own model instead: package.module:factory or "
                   "path/to/file.py:factory returning an nn.Module that maps images to logits")
    p.add_argument("--checkpoint", type=Path, help="weights file (`module.` prefixes and nested "
                   "state_dict/model keys are handled)")
    p.add_argument("--mean", help="the model expects (x - mean) / std: per-channel values, or imagenet / cifar10")
    p.add_argument("--std", help="see --mean")
    p.add_argument("--attack", nargs="+", choices=["pgd", "fgsm", "autoattack"], default=["pgd"],
                   help="one or more untargeted attacks, e.g. --attack pgd autoattack")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--restarts", type=int, default=1)
    p.add_argument("--loss", choices=["ce", "margin"], default="ce", help="PGD/FGSM loss: ce or CW margin")
    p.add_argument("--version", choices=["standard", "plus", "rand", "custom"], default="standard",
                   help="AutoAttack version")
    p.add_argument("--aa-attacks", help="AutoAttack components for the custom version, e.g. apgd-ce,apgd-t")
    p.add_argument("--aa-iterations", type=int, help="reduced AutoAttack budget: APGD/FAB iterations (not standard)")
    p.add_argument("--aa-restarts", type=int, help="reduced AutoAttack budget: APGD/FAB restarts (not standard)")
    p.add_argument("--aa-queries", type=int, help="reduced AutoAttack budget: Square queries (not standard)")
    p.add_argument("--victim", action="append", metavar="CLASS",
                   help="attack the images of this class (name or index) with a bigger budget; repeatable")
    p.add_argument("--target", action="append", metavar="CLASS",
                   help="push the images of every other class into this class; repeatable")
    p.add_argument("--eps-curve", nargs="?", const="auto", metavar="EPS,EPS,...",
                   help="per-class accuracy over these eps (default: eps x 0.25, 0.5, 1, 2, 4)")
    p.add_argument("--no-sanity", action="store_true", help="skip the sanity checks of the robust evaluation")
    p.add_argument("--limit", type=int, help="evaluate a stratified test subset of this size")
    p.add_argument("--per-class", type=int, help="evaluate N images of every class (equal counts)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--top-k", type=int, default=5, help="classes listed when there are too many for a table")
    p.add_argument("--robustbench-json", type=Path, help="write RobustBench's model_info fields plus the per-class "
                   "table to this file")
    p.add_argument("--out", type=Path, help="write eval.json, results.json, per_class.csv, robustbench.json "
                   "(and eps_curve.*) here")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("sweep", help="run every run of a study grid (TOML), skipping finished ones")
    p.add_argument("config", type=Path, help="study config, e.g. configs/datasets-quick.toml")
    p.add_argument("--out", type=Path, help="study folder (default runs/<name>); holds study.db")
    p.add_argument("--executor", choices=["local", "slurm"], default="local")
    p.add_argument("--jobs", type=int, default=1, help="local: runs in parallel processes")
    p.add_argument("--device", default="auto")
    p.add_argument("--partition", help="slurm partition")
    p.add_argument("--time", type=int, default=60, help="slurm time limit per run, minutes")
    p.add_argument("--gpus", type=int, default=0, help="slurm GPUs per run")
    p.add_argument("--cpus", type=int, help="slurm CPUs per run")
    p.add_argument("--mem-gb", type=float, help="slurm memory per run")
    p.add_argument("--max-parallel", type=int, default=8, help="slurm: runs of the job array at once")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("runs", help="list a study's runs and status, or export its per-class results")
    p.add_argument("study", type=Path, help="study folder, its study.db, or its TOML config")
    p.add_argument("--export", choices=["csv", "parquet"], help="write the tidy per-class table")
    p.add_argument("--output", type=Path, help="export file (default next to study.db)")
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser("datasets", help="which data sets are available locally, and where")
    p.add_argument("--data-dir")
    p.add_argument("--download", nargs="*", metavar="NAME", help="download these data sets")
    p.set_defaults(func=cmd_datasets)

    p = sub.add_parser("models", help="the architectures in the registry")
    p.set_defaults(func=cmd_models)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    progress.QUIET = getattr(args, "quiet", False)
    try:
        return args.func(args)
    except ClasswiseError as exc:
        print(f"classwise: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("classwise: interrupted; rerun with --resume to continue from the last checkpoint",
              file=sys.stderr)
        return 130
    except ValueError as exc:  # pydantic validation of option values
        if type(exc).__name__ != "ValidationError":
            raise
        errors = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        print(f"classwise: error: invalid settings: {errors}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
