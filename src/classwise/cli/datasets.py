"""`classwise datasets`: what is available locally, and where."""

from __future__ import annotations

ORDER = 60


def add_parser(sub) -> None:
    p = sub.add_parser("datasets", help="which data sets are available locally, and where")
    p.add_argument("--data-dir")
    p.add_argument("--download", nargs="*", metavar="NAME", help="download these data sets")
    p.set_defaults(func=run)



def run(args) -> int:
    from rich.table import Table

    from ..data import DATASETS, get_spec, load_raw, search_roots
    from ..report.table import console

    roots = search_roots(args.data_dir)
    for name in args.download or []:
        spec = get_spec(name)
        if spec.builtin:
            continue
        train, test = load_raw(name, args.data_dir, download=True)
        console.print(f"{name}: {len(train)} training and {len(test)} test images at {spec.locate(roots)}")
    rows = []
    for name, spec in sorted(DATASETS.items()):
        found = None if spec.needs_data_dir and not args.data_dir else spec.locate(roots)
        if spec.builtin:
            status, where = "built in", spec.how_to_get
        elif found:
            status, where = "found", str(found)
        else:
            status, where = "missing", spec.how_to_get
        rows.append((name, status, where, spec.default_arch, spec.description))
    if not console.is_terminal:
        # piped or redirected: whole lines (a table would cut the paths to the width of no terminal)
        print("\t".join(("name", "status", "location / how to get it", "default arch", "description")))
        for row in rows:
            print("\t".join(row))
        print("Searched roots: " + ", ".join(str(r) for r in roots))
        return 0
    table = Table(title="Data sets", title_justify="left")
    for col in ("name", "status", "location / how to get it", "default arch", "description"):
        table.add_column(col, overflow="fold")
    colour = {"found": "[green]found[/green]", "missing": "[red]missing[/red]"}
    for name, status, where, arch, description in rows:
        table.add_row(name, colour.get(status, status), where, arch, description)
    console.print(table)
    console.print("Searched roots: " + ", ".join(str(r) for r in roots))
    return 0
