"""The explain section: the answers (every sentence about an `analysis.explain.explain`
summary), heatmaps (confusion, adversarial flow, class similarity, agreement between runs,
superclass flow), tidy CSV tables, and the HTML section built from them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..io import atomic_write_json, atomic_write_text, safe_name
from ..rounding import percent
from .figures import _save, label_cells, plt
from .html import NA, Section, write_report
from .sentences import corr_text, factor_sentence, flow_sentence, kendall_sentence, runs_text


def heatmap(matrix, rows: list[str], cols: list[str], title: str, path: Path, *, percent: bool = True,
            vmin: float | None = 0, vmax: float | None = None, cmap: str = "Blues", label: str = "") -> Path:
    m = np.asarray(matrix, dtype=float) * (100 if percent else 1)
    size = max(4.0, 0.38 * len(cols) + 2.5)
    fig, ax = plt.subplots(figsize=(size, max(3.5, 0.38 * len(rows) + 2)), constrained_layout=True)
    im = ax.imshow(m, cmap=cmap, vmin=vmin, vmax=vmax if vmax is not None else (100 if percent else None))
    if len(cols) <= 25:
        ax.set_xticks(range(len(cols)))
        ax.set_yticks(range(len(rows)))
        ax.set_xticklabels(cols, rotation=90, fontsize=7)
        ax.set_yticklabels(rows, fontsize=7)
        hi = np.nanmax(np.abs(m)) if np.isfinite(m).any() else 1
        shown = np.isfinite(m) & (m >= 1 if percent else True)
        label_cells(ax, np.where(shown, np.char.mod("%.0f" if percent else "%.2f", m), ""), np.abs(m) > 0.6 * hi)
    fig.colorbar(im, ax=ax, shrink=0.8, label=label)
    ax.set_title(title, fontsize=9)
    return _save(fig, path)


def _rownorm(m) -> np.ndarray:
    m = np.asarray(m, dtype=float)
    rows = m.sum(1, keepdims=True)
    return np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)


def figures(summary: dict, fig_dir: Path) -> dict[str, list[Path]]:
    """Figures per run and for the agreement between runs."""
    classes = summary["classes"]
    out: dict[str, list[Path]] = {}
    for r in summary["runs"]:
        tag = safe_name(r["name"])
        figs = [heatmap(_rownorm(r["confusion"]["counts"]), classes, classes, f"{r['name']}: clean confusion "
                        "(% of the true class)", fig_dir / f"confusion_{tag}.png", label="% of the true class")]
        if "flow" in r:
            figs.append(heatmap(r["flow"]["fooled_share"], classes, classes,
                                f"{r['name']}: where fooled images go under {r['robust_key']} (% of the fooled)",
                                fig_dir / f"flow_{tag}.png", cmap="Reds", label="% of fooled images of the row"))
        for label, s in r["similarity"].items():
            figs.append(heatmap(s["matrix"], classes, classes, f"{r['name']}: cosine similarity of mean {label}",
                                fig_dir / f"similarity_{tag}_{safe_name(label)}.png", percent=False, vmin=-1, vmax=1,
                                cmap="RdBu_r", label="cosine"))
        if "superclass" in r:
            sc = r["superclass"]
            names = sc["superclasses"]
            for which in ("flow_clean", "flow_adversarial"):
                if which in sc:
                    figs.append(heatmap(_rownorm(sc[which]), names, names,
                                        f"{r['name']}: {which[5:]} errors, true -> predicted superclass",
                                        fig_dir / f"superclass_{which}_{tag}.png", cmap="Purples",
                                        label="% of the superclass's errors"))
        out[r["name"]] = figs
    ag = summary["agreement"]
    agree = []
    for metric, e in ag["metrics"].items():
        if "spearman" in e:
            agree.append(heatmap(e["spearman"], ag["runs"], ag["runs"], f"Spearman correlation of per-class {metric} "
                                 "accuracy between runs", fig_dir / f"agreement_spearman_{metric}.png", percent=False,
                                 vmin=-1, vmax=1, cmap="RdBu_r", label="Spearman rho"))
    out["agreement"] = agree
    return out


def tables(summary: dict) -> dict[str, pd.DataFrame]:
    classes = summary["classes"]
    per_class, flows, sims, sups = [], [], [], []
    for r in summary["runs"]:
        for i, c in enumerate(classes):
            row = {"run": r["name"], "class": c, "clean_accuracy": r["per_class"]["clean"][i]}
            if "robust" in r["per_class"]:
                row["robust_accuracy"] = r["per_class"]["robust"][i]
            for label, s in r["similarity"].items():
                key = label.replace(" ", "_")
                row[f"nearest_{key}"] = s["nearest"][i]
                row[f"nearest_{key}_cosine"] = s["nearest_similarity"][i]
            per_class.append(row)
        for kind, key in (("clean confusion", "confusion"), ("adversarial flow", "flow")):
            if key not in r:
                continue
            m = np.asarray(r[key]["counts"])
            off = m - np.diag(np.diag(m))
            for t in range(len(classes)):
                for p in range(len(classes)):
                    if t != p and m[t, p]:
                        flows.append({"run": r["name"], "kind": kind, "true": classes[t], "pred": classes[p],
                                      "count": int(m[t, p]), "share_of_errors": m[t, p] / off[t].sum(),
                                      "share_of_class": m[t, p] / m[t].sum()})
        for label, s in r["similarity"].items():
            for err, c in s["correlation"].items():
                sims.append({"run": r["name"], "similarity": label, "error": err, **c})
        if "superclass" in r:
            for t in r["superclass"]["table"]:
                sups.append({"run": r["name"], **t})
    out = {"per_class": pd.DataFrame(per_class), "flows": pd.DataFrame(flows),
           "similarity_vs_error": pd.DataFrame(sims)}
    if sups:
        out["superclass"] = pd.DataFrame(sups)
    ag = summary["agreement"]
    rows = []
    for metric, e in ag["metrics"].items():
        for f, fa in e.get("factors", {}).items():
            rows.append({"metric": metric, "factor": f, "within": fa["within"], "across": fa["across"],
                         "delta": fa["delta"], "n_within": fa["n_within"], "n_across": fa["n_across"], "p": fa["p"],
                         "depends": {True: "yes", False: "no", None: NA}[fa["depends"]]})
    if rows:
        out["factors"] = pd.DataFrame(rows)
    return out


FACTOR_NA = ("n/a in the factor table: a factor whose every run has its own level has no pair of runs with the "
             "same level, so neither the within-level agreement, the difference, its p-value nor a verdict exists.")


def sections(summary: dict, figs: dict[str, list[Path]], tabs: dict[str, pd.DataFrame]) -> list[Section]:
    """The explain sections of a report: the agreement across runs first, each run's detail folded
    (a study report folds them all)."""
    ag = summary["agreement"]
    items: list = []
    for metric, e in ag["metrics"].items():
        if "kendall_w" in e:
            items.append(kendall_sentence(metric, e, ag["k"], runs_text(ag["design"])))
            items += [factor_sentence(f, metric) for f in e.get("factors", {}).values()]
    if "factors" in tabs:
        items.append(tabs["factors"])
        if (tabs["factors"]["depends"] == NA).any():
            items.append(FACTOR_NA)
    items += figs.get("agreement", [])
    out = [Section("Agreement of the weak classes across runs", items)] if items else []
    for r in summary["runs"]:
        lines = [f"clean accuracy {percent(r['clean_accuracy'], 2)}"
                 + (f", {r['robust_key']} {percent(r['robust_accuracy'], 2)}" if r.get("robust_key") else ""),
                 "clean confusion clusters: " + ("; ".join("{" + ", ".join(g) + "}" for g in r["confusion"]["clusters"])
                                                  or "none") + f"; symmetry {r['confusion']['symmetry']:.2f}"]
        if "flow" in r:
            lines.append("top adversarial flows: " + "; ".join(flow_sentence(f) for f in r["flow"]["top"])
                         + f"; symmetry {r['flow']['symmetry']:.2f}")
        if "superclass" in r:
            sc = r["superclass"]
            lines.append(f"errors inside the true superclass: clean {percent(sc['clean']['share'])}"
                         + (f", adversarial {percent(sc['adversarial']['share'])}" if "adversarial" in sc else "")
                         + f" (chance {percent(sc['clean']['chance'])})")
        sim = tabs["similarity_vs_error"]
        sel = sim[sim.run == r["name"]] if len(sim) else sim
        out.append(Section(f"Run {r['name']}", [*lines, *([sel.drop(columns="run")] if len(sel) else []),
                                                *figs.get(r["name"], [])], folded=True))
    return out


def write_explain(summary: dict, out_dir, *, draw: bool = True) -> tuple[Path, dict[str, list[Path]],
                                                                         dict[str, pd.DataFrame]]:
    """explain.json, one CSV per table, figures/ (unless not `draw`) and explain.html in `out_dir`;
    returns the page, the figures and the tables (a study report shows them too)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = {**summary, "answers": answers(summary)}
    atomic_write_json(out_dir / "explain.json", summary)
    tabs = tables(summary)
    for name, df in tabs.items():
        atomic_write_text(out_dir / f"{name}.csv", df.to_csv(index=False))
    figs = figures(summary, out_dir / "figures") if draw else {}
    ag = summary["agreement"]
    lead = [kendall_sentence(m, e, ag["k"], runs_text(ag["design"])) for m, e in ag["metrics"].items()
            if "kendall_w" in e] or summary["answers"][:1]
    page = write_report(out_dir / "explain.html", "Why the weak classes are weak", lead[:5],
                        [f"{len(summary['runs'])} runs, {len(summary['classes'])} classes"],
                        sections(summary, figs, tabs), answers=summary["answers"])
    return page, figs, tabs


def answers(summary: dict) -> list[str]:
    """The explain summary in sentences: agreement across the runs, then each run's confusion
    clusters, adversarial flows, class similarity and superclass errors."""
    lines = []
    ag = summary["agreement"]
    for metric, e in ag["metrics"].items():
        if "kendall_w" in e:
            lines.append(kendall_sentence(metric, e, ag["k"], runs_text(ag["design"])))
            lines += [factor_sentence(f, metric) for f in e.get("factors", {}).values()]
    for r in summary["runs"]:
        head = f"{r['name']}:"
        cl = r["confusion"]["clusters"]
        lines.append(f"{head} clean confusion clusters: " + ("; ".join("{" + ", ".join(g) + "}" for g in cl) or "none")
                     + f"; symmetry of clean confusion {r['confusion']['symmetry']:.2f}.")
        if "flow" in r:
            tops = "; ".join(flow_sentence(f) for f in r["flow"]["top"][:3])
            lines.append(f"{head} adversarial flows ({r['robust_key']}): {tops or 'nothing was fooled'}; "
                         f"symmetry {r['flow']['symmetry']:.2f}.")
        sim = r["similarity"]
        if not sim:
            lines.append(f"{head} similarity: not stored (this eval.json predates per-class sums; evaluate again).")
        for label, s in sim.items():
            if label not in ("clean logits", "clean features", "adversarial logits"):
                continue
            corr = ", ".join(f"with {e} error {corr_text(c)}" for e, c in s["correlation"].items())
            most = int(np.nanargmax(s["nearest_similarity"]))
            pair = f"{summary['classes'][most]} ~ {s['nearest'][most]}"
            lines.append(f"{head} similarity of {label}: nearest pair {pair} "
                         f"(cosine {s['nearest_similarity'][most]:.2f}); across classes, nearest-class similarity "
                         f"correlates {corr}.")
        if "superclass" in r:
            sc = r["superclass"]
            txt = f"{head} errors inside the true superclass: clean {percent(sc['clean']['share'], 0)}"
            if "adversarial" in sc:
                txt += f", adversarial {percent(sc['adversarial']['share'], 0)}"
            lines.append(txt + f" (chance {percent(sc['clean']['chance'])}, binomial p {sc['clean']['p']:.2g}).")
    if summary["skipped"]:
        lines.append(f"Skipped (other classes than the first run): {', '.join(summary['skipped'])}.")
    return lines
