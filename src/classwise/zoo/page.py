"""The per-class leaderboard as one self-contained HTML page: the answers first (check against
the published numbers, the frontier, the agreement across models), then the leaderboard table,
sortable by any column (a click on its header; numbers sort as numbers), the comparison with the
published numbers, the frontier figure inlined, each model's per-class table folded, and the
models that could not be loaded."""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from ..io import atomic_write_text
from ..report.html import _CSS, _img

_SORT_CSS = """
table.sortable th{cursor:pointer;user-select:none} table.sortable th:after{content:" \\2195";color:#aaa}
table.sortable th.asc:after{content:" \\2191";color:#222} table.sortable th.desc:after{content:" \\2193";color:#222}
tr.flag td{background:#fdecea} details{margin:.3em 0} summary{cursor:pointer}
"""

# click a header: sort its table by that column (numbers as numbers, empty cells last), again to reverse
_SORT_JS = """
document.querySelectorAll('table.sortable').forEach(function(t){
  t.querySelectorAll('th').forEach(function(th, col){
    th.addEventListener('click', function(){
      var asc = !th.classList.contains('asc');
      t.querySelectorAll('th').forEach(function(h){h.classList.remove('asc','desc');});
      th.classList.add(asc ? 'asc' : 'desc');
      var body = t.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      function key(r){var v = r.cells[col].getAttribute('data-v'); if (v === null) v = r.cells[col].textContent;
        var x = parseFloat(v); return (v.trim() === '' || isNaN(x)) ? [1, v] : [0, x];}
      rows.sort(function(a, b){var x = key(a), y = key(b);
        if (x[0] !== y[0]) return x[0] - y[0];
        var c = (typeof x[1] === 'number') ? x[1] - y[1] : String(x[1]).localeCompare(String(y[1]));
        return asc ? c : -c;});
      rows.forEach(function(r){body.appendChild(r);});
    });
  });
});
"""


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "<td data-v=''></td>"
    if isinstance(value, bool):
        return f"<td>{'yes' if value else 'no'}</td>"
    if isinstance(value, float):
        return f"<td data-v='{value!r}'>{value:.2f}</td>"
    return f"<td>{html.escape(str(value))}</td>"


def sortable_table(df: pd.DataFrame, flag: bool = False) -> str:
    """A table whose columns sort on a click; with `flag`, rows whose check says DIFFERS are marked."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    rows = []
    for _, r in df.iterrows():
        flagged = flag and any("DIFFERS" in str(r[c]) for c in df.columns if c.endswith("check"))
        rows.append(f"<tr{' class=flag' if flagged else ''}>" + "".join(_cell(v) for v in r.tolist()) + "</tr>")
    return f"<table class='sortable'><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _percent(board: pd.DataFrame) -> pd.DataFrame:
    """Accuracies as percent for the page (the CSV keeps fractions)."""
    out = board.copy()
    for c in out.columns:
        if out[c].dtype.kind == "f" and c not in ("year",) and not c.endswith("_check"):
            out[c] = out[c] * 100
    return out


def write_page(path: Path, *, title: str, meta: list[str], answers: list[str], board: pd.DataFrame,
               comparison: pd.DataFrame, figure: Path | None, per_class: pd.DataFrame,
               failures: dict[str, str]) -> Path:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{_CSS}{_SORT_CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    parts += [f"<p class='meta'>{html.escape(m)}</p>" for m in meta]
    parts += [f"<div class='answer'>{html.escape(a)}</div>" for a in answers]
    parts.append("<h2>Per-class leaderboard</h2><p class='meta'>Accuracies in percent; click a column to sort. "
                 "worst_low / worst_high: the worst class's 95% Wilson interval; low / high: the overall "
                 "accuracy's. Rows whose overall number differs from the published one beyond that interval are "
                 "marked.</p>")
    parts.append(sortable_table(_percent(board), flag=True))
    parts.append("<h2>Against the published numbers</h2>")
    parts.append(sortable_table(comparison, flag=True))
    if figure is not None:
        parts.append("<h2>Worst class against class mean: the frontier</h2>" + _img(figure))
    if failures:
        parts.append("<h2>Models that could not be evaluated</h2><ul>"
                     + "".join(f"<li>{html.escape(m)}: {html.escape(w)}</li>" for m, w in failures.items()) + "</ul>")
    if not per_class.empty:
        parts.append("<h2>Per class, model by model</h2>")
        for model, rows in per_class.groupby("model", sort=False):
            wide = rows.pivot_table(index="class", columns="side", values="accuracy", sort=False) * 100
            wide = wide.reindex(list(dict.fromkeys(rows["class"]))).reset_index()
            parts.append(f"<details><summary>{html.escape(str(model))}</summary>{sortable_table(wide)}</details>")
    parts.append(f"<script>{_SORT_JS}</script></body></html>")
    atomic_write_text(path, "\n".join(parts))
    return path
