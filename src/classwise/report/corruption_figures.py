"""The class x corruption heatmap: per-class accuracy under each corruption (mean over its
severities), with clean and the mean over corruptions beside it."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

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
