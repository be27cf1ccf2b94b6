"""`classwise methods`: the training objectives, their papers and parameters."""

from __future__ import annotations

ORDER = 75


def add_parser(sub) -> None:
    p = sub.add_parser("methods", help="training methods (objectives): paper, parameters and defaults")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown (the README's listing)")
    p.add_argument("--differences", action="store_true",
                   help="what each method's parameters can change from its authors' released code")
    p.set_defaults(func=run)


def run(args) -> int:
    from rich.table import Table

    from ..report.table import console
    from ..training.objectives import OBJECTIVES
    from .objective_options import _flag

    if args.differences:
        print(differences(OBJECTIVES, _flag, markdown=args.markdown))
        return 0
    if args.markdown:
        print(markdown(OBJECTIVES, _flag))
        return 0
    table = Table(title="Training methods (`--method NAME`, `--methods A,B,...`)", title_justify="left")
    for col in ("name", "paper", "adapts from", "parameters (flag = default)"):
        table.add_column(col)
    for name, cls in OBJECTIVES.items():
        params = [f"{_flag(name, f)} = {info.default!r}" for f, info in cls.Params.model_fields.items()]
        table.add_row(name, cls.paper + (f"\n{cls.code}" if cls.code else ""), adapts_from(cls),
                      "\n".join(params) or "-")
    console.print(table)
    return 0


def adapts_from(cls) -> str:
    """The per-class statistics a method declares, in words."""
    where = {"batch": "the batch", "training": "the epoch's training batches", "check": "the validation check",
             "validation": "its own validation attack"}
    return "; ".join(f"{st.what} ({where[st.source]}, epoch {st.when})" if st.source != "batch" else st.what
                     for st in cls.statistics) or "-"


def markdown(objectives, flag) -> str:
    rows = ["| method | paper | adversarial | adapts from | parameters (flag = default) |",
            "| --- | --- | --- | --- | --- |"]
    for name, cls in sorted(objectives.items()):
        params = "<br>".join(f"`{flag(name, f)}` = `{info.default!r}`" for f, info in cls.Params.model_fields.items())
        rows.append(f"| `{name}` | {cls.paper} | {'yes' if cls.adversarial else 'no'} | {adapts_from(cls)} | "
                    f"{params or '-'} |")
    return "\n".join(rows)


def differences(objectives, flag, markdown: bool = False) -> str:
    """Every documented departure from a method's released code: method, parameter, what the
    authors' code does, what the option does, why. The defaults are the authors'."""
    rows = [(name, f"`{flag(name, d.parameter)}`" if markdown else flag(name, d.parameter), d.authors, d.option, d.why)
            for name, cls in sorted(objectives.items()) for d in cls.differences]
    if markdown:
        head = ["| method | parameter | the authors' code | the option | why |", "| --- | --- | --- | --- | --- |"]
        return "\n".join([*head, *(f"| `{r[0]}` | {' | '.join(r[1:])} |" for r in rows)])
    return "\n".join(f"{m} {p}: authors: {a}; option: {o}; why: {w}" for m, p, a, o, w in rows)
