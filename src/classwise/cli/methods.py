"""`classwise methods`: the training objectives, their papers and parameters."""

from __future__ import annotations

ORDER = 75


def add_parser(sub) -> None:
    p = sub.add_parser("methods", help="training methods (objectives): paper, parameters and defaults")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown (the README's listing)")
    p.set_defaults(func=run)


def run(args) -> int:
    from rich.table import Table

    from ..report.table import console
    from ..train.objectives import OBJECTIVES
    from .objective_options import _flag

    if args.markdown:
        print(markdown(OBJECTIVES, _flag))
        return 0
    table = Table(title="Training methods (`--method NAME`, `--methods A,B,...`)", title_justify="left")
    for col in ("name", "paper", "adversarial", "parameters (flag = default)"):
        table.add_column(col)
    for name, cls in OBJECTIVES.items():
        params = [f"{_flag(name, f)} = {info.default!r}" for f, info in cls.Params.model_fields.items()]
        table.add_row(name, cls.paper, "yes" if cls.adversarial else "no", "\n".join(params) or "-")
    console.print(table)
    return 0


def markdown(objectives, flag) -> str:
    rows = ["| method | paper | adversarial | parameters (flag = default) |", "| --- | --- | --- | --- |"]
    for name, cls in sorted(objectives.items()):
        params = "<br>".join(f"`{flag(name, f)}` = `{info.default!r}`" for f, info in cls.Params.model_fields.items())
        rows.append(f"| `{name}` | {cls.paper} | {'yes' if cls.adversarial else 'no'} | {params or '-'} |")
    return "\n".join(rows)
