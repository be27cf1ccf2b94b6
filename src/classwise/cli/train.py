"""`classwise train`: train one model and evaluate it per class."""

from __future__ import annotations

from pathlib import Path

from .common import common_options, overrides, train_options
from .objective_options import active_verb, add_objective_options, objective_params

ORDER = 20


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train one model")
    common_options(p)
    train_options(p)
    p.add_argument("--method", default="standard", help="training method (see `classwise methods`)")
    p.add_argument("--init-weights", help="start from these weights (model.pt or checkpoint.pt)")
    if active_verb() == "train":
        add_objective_options(p)
    p.set_defaults(func=run)



def run(args) -> int:
    import os
    from contextlib import nullcontext

    from ..config.run import RunConfig
    from ..data import load_dataset
    from ..distributed import is_main
    from ..estimate_training import run_lines, say
    from ..io import check_out_dir, safe_name
    from ..report import print_lines
    from ..rounding import percent
    from ..study.execute import execute_run
    from ..study.lock import FolderLock
    from ..study.outdir import claim_out, clear_outputs
    from ..study.preflight import check_device, decide, preflight_run, warn
    from ..training.resolve import resolve

    check_out_dir(args.out)
    params = objective_params(args, [args.method]).get(args.method, {})
    cfg = RunConfig(**{"epochs": 3, "lr": 0.05, "weight_decay": 0.0, **overrides(args), "method": args.method,
                       "method_params": params, "init_weights": args.init_weights})
    out = args.out or Path("runs") / safe_name(f"train-{cfg.dataset}-{cfg.arch}-{cfg.method}")
    check_device(args.device)
    # under torchrun every rank runs this: only rank 0 (which alone writes) claims the folder
    first = os.environ.get("RANK", "0") == "0"
    lock = FolderLock(out, what="training run") if first else None
    if first:
        lock.check()
        claim_out(out, "run", resume=args.resume, overwrite=args.overwrite)
    splits = load_dataset(cfg.dataset, args.data_dir, val_size=cfg.val_size, seed=cfg.seed, download=args.download,
                          imbalance=cfg.imbalance)
    warnings = decide(preflight_run(resolve(cfg, splits), splits, data_dir=args.data_dir), args.force)
    with lock or nullcontext():
        if first:
            held = claim_out(out, "run", resume=args.resume, overwrite=args.overwrite)
            if args.overwrite and held:
                clear_outputs(out, "run")
            warn(warnings)
            if not args.resume:  # issue 28: a few steps timed here, scaled to the run
                say(run_lines, resolve(cfg, splits), splits, check_device(args.device))
        run = execute_run(cfg, out, device=args.device, data_dir=args.data_dir, splits=splits, resume=args.resume)
    if is_main():
        last, res, label = run.history[-1], run.evaluation, run.attack.label
        print_lines([
            f"trained {cfg.arch} ({cfg.method}) on {cfg.dataset}: val clean {percent(last['val_clean'])}"
            + (f", val robust {percent(last['val_robust'])}" if "val_robust" in last else ""),
            f"test ({len(res.labels)} images): clean {percent(res.accuracy('clean'), 2)}, {label} "
            f"{percent(res.accuracy(label), 2)}; worst class clean '{res.summary('clean')['worst_class']}', "
            f"{label} '{res.summary(label)['worst_class']}'",
            f"weights: {out / 'model.pt'}; per-epoch per-class metrics: {out / 'metrics.jsonl'}; "
            f"per-sample test predictions: {out / 'eval.json'}"])
    return 0
