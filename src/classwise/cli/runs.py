"""`classwise runs`: a study's runs and status, or its tidy per-class export."""

from __future__ import annotations

from pathlib import Path

from ..errors import ClasswiseError

ORDER = 50


def add_parser(sub) -> None:
    p = sub.add_parser("runs", help="list a study's runs and status, or export its per-class results")
    p.add_argument("study", type=Path, help="study folder, its study.db, or its TOML config")
    p.add_argument("--export", choices=["csv", "parquet"], help="write the tidy per-class table")
    p.add_argument("--output", type=Path, help="export file (default next to study.db)")
    p.add_argument("--by-config", action="store_true",
                   help="group runs that differ only in seed: their seeds and mean ± std of the final accuracy")
    p.set_defaults(func=run)



def _study_db(target: Path) -> Path:
    """A study folder, its study.db, or the TOML config that names it."""
    from ..study.grid import load_grid
    from ..study.sweep import DB, study_dir_for

    if target.suffix == ".toml":
        target = study_dir_for(load_grid(target), None)
    # any file given by name is checked as a database (and refused if it is none)
    db = target if target.is_file() or target.suffix == ".db" else target / DB
    if not db.is_file():
        raise ClasswiseError(f"no study database at {db}; run `classwise sweep CONFIG` first")
    return db


def run(args) -> int:
    from ..io import check_out_file
    from ..report.table import console
    from ..study.store import Store

    db = _study_db(args.study)
    out = (args.output or db.with_name(f"results.{args.export}")) if args.export else None
    if out is not None:
        check_out_file(out, "--output")
        if out.resolve() == db.resolve():
            raise ClasswiseError(f"--output {out} is the study database itself; give another file")
    store = Store(db, readonly=True)  # listing or exporting never writes into the database
    if args.export:
        table = store.tidy()
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
    if args.by_config:
        from ..analysis.seeds import by_config

        runs = by_config({i: store.config(i) for i in runs["id"]}, dict(zip(runs["id"], runs["status"], strict=True)),
                         store.tidy())
    table = Table(title=f"{db}", title_justify="left")
    for col in runs.columns:
        table.add_column(str(col))
    for _, row in runs.iterrows():
        style = {"finished": "green", "failed": "red", "running": "yellow"}.get(row.get("status"))
        table.add_row(*["" if v is None else str(v) for v in row], style=style)
    console.print(table)
    if not args.by_config:
        counts = runs["status"].value_counts().to_dict()
        console.print(", ".join(f"{v} {k}" for k, v in counts.items()))
    return 0
