"""`classwise explain RUN_DIR|STUDY_DIR ...`: why the weak classes are weak (flows, similarity,
superclasses, agreement across runs), from the stored evaluations."""

from __future__ import annotations

from pathlib import Path

ORDER = 45


def add_parser(sub) -> None:
    p = sub.add_parser("explain", help="why the weak classes are weak, from stored evaluations")
    p.add_argument("paths", nargs="+", type=Path,
                   help="a study run folder, an evaluate --out folder or a sweep's study folder; several are "
                        "analysed together (agreement across all their runs)")
    p.add_argument("--out", type=Path, help="output folder (default: PATH/explain for one path)")
    p.add_argument("--data-dir", help="where the data set lives, for CIFAR-100's superclass names")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..analysis.explain import explain, superclasses_for
    from ..errors import ClasswiseError
    from ..io import check_out_dir
    from ..report import print_lines
    from ..report.explain import answers, write_explain
    from ..study.outdir import claim_out
    from ..study.stored_runs import find_runs

    if len(args.paths) > 1 and args.out is None:
        raise ClasswiseError("with several paths, say where the analysis goes with --out")
    out = args.out or args.paths[0] / "explain"
    check_out_dir(out)
    claim_out(out, "explain", continues=True)  # an analysis is remade in place; a study or a run is no place for it
    runs = []
    for path in args.paths:
        found = find_runs(path)
        if len(args.paths) > 1:
            for r in found:
                r.name = f"{path.name}:{r.name}"
        runs += found
    summary = explain(runs, superclasses_for(runs, args.data_dir))
    page, _, _ = write_explain(summary, out)
    if not args.quiet:
        print_lines([*answers(summary), f"Written: {out} (explain.json, CSV tables, figures/, {page.name})"])
    return 0
