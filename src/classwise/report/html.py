"""One self-contained HTML report: figures inlined as base64 PNG, tables as HTML. It leads with
the answer: the headline sentences first, then the sections in order, the ones marked
`folded` inside a <details> a reader opens when they want the detail. A missing value in a
table reads "n/a" (the section says why), never NaN or None."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..io import atomic_write_text

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:1.2em auto;
padding:0 1em;color:#222}
h1{font-size:1.5em;margin:.2em 0 .4em} h2{margin-top:1.6em;border-bottom:1px solid #ddd;font-size:1.2em}
table{border-collapse:collapse;font-size:.85em;margin:.8em 0}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right} th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}
.answer{background:#f6f8fa;border-left:4px solid #4c72b0;padding:.5em 1em;margin:.5em 0}
.headline .answer{font-size:1.05em}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}
.figures{display:flex;flex-wrap:wrap;gap:1%} .figures figure{margin:0;width:49%} .figures img{max-width:100%}
figcaption{font-size:.8em;color:#555}
.meta{color:#666;font-size:.85em}
details{margin:.6em 0} summary{cursor:pointer;font-weight:600;font-size:1.05em;margin:.4em 0}
"""

NA = "n/a"


@dataclass
class Section:
    """A heading and its items (DataFrames, image paths or (path, caption) pairs, text);
    `folded` ones open on a click; `figures` puts the images side by side."""

    heading: str
    items: list = field(default_factory=list)
    folded: bool = False
    figures: bool = False  # images side by side


def _img(path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<img alt="{html.escape(Path(path).stem)}" src="data:image/png;base64,{data}">'


def _cell(v):
    if v is None or (isinstance(v, float) and v != v):
        return NA
    return f"{v:.4f}" if isinstance(v, float) else v


def _table(df: pd.DataFrame) -> str:
    return df.astype(object).map(_cell).to_html(index=False, border=0, escape=True)


def _items(items: list) -> list[str]:
    out = []
    for item in items:
        if isinstance(item, pd.DataFrame):
            out.append(_table(item))
        elif isinstance(item, Path):
            out.append(_img(item))
        elif isinstance(item, tuple):
            path, caption = item
            out.append(f"<figure>{_img(path)}<figcaption>{html.escape(caption)}</figcaption></figure>")
        else:
            out.append(f"<p>{html.escape(str(item))}</p>")
    return out


def write_report(path: Path, title: str, headline: list[str], meta: list[str], sections: list[Section],
                 answers: list[str] = ()) -> Path:
    """The page: `headline` (at most a handful of sentences), `meta` (what was run), the
    sections, and every answer (`answers`, folded) last."""
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>", "<div class='headline'>"]
    parts += [f"<div class='answer'>{html.escape(a)}</div>" for a in headline]
    parts.append("</div>")
    parts += [f"<p class='meta'>{html.escape(m)}</p>" for m in meta]
    if answers:
        sections = [*sections, Section("Every answer", list(answers), folded=True)]
    for s in sections:
        body = _items(s.items)
        if s.figures:
            body = ["<div class='figures'>", *body, "</div>"]
        if s.folded:
            parts += ["<details>", f"<summary>{html.escape(s.heading)}</summary>", *body, "</details>"]
        else:
            parts += [f"<h2>{html.escape(s.heading)}</h2>", *body]
    parts.append("</body></html>")
    atomic_write_text(path, "\n".join(parts))
    return path
