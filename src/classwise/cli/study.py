"""`classwise study`: train every arm with the same budget and compare them per class."""

from __future__ import annotations

from pathlib import Path

from .common import common_options, overrides, train_options

ORDER = 10


def add_parser(sub) -> None:
    p = sub.add_parser("study", help="train a standard and an adversarially trained model, compare them per class")
    common_options(p)
    train_options(p)
    p.add_argument("--preset", default="quick", help="smoke (seconds) or quick (minutes on a CPU)")
    p.add_argument("--adversarial-method", choices=["fgsm-rs", "pgd"], help="default fgsm-rs")
    p.set_defaults(func=run)



def run(args) -> int:
    from ..study import preset_config, run_study

    cfg = preset_config(args.preset, **overrides(args))
    if args.adversarial_method:
        cfg = cfg.model_copy(update={"adversarial_method": args.adversarial_method})
    out = args.out or Path("runs") / f"study-{cfg.run.dataset}-{cfg.run.arch}-{args.preset}"
    run_study(cfg, out, data_dir=args.data_dir, device=args.device, resume=args.resume,
              download=args.download)
    return 0
