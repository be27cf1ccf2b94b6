"""The figure a reader of a fair adversarial training paper looks for first: worst-class
robust accuracy against mean robust accuracy, one point per arm of a study."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .figures import _save  # noqa: E402


def tradeoff_figure(points: list[dict], title: str, path: Path) -> Path:
    """`points`: one dict per arm with `arm`, `mean`, `worst` (fractions) and optionally
    `mean_ci`, `worst_ci` ((low, high) fractions), drawn as 95% error bars."""
    fig, ax = plt.subplots(figsize=(6.5, 5), constrained_layout=True)
    cmap = plt.get_cmap("tab10")
    for i, p in enumerate(points):
        x, y = p["mean"] * 100, p["worst"] * 100
        xerr = yerr = None
        if p.get("mean_ci") is not None:
            xerr = np.array([[x - p["mean_ci"][0] * 100], [p["mean_ci"][1] * 100 - x]]).clip(0)
        if p.get("worst_ci") is not None:
            yerr = np.array([[y - p["worst_ci"][0] * 100], [p["worst_ci"][1] * 100 - y]]).clip(0)
        ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt="o", ms=7, capsize=3, color=cmap(i % cmap.N), label=p["arm"])
        ax.annotate(p["arm"], (x, y), textcoords="offset points", xytext=(6, 6), fontsize=8)
    ax.set_xlabel("mean robust accuracy over classes (%)")
    ax.set_ylabel("worst-class robust accuracy (%)")
    ax.grid(alpha=0.3)
    if len(points) <= 12:
        ax.legend(fontsize=8, loc="best")
    ax.set_title(title, fontsize=10)
    return _save(fig, path)
