"""`classwise features build`: construct Ilyas et al.'s robust / non-robust / det / rand
training set from a trained model; train on it with `--dataset features:DIR`."""

from __future__ import annotations

from pathlib import Path

from .common import positive_float, positive_int, seed_value

ORDER = 65


def add_parser(sub) -> None:
    from ..analysis.features import KINDS, PAPER

    p = sub.add_parser("features", help="robust and non-robust feature data sets (Ilyas et al. 2019)")
    verbs = p.add_subparsers(dest="features_command", required=True)
    b = verbs.add_parser("build", help="construct a data set from a model; resumes an interrupted build")
    b.add_argument("--kind", required=True, choices=KINDS,
                   help="robust (D_R, from an adversarially trained model), non-robust (D_NR, from a standard one), "
                        "det / rand (targeted L2 PGD, relabelled)")
    b.add_argument("--from", dest="checkpoint", required=True, type=Path,
                   help="a classwise model.pt or training checkpoint.pt (they say their architecture and data set)")
    b.add_argument("--out", required=True, type=Path, help="folder of the data set (read as features:DIR)")
    b.add_argument("--dataset", help="source data set (default: the checkpoint's)")
    b.add_argument("--data-dir", help="folder to look in first for the source data set")
    b.add_argument("--limit", type=positive_int,
                   help="a stratified subset of the training set of this size (CPU budgets)")
    b.add_argument("--steps", type=positive_int, help=f"gradient steps (paper: {PAPER['robust'].steps} for robust / "
                                              f"non-robust, {PAPER['det'].steps} for det / rand)")
    b.add_argument("--step-size", type=positive_float, help="L2 step (paper: 0.1)")
    b.add_argument("--eps", type=positive_float, help="L2 radius for det / rand (paper: 0.5)")
    b.add_argument("--chunk", type=positive_int, default=500, help="images per stored chunk (the unit of resuming)")
    b.add_argument("--batch-size", type=positive_int, default=250)
    b.add_argument("--seed", type=seed_value, default=0)
    b.add_argument("--device", default="auto")
    b.add_argument("--quiet", action="store_true", help="no progress output")
    b.set_defaults(func=run)


def _model(checkpoint: Path, train):
    from ..errors import ClasswiseError
    from ..models import create_model, load_weights, read_weights_file

    raw = read_weights_file(checkpoint)
    # a model.pt names its architecture; a training checkpoint.pt only inside its config
    arch = (raw.get("arch") or (raw.get("config") or {}).get("arch")) if isinstance(raw, dict) else None
    if arch is None:
        raise ClasswiseError(f"{checkpoint} does not say which architecture it holds; give a classwise model.pt "
                             "or checkpoint.pt")
    c, h, _ = train.shape
    mean, std = train.channel_stats()
    model = create_model(arch, train.num_classes, c, h, mean=mean, std=std, head=raw.get("head"))
    load_weights(model, checkpoint, raw)
    return model, raw


def run(args) -> int:
    from dataclasses import replace

    from ..analysis.features import PAPER, build, check_resumable
    from ..data import load_raw, stratified_subset
    from ..errors import ClasswiseError
    from ..estimate_training import features_lines, say
    from ..models import read_weights_file
    from ..report import print_lines
    from ..study.outdir import claim_out
    from ..study.preflight import check_device
    from .common import check_out_dir

    # before any work: the output folder (a file, unwritable, or another kind of result) and the device
    check_out_dir(args.out)
    claim_out(args.out, "features", continues=True)  # the same construction resumes; build() checks it is
    device = check_device(args.device)
    raw = read_weights_file(args.checkpoint)
    dataset = args.dataset or ((raw.get("dataset") or (raw.get("config") or {}).get("dataset"))
                               if isinstance(raw, dict) else None)
    if not dataset:
        raise ClasswiseError("--dataset is needed: the checkpoint does not say which data set it was trained on")
    train, _ = load_raw(dataset, args.data_dir)
    if train is None:
        raise ClasswiseError(f"{dataset} has no training set to construct from")
    if args.limit:
        train = stratified_subset(train, args.limit, seed=args.seed)
    model, _ = _model(args.checkpoint, train)
    params = PAPER[args.kind]
    params = replace(params, **{k: v for k, v in (("steps", args.steps), ("step_size", args.step_size),
                                                  ("eps", args.eps)) if v is not None})
    source = {"checkpoint": str(args.checkpoint), "dataset": dataset, "data_dir": args.data_dir, "limit": args.limit,
              "method": (raw.get("config") or {}).get("method") if isinstance(raw, dict) else None}
    # a folder this construction would resume: the same construction, every chunk it keeps readable
    check_resumable(args.out, train, args.kind, params=params, source=source, chunk=args.chunk, seed=args.seed)
    say(features_lines, model, train, args.kind, params, batch_size=args.batch_size, device=device, out=args.out,
        chunk=args.chunk)  # issue 28: a few steps timed here, scaled to the images still to build
    meta = build(model, train, args.kind, args.out, params=params, source=source, chunk=args.chunk,
                 batch_size=args.batch_size, seed=args.seed, device=device)
    summary = ", ".join(f"{k.replace('_', ' ')} {v:.3f}" for k, v in meta["summary"].items())
    print_lines([f"{args.kind} data set: {meta['n']} images from {args.checkpoint} ({source['method'] or 'model'}) "
                 f"on {dataset}, {params.steps} steps of {params.step_size}"
                 + (f", eps {params.eps}" if args.kind in ("det", "rand") else "") + f": {summary}",
                 f"stored in {args.out} ({'complete' if meta['complete'] else 'incomplete'}); train on it with "
                 f"`classwise train --dataset features:{args.out}` (tested on the {dataset} test set)"])
    return 0
