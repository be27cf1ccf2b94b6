"""The fair-robustness frontier of the field: each model as a point (class mean, worst class);
a model is on the frontier when no other model is at least as good on both and better on one.
The figure puts every model of the zoo on those two axes, clean and robust side by side, with
the worst class's 95% interval, and names the models on the frontier."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def on_frontier(mean, worst) -> np.ndarray:
    """Boolean mask of the points not dominated in (mean, worst); NaN points never are on it."""
    m, w = np.asarray(mean, dtype=float), np.asarray(worst, dtype=float)
    ok = ~(np.isnan(m) | np.isnan(w))
    out = np.zeros(len(m), dtype=bool)
    for i in np.flatnonzero(ok):
        better = ok & (m >= m[i]) & (w >= w[i]) & ((m > m[i]) | (w > w[i]))
        out[i] = not better.any()
    return out


def frontier_models(board: pd.DataFrame, side: str) -> list[str]:
    """The models on the frontier of `side` (clean, robust, corrupted), best class mean first."""
    if board.empty or f"{side}_mean" not in board:
        return []
    mask = on_frontier(board[f"{side}_mean"], board[f"{side}_worst"])
    return list(board[mask].sort_values(f"{side}_mean", ascending=False)["model"])


def frontier_figure(board: pd.DataFrame, sides: tuple[str, ...], title: str, path: Path) -> Path:
    from ..report.figures import _save, plt

    fig, axes = plt.subplots(1, len(sides), figsize=(5.5 * len(sides), 4.8), constrained_layout=True, squeeze=False)
    for ax, side in zip(axes[0], sides, strict=True):
        if f"{side}_mean" not in board or board[f"{side}_mean"].isna().all():
            ax.set_axis_off()
            continue
        m, w = board[f"{side}_mean"].to_numpy(float) * 100, board[f"{side}_worst"].to_numpy(float) * 100
        lo, hi = board[f"{side}_worst_low"].to_numpy(float) * 100, board[f"{side}_worst_high"].to_numpy(float) * 100
        front = on_frontier(m, w)
        ax.errorbar(m[~front], w[~front], yerr=[w[~front] - lo[~front], hi[~front] - w[~front]], fmt="o", ms=4,
                    color="#8c8c8c", ecolor="#d0d0d0", elinewidth=1, label="models")
        ax.errorbar(m[front], w[front], yerr=[w[front] - lo[front], hi[front] - w[front]], fmt="o", ms=6,
                    color="#c44e52", ecolor="#e8a9aa", elinewidth=1, label="on the frontier")
        order = np.argsort(m[front])
        ax.step(m[front][order], w[front][order], where="post", color="#c44e52", lw=1, alpha=0.6)
        for name, x, y in zip(board["model"][front], m[front], w[front], strict=True):
            ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
        finite = np.isfinite(m) & np.isfinite(w)
        if finite.any():
            lim = [max(0.0, min(w[finite].min(), m[finite].min()) - 5), min(100.0, max(m[finite].max(), 0) + 5)]
            ax.plot(lim, lim, ls=":", color="#999", lw=1, label="worst = mean")
        ax.set_xlabel(f"{side} accuracy, mean over classes (%)")
        ax.set_ylabel(f"{side} accuracy of the worst class (%)")
        ax.set_title(f"{side}: worst class vs class mean", fontsize=10)
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)
