"""Matplotlib figures: the seed's Figure 1/2 layout, per-class trends, confusion matrices."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ..io import atomic_write_bytes  # noqa: E402


def _save(fig, path: Path) -> Path:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path


def label_cells(ax, labels: np.ndarray, white: np.ndarray, fontsize: float = 6) -> None:
    """Write labels[i, j] (skipped where empty) on cell (i, j) of an image plot, in white where
    `white`. The labels sit inside their cells and never move the layout (in_layout=False):
    sizing them for it took a quarter of a 10x10 heatmap's time."""
    for (i, j), text in np.ndenumerate(labels):
        if text:
            ax.text(j, i, text, ha="center", va="center", fontsize=fontsize,
                    color="white" if white[i, j] else "black", in_layout=False)


def _bars(ax, table: pd.DataFrame, title: str, subtract_mean: bool, color: str):
    acc = table["accuracy"].to_numpy() * 100
    x = np.arange(len(acc))
    if subtract_mean:
        vals = acc - np.nanmean(acc)
        ax.bar(x, vals, color=np.where(vals < 0, "#c44e52", color))
        ax.axhline(0, color="black", lw=0.8)
        ax.set_ylabel("accuracy - mean (points)")
    else:
        err = np.vstack([acc - table["ci_low"] * 100, table["ci_high"] * 100 - acc])
        ax.bar(x, acc, color=color, yerr=err, capsize=2, error_kw={"lw": 0.8})
        ax.axhline(np.nanmean(acc), color="black", lw=0.8, ls="--", label=f"mean {np.nanmean(acc):.1f}")
        ax.set_ylim(0, 100)
        ax.set_ylabel("accuracy (%)")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.set_xticks(x)
    ax.set_xticklabels(table["class"], rotation=45, ha="right", fontsize=8)


def class_figure(clean: pd.DataFrame, robust: pd.DataFrame, title: str, robust_label: str,
                 path: Path) -> Path:
    """2x2 as in the seed's Figures 1 and 2: accuracy (top) and robustness (bottom),
    raw (left) and mean subtracted (right), 95% Wilson intervals on the raw bars."""
    wide = max(8.0, 0.45 * len(clean) + 3)
    fig, axes = plt.subplots(2, 2, figsize=(wide, 7), constrained_layout=True)
    _bars(axes[0, 0], clean, "clean accuracy", False, "#4c72b0")
    _bars(axes[0, 1], clean, "clean accuracy, mean subtracted", True, "#4c72b0")
    _bars(axes[1, 0], robust, f"robustness ({robust_label})", False, "#dd8452")
    _bars(axes[1, 1], robust, f"robustness ({robust_label}), mean subtracted", True, "#dd8452")
    fig.suptitle(title)
    return _save(fig, path)


def trend_figure(history: list[dict], classes: list[str], title: str, path: Path) -> Path:
    """Per-class validation accuracy (and robustness) over the epochs of one run."""
    keys = [k for k in ("val_clean_per_class", "val_robust_per_class") if history and k in history[0]]
    fig, axes = plt.subplots(1, len(keys), figsize=(6 * len(keys), 4), squeeze=False,
                             constrained_layout=True)
    epochs = [h["epoch"] for h in history]
    cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    for ax, key in zip(axes[0], keys, strict=True):
        vals = np.array([h[key] for h in history]) * 100
        for c, name in enumerate(classes):
            ax.plot(epochs, vals[:, c], marker="o", ms=3, color=cmap(c % cmap.N), label=name)
        ax.set_title("clean accuracy" if "clean" in key else "robust accuracy", fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation accuracy (%)")
        ax.set_xticks(epochs)
    if len(classes) <= 20:
        axes[0, -1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1, 0.5))
    fig.suptitle(title)
    return _save(fig, path)


def confusion_figure(matrices: dict[str, np.ndarray], classes: list[str], title: str, path: Path) -> Path:
    """Row-normalised confusion matrices side by side (true class down, prediction across)."""
    n = len(matrices)
    size = max(4.0, 0.35 * len(classes) + 2)
    fig, axes = plt.subplots(1, n, figsize=(size * n, size), squeeze=False, constrained_layout=True)
    for ax, (name, cm) in zip(axes[0], matrices.items(), strict=True):
        rows = cm.sum(1, keepdims=True)
        norm = np.divide(cm, rows, out=np.zeros_like(cm, dtype=float), where=rows > 0)
        im = ax.imshow(norm * 100, cmap="Blues", vmin=0, vmax=100)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        if len(classes) <= 20:
            ax.set_xticks(range(len(classes)))
            ax.set_yticks(range(len(classes)))
            ax.set_xticklabels(classes, rotation=90, fontsize=7)
            ax.set_yticklabels(classes, fontsize=7)
            label_cells(ax, np.where(norm >= 0.01, np.char.mod("%.0f", norm * 100), ""), norm > 0.5)
        fig.colorbar(im, ax=ax, shrink=0.8, label="% of the true class")
    fig.suptitle(title)
    return _save(fig, path)
