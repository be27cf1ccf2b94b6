"""`classwise zoo`: RobustBench's published models, class by class — a resumable sweep over the
zoo (one model a job, locally or on Slurm), the per-class leaderboard, its check against the
published numbers, the frontier and the agreement of the weak classes across models."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import parse_eps, positive_int

ORDER = 35


def add_parser(sub) -> None:
    p = sub.add_parser("zoo", help="RobustBench's models per class: per-class leaderboard, check against the "
                                   "published numbers, agreement of the weak classes")
    p.add_argument("--models", default="all", help="all (default), or names separated by commas, e.g. "
                   "Carmon2019Unlabeled,Wong2020Fast")
    p.add_argument("--dataset", default="cifar10", help="cifar10 (default), cifar100 or imagenet")
    p.add_argument("--threat", default="linf", help="linf (default), l2 or corruptions")
    p.add_argument("--architecture", help="only the models of this architecture, as the leaderboard names it "
                   "(e.g. WideResNet-28-10)")
    p.add_argument("--n", type=positive_int, help="the first n test images (default: the leaderboard's, 10000 for "
                   "CIFAR, 5000 for ImageNet)")
    p.add_argument("--eps", type=parse_eps, help="default: the leaderboard's (8/255 linf, 0.5 l2; 4/255 ImageNet)")
    p.add_argument("--model-dir", type=Path, default=Path("models"), help="RobustBench's model directory: "
                   "<model-dir>/<dataset>/<Linf|L2|corruptions>/<name>.pt (default ./models)")
    p.add_argument("--no-download", action="store_true", help="never download: a model not in --model-dir is "
                   "reported, not fetched")
    p.add_argument("--leaderboard", type=Path, metavar="DIR", help="a local copy of RobustBench's model_info/ "
                   "(published accuracies, architecture, extra data, venue); else fetched from GitHub when there "
                   "is network, and cached in the study folder")
    p.add_argument("--no-fetch", action="store_true", help="do not fetch model_info from GitHub")
    p.add_argument("--list", action="store_true", help="list the model names of the installed zoo and stop")
    p.add_argument("--report-only", action="store_true", help="evaluate nothing: report what the study holds")
    p.add_argument("--out", type=Path, help="study folder (default runs/zoo-<dataset>-<threat>)")
    p.add_argument("--data-dir", help="where the data set lives (else $CLASSWISE_DATA, ./data, ~/.cache/classwise)")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=positive_int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--version", choices=["standard", "plus", "rand", "custom"], default="standard",
                   help="AutoAttack version (the leaderboard's is standard)")
    p.add_argument("--aa-attacks", help="AutoAttack components for a custom version, e.g. apgd-ce,apgd-t")
    p.add_argument("--aa-iterations", type=positive_int, help="reduced AutoAttack budget (not the leaderboard's)")
    p.add_argument("--aa-restarts", type=positive_int, help="reduced AutoAttack budget (not the leaderboard's)")
    p.add_argument("--aa-queries", type=positive_int, help="reduced Square budget (not the leaderboard's)")
    p.add_argument("--corruptions", help="corruption leaderboard: names separated by commas (default: the 15 of "
                   "CIFAR-10-C)")
    p.add_argument("--severities", default="1-5", help="corruption leaderboard: e.g. 1-5 (default), 3, 1,3,5")
    p.add_argument("--frost-dir", help="the frost photographs (without them frost is left out, and said so)")
    p.add_argument("--executor", choices=["local", "slurm"], default="local")
    p.add_argument("--jobs", type=positive_int, default=1, help="local: models in parallel processes")
    p.add_argument("--partition", help="slurm partition")
    p.add_argument("--time", type=positive_int, default=240, help="slurm time limit per model, minutes")
    p.add_argument("--gpus", type=int, default=0, help="slurm GPUs per model")
    p.add_argument("--cpus", type=int, help="slurm CPUs per model")
    p.add_argument("--mem-gb", type=float, help="slurm memory per model")
    p.add_argument("--max-parallel", type=positive_int, default=8, help="slurm: models of the job array at once")
    p.add_argument("--no-figures", action="store_true", help="no frontier figure")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors and the answers")
    p.set_defaults(func=run)


def _settings(args):
    from ..attacks.autoattack import parse_components
    from ..errors import ClasswiseError
    from ..zoo import ZooSettings
    from ..zoo.protocol import CORRUPTIONS
    from .corruption_options import corruption_names, severity_list

    try:
        corruptions = tuple(corruption_names(args.corruptions)) if args.corruptions else CORRUPTIONS
        severities = tuple(severity_list(args.severities))
    except argparse.ArgumentTypeError as exc:
        raise ClasswiseError(f"--corruptions/--severities: {exc}") from exc
    parts = parse_components(args.aa_attacks) if args.aa_attacks else None
    return ZooSettings(dataset=args.dataset, threat=args.threat, n=args.n, eps=args.eps,
                       version="custom" if parts else args.version, attacks=parts, iterations=args.aa_iterations,
                       restarts=args.aa_restarts, queries=args.aa_queries, corruptions=corruptions,
                       severities=severities, seed=args.seed)


def run(args) -> int:
    from ..errors import ClasswiseError
    from ..io import check_out_dir
    from ..report import print_lines
    from ..study.sweep import SlurmOptions
    from ..zoo import names, run_zoo
    from ..zoo.info import check_leaderboard_dir
    from ..zoo.names import check_dataset, threat_key

    check_dataset(args.dataset)
    threat_key(args.threat)
    if args.list:
        print("\n".join(names(args.dataset, args.threat)))
        return 0
    check_out_dir(args.out)
    check_leaderboard_dir(args.leaderboard)
    if args.model_dir.exists() and not args.model_dir.is_dir():
        raise ClasswiseError(f"--model-dir {args.model_dir} is a file; give RobustBench's model folder")
    settings = _settings(args)
    slurm = SlurmOptions(partition=args.partition, time_min=args.time, gpus=args.gpus, cpus=args.cpus,
                         max_parallel=args.max_parallel, mem_gb=args.mem_gb)
    rep = run_zoo(args.models, settings, args.out, model_dir=args.model_dir, data_dir=args.data_dir,
                  leaderboard=args.leaderboard, fetch=not args.no_fetch, download=not args.no_download,
                  architecture=args.architecture, executor=args.executor, jobs=args.jobs, device=args.device,
                  slurm=slurm, frost_dir=args.frost_dir, batch_size=args.batch_size, figures=not args.no_figures,
                  evaluate=not args.report_only, quiet=args.quiet)
    lines = [(w if w.startswith(f"{m}:") else f"{m}: {w}") for m, w in rep.failures.items()]
    lines += rep.answers
    if not rep.board.empty:
        lines.append(_top(rep))
    if rep.files:
        lines.append(f"Written: {rep.files[0].parent} ({', '.join(p.name for p in rep.files)})")
    print_lines(lines)
    return 1 if rep.failures else 0


def _top(rep, k: int = 10) -> str:
    from ..zoo.leaderboard import side_names

    side = side_names(rep.settings.threat)[1]
    rows = rep.board.head(k)
    return (f"By {side} class mean (worst class in brackets): " + "; ".join(
        f"{r['model']} {r[f'{side}_mean'] * 100:.1f}% ({r[f'{side}_worst_class']} {r[f'{side}_worst'] * 100:.1f}%)"
        for _, r in rows.iterrows() if r[f"{side}_mean"] == r[f"{side}_mean"])
        + (f"; ... {len(rep.board) - k} more in leaderboard.csv" if len(rep.board) > k else ""))


# --- `classwise evaluate --robustbench NAME --threat T`: one zoo model in the evaluate verb ---------------

def evaluation_defaults(args) -> None:
    """Check `--robustbench` against the other model options and set the leaderboard's norm and
    (unless given) eps for `--threat`, before `evaluate` does any work."""
    from ..errors import ClasswiseError
    from ..zoo.names import check_dataset, check_name, threat_key
    from ..zoo.protocol import LEADERBOARD_EPS

    if not args.robustbench:
        raise ClasswiseError("--threat goes with --robustbench NAME (a RobustBench zoo model)")
    if args.arch or args.model or args.checkpoint:
        raise ClasswiseError("give --robustbench NAME, or --arch/--model with --checkpoint, not both")
    check_dataset(args.dataset)
    args.threat = threat_key(args.threat or "linf")
    check_name(args.robustbench, args.dataset, args.threat)
    if args.threat != "corruptions":
        args.norm = args.threat
        if args.eps is None:
            args.eps = LEADERBOARD_EPS[(args.dataset, args.threat)]


def evaluation_model(args):
    """(model, its name, 'robustbench') for `classwise evaluate --robustbench NAME`."""
    from ..zoo.names import load_model

    return load_model(args.robustbench, args.dataset, args.threat, args.model_dir), args.robustbench, "robustbench"
