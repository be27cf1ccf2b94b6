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
    from ..distributed import is_main
    from ..io import check_out_dir, safe_name
    from ..report import print_lines
    from ..study.execute import execute_run
    from ..study.grid import RunConfig

    check_out_dir(args.out)
    params = objective_params(args, [args.method]).get(args.method, {})
    cfg = RunConfig(**{"epochs": 3, "lr": 0.05, "weight_decay": 0.0, **overrides(args), "method": args.method,
                       "method_params": params, "init_weights": args.init_weights})
    out = args.out or Path("runs") / safe_name(f"train-{cfg.dataset}-{cfg.arch}-{cfg.method}")
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
