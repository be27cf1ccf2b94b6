"""`classwise study`: train every arm with the same budget and compare them per class."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import common_options, known_names, overrides, seed_value, train_options
from .corruption_options import add_corruption_options, corruption_fields
from .objective_options import active_verb, add_objective_options, objective_params

ORDER = 10


def _names(text: str) -> list[str]:
    from ..config.study import method_names

    return known_names(text, method_names(), "method")


def _seeds(text: str) -> list[int]:
    values = [v.strip() for v in text.split(",") if v.strip()]
    if not values:
        raise argparse.ArgumentTypeError(f"seeds look like 0,1,2, got '{text}'")
    return [seed_value(v) for v in values]


def _init_from(text: str) -> list[tuple[str, str]]:
    pairs = [p.split("=") for p in text.split(",") if p.strip()]
    if not pairs or any(len(p) != 2 or not all(v.strip() for v in p) for p in pairs):
        raise argparse.ArgumentTypeError(f"expected ARM=SOURCE[,ARM=SOURCE...] like frl=trades, got '{text}'")
    return [(a.strip(), b.strip()) for a, b in pairs]


def init_from_pairs(given) -> dict[str, str] | None:
    """Every --init-from (it may be given several times) as {arm: source}; an arm named twice
    is refused, not silently given its last source."""
    if not given:
        return None
    out: dict[str, str] = {}
    for arm, source in (pair for group in given for pair in group):
        if arm in out and out[arm] != source:
            from ..errors import ClasswiseError

            raise ClasswiseError(f"--init-from names the arm '{arm}' twice ({arm}={out[arm]}, {arm}={source}); "
                                 "an arm starts from one source")
        out[arm] = source
    return out


def add_parser(sub) -> None:
    # method names are checked against the registry when the option is used (importing the
    # registry at parser build would import torch for `classwise --help`)
    p = sub.add_parser("study", help="train one arm per method (standard and adversarial by default), "
                                     "compare them per class")
    common_options(p)
    train_options(p)
    p.add_argument("--preset", default="quick", help="smoke (seconds) or quick (minutes on a CPU)")
    p.add_argument("--methods", type=_names, metavar="M1,M2,...",
                   help="arms, one per training method (default standard,fgsm-rs)")
    p.add_argument("--reference", help="the plain adversarial arm the others are compared with "
                                       "(default fgsm-rs or pgd when in the study)")
    p.add_argument("--seeds", type=_seeds, metavar="S1,S2,...",
                   help="train every arm once per seed (default: --seed); folders <arm>/seed<k>/")
    p.add_argument("--init-from", type=_init_from, metavar="ARM=SOURCE,...", action="append",
                   help="start ARM from the final weights of the earlier arm SOURCE at the same seed "
                        "(e.g. frl=trades: FRL fine-tunes a robust model, as its paper does)")
    p.add_argument("--wait", action="store_true", help="if another study is working in --out, wait for it to end "
                                                       "(default: say which process holds it and stop)")
    p.add_argument("--no-sanity", action="store_true", help="skip the sanity checks of the robust evaluations")
    p.add_argument("--no-figures", action="store_true",
                   help="report in tables and numbers only (matplotlib takes ~0.3 s a figure, 20+ a study)")
    # deprecated alias of --methods standard,X
    p.add_argument("--adversarial-method", type=lambda s: _names(s)[0], help=argparse.SUPPRESS)
    add_corruption_options(p)
    if active_verb() == "study":
        add_objective_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..errors import ClasswiseError
    from ..io import check_out_dir, safe_name
    from ..progress import console
    from ..report.table import console as results
    from ..study import StudyConfig, preset_config, run_study

    check_out_dir(args.out)
    methods = args.methods
    if args.adversarial_method:
        if methods:
            raise ClasswiseError("--adversarial-method is the old spelling of --methods standard,X; give only one")
        console.print(f"--adversarial-method is deprecated; use --methods standard,{args.adversarial_method}")
        methods = ["standard", args.adversarial_method]
    methods = methods or list(StudyConfig.model_fields["methods"].get_default(call_default_factory=True))
    cfg = preset_config(args.preset, methods=methods, method_params=objective_params(args, methods),
                        seeds=args.seeds, reference=args.reference, init_from=init_from_pairs(args.init_from),
                        **overrides(args, default_arch=False), **corruption_fields(args))
    if args.no_sanity or args.no_figures:
        cfg = cfg.model_copy(update={"sanity": not args.no_sanity, "figures": not args.no_figures})
    out = args.out or Path("runs") / safe_name(f"study-{cfg.run.dataset}-{cfg.run.arch}-{args.preset}")
    quiet = results.quiet, console.quiet
    if args.quiet:  # nothing but errors (they are printed by the CLI's main, not through these consoles)
        results.quiet = console.quiet = True
    try:
        run_study(cfg, out, data_dir=args.data_dir, device=args.device, resume=args.resume, download=args.download,
                  overwrite=args.overwrite, force=args.force, wait=args.wait)
    finally:
        results.quiet, console.quiet = quiet
    return 0
