"""Natural corruptions in a report: the class x corruption heatmap (per-class accuracy under each
corruption, mean over its severities, clean and the mean beside it), the answers in sentences,
and a study's or an evaluation's corruption section (heatmaps and the per-class CSV)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ..analysis.corruption import class_table, corruption_keys, long_table, summary  # noqa: E402
from ..rounding import percent  # noqa: E402
from .figures import _save, label_cells  # noqa: E402


def corruption_heatmap(table: pd.DataFrame, title: str, path: Path) -> Path:
    """`table`: one row per class, columns `clean`, one per corruption, `mean` (fractions)."""
    vals = table.to_numpy(dtype=float) * 100
    rows, cols = vals.shape
    fig, ax = plt.subplots(figsize=(0.55 * cols + 2.5, 0.38 * rows + 1.8))
    im = ax.imshow(vals, cmap="viridis", vmin=0, vmax=100, aspect="auto")
    label_cells(ax, np.where(np.isfinite(vals), np.char.mod("%.0f", vals), ""), vals < 55, fontsize=7)
    ax.set_xticks(range(cols), [c.replace("_", " ") for c in table.columns], rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(rows), [str(c) for c in table.index], fontsize=8)
    for j in (0.5, cols - 1.5):  # clean | corruptions | mean
        ax.axvline(j, color="white", lw=2)
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.03, pad=0.02, label="accuracy (%)")
    return _save(fig, Path(path))


def answers(summaries: dict[str, dict], reference: str = "standard") -> list[str]:
    """One line per model (the rank correlation), one per adversarially trained model against
    `reference` (does the weakest class under corruption move?)."""
    lines = []
    for arm, s in summaries.items():
        rho = "undefined (a constant error)" if s.get("spearman") is None else \
            f"rho = {s['spearman']:+.2f} (p = {s['p_value']:.3g})"
        lines.append(f"Corruption vs adversarial error across classes, {arm} model: Spearman {rho} over "
                     f"{len(s['per_class'])} classes ({s['attack']}; {len(s['corruptions'])} corruptions x severities "
                     f"{','.join(map(str, s['severities']))}); weakest under corruption '{s['worst_class']}' "
                     f"({percent(s['worst'])}, {percent(s['relative'][s['worst_class']], 0)} of its clean accuracy), "
                     f"mean corruption accuracy {percent(s['overall'])} vs {percent(s['clean'])} clean.")
    if reference in summaries:
        base = summaries[reference]["worst_class"]
        for arm, s in summaries.items():
            if arm == reference:
                continue
            moved = s["worst_class"] != base
            lines.append(f"Weakest class under corruption, {reference} -> {arm}: '{base}' -> '{s['worst_class']}': "
                         f"adversarial training {'MOVES' if moved else 'does not move'} the weakest class "
                         f"(relative to clean: '{summaries[reference]['worst_relative_class']}' -> "
                         f"'{s['worst_relative_class']}').")
    return lines


def corruption_section(results_dir, evals_by_arm: dict, attack: str | None = None, reference: str = "standard",
                       *, draw: bool = True):
    """For a study: (answer lines, {name: heatmap path} (none unless `draw`), {arm: summary})
    from each arm's evaluation (an EvalResult or a path to its eval.json); arms without corruption
    results are skipped. `attack` defaults to each evaluation's first robust key."""
    from ..evaluation import EvalResult
    from ..io import atomic_write_text

    results_dir = Path(results_dir)
    summaries, figures, tables = {}, {}, []
    for arm, res in evals_by_arm.items():
        if not isinstance(res, EvalResult):
            import json

            res = EvalResult.from_dict(json.loads(Path(res).read_text()))
        if not corruption_keys(res):
            continue
        key = attack or next(iter(res.robust_keys), None)
        summaries[arm] = summary(res, key)
        table = class_table(res)
        if draw:
            figures[f"corruption_{arm}"] = corruption_heatmap(
                table, f"Per-class accuracy (%) under corruption, {arm} model (mean over severities)",
                results_dir / "figures" / f"corruption_{arm}.png")
        tables.append(long_table(res).assign(arm=arm))
    if tables:
        atomic_write_text(results_dir / "corruption_per_class.csv", pd.concat(tables).to_csv(index=False))
    lines = answers(summaries, reference) if summaries else []
    return lines, figures, summaries
