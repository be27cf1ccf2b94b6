"""One self-contained HTML report: figures inlined as base64 PNG, tables as HTML."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd

from ..io import atomic_write_text

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222}
h1{font-size:1.6em} h2{margin-top:1.8em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85em;margin:.8em 0}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right} th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}
.answer{background:#f6f8fa;border-left:4px solid #4c72b0;padding:.6em 1em;margin:.8em 0}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}
.meta{color:#666;font-size:.85em}
"""


def _img(path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<img alt="{html.escape(Path(path).stem)}" src="data:image/png;base64,{data}">'


def _table(df: pd.DataFrame) -> str:
    return df.to_html(index=False, float_format=lambda v: f"{v:.4f}", border=0, escape=True)


def write_report(path: Path, title: str, meta: list[str], answers: list[str],
                 sections: list[tuple[str, list]]) -> Path:
    """`sections` is a list of (heading, items); an item is a DataFrame, an image path or text."""
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    parts += [f"<p class='meta'>{html.escape(m)}</p>" for m in meta]
    parts += [f"<div class='answer'>{html.escape(a)}</div>" for a in answers]
    for heading, items in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        for item in items:
            if isinstance(item, pd.DataFrame):
                parts.append(_table(item))
            elif isinstance(item, Path):
                parts.append(_img(item))
            else:
                parts.append(f"<p>{html.escape(str(item))}</p>")
    parts.append("</body></html>")
    atomic_write_text(path, "\n".join(parts))
    return path
