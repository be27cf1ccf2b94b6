"""Terminal tables (rich)."""

from __future__ import annotations

import pandas as pd
from rich.console import Console
from rich.table import Table

from ..rounding import points

console = Console()  # results go to stdout; progress and logs to stderr


def print_per_class(df: pd.DataFrame, title: str, worst: set[str] | None = None) -> None:
    """`df` has a `class` column and accuracy columns (fractions, shown as percentages); a text
    column is shown as it is."""
    table = Table(title=title, title_justify="left")
    for col in df.columns:
        table.add_column(str(col), justify="left" if col == "class" else "right")
    for _, row in df.iterrows():
        cells = [str(row[c]) if c == "class" or isinstance(row[c], str) else
                 points(row[c]) for c in df.columns]
        style = "bold red" if worst and row["class"] in worst else None
        table.add_row(*cells, style=style)
    console.print(table)


def print_lines(lines: list[str]) -> None:
    for line in lines:
        console.print(line, soft_wrap=True, highlight=False)
