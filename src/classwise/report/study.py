"""A study's report, from its `StudyResult` and per-class rows: the figures, report.html (the
headline first, then the trade-off and per-class figures, then the tables, each arm's detail
folded), and what the terminal shows."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..evaluation import SanityReport
from ..result import PerClassResult, StudyResult
from ..rounding import percent, plural, points
from .arms import tradeoff_figure
from .figures import class_figure, confusion_figure, trend_figure
from .html import Section, write_report
from .study_text import METRICS, headline, interval_text, reference_table, summary_table
from .table import print_lines, print_per_class

LAST, BEST = "last", "best_worst"


def _seed_note(r: StudyResult) -> str:
    return f" (mean of seeds {', '.join(map(str, r.seeds))})" if len(r.seeds) > 1 else ""


def _arm_table(r: StudyResult, rows: PerClassResult, arm: str, metric: str) -> pd.DataFrame:
    """The arm's per-class table for the figures: one seed as it is (Wilson intervals); several
    seeds as the mean accuracy with its bootstrap interval over seeds and images."""
    if len(r.seeds) == 1:
        return rows.select(metric=metric, checkpoint=LAST, arm=arm).reset_index(drop=True)
    s = r.models[arm].summary(metric)
    return pd.DataFrame({"class": r.classes, "accuracy": [s.per_class[c] for c in r.classes],
                         "ci_low": [s.per_class_ci[c][0] for c in r.classes],
                         "ci_high": [s.per_class_ci[c][1] for c in r.classes]})


def figures(out_dir: Path, r: StudyResult, rows: PerClassResult, histories: dict, confusions: dict) -> dict:
    """Per arm the Figure 1/2 layout, its per-class trend (first seed) and confusion matrices
    (summed over seeds); the worst-class-against-mean trade-off over the arms."""
    fig_dir = out_dir / "figures"
    several = len(r.seeds) > 1
    figs = {}
    for i, arm in enumerate(r.arms, start=1):
        figs[f"figure{i}_{arm}"] = class_figure(
            _arm_table(r, rows, arm, "clean"), _arm_table(r, rows, arm, "robust"),
            f"Figure {i}: {arm} arm, {r.arch} on {r.dataset}{_seed_note(r)}", f"{r.attack}, eps={r.eps:.4g}",
            fig_dir / f"figure{i}_{arm}.png")
        figs[f"trend_{arm}"] = trend_figure(
            histories[arm], r.classes, f"Per-class validation accuracy during training: {arm}"
            + (f", seed {r.seeds[0]}" if several else ""), fig_dir / f"trend_{arm}.png")
        figs[f"confusion_{arm}"] = confusion_figure(
            confusions[arm], r.classes, f"Confusion matrices (row-normalised, %): {arm} arm"
            + (", all seeds" if several else ""), fig_dir / f"confusion_{arm}.png")
    figs["tradeoff"] = tradeoff_figure(
        [{"arm": a, "mean": r.models[a].robust.mean, "worst": r.models[a].robust.worst,
          "mean_ci": r.models[a].robust.mean_ci, "worst_ci": r.models[a].robust.worst_ci} for a in r.arms],
        f"Worst class against the mean, {r.attack} at eps={r.eps:.4g} ({r.confidence * 100:.0f}% bootstrap "
        "intervals)", fig_dir / "tradeoff.png")
    return figs


def _in_points(df: pd.DataFrame, columns: list[str] | None = None) -> pd.DataFrame:
    """Accuracy columns (fractions) as points, rounded once by `rounding.points`."""
    out = df.copy()
    for c in columns or [c for c in df.columns if c != "class"]:
        out[c] = [points(v) for v in df[c]]
    return out


def _seed_table(r: StudyResult) -> pd.DataFrame:
    """Per class: mean ± std across seeds for every arm and metric, in points."""
    out = {"class": r.classes}
    for a in r.arms:
        for k in METRICS:
            s = r.models[a].summary(k)
            out[f"{a} {k}"] = [f"{points(s.per_class[c])} ± {points(s.per_class_std[c])}" for c in r.classes]
    return pd.DataFrame(out)


def _weakest_table(r: StudyResult) -> pd.DataFrame:
    return pd.DataFrame({"class": r.classes, **{f"{a} {k}": [r.models[a].summary(k).weakest_probability[c]
                                                             for c in r.classes] for a in r.arms for k in METRICS}})


def _checkpoint_table(r: StudyResult) -> pd.DataFrame | None:
    """The last and the best worst-class checkpoint side by side, per class, for every arm that kept one."""
    arms = [a for a in r.arms if r.models[a].best_worst is not None]
    if not arms:
        return None
    out = {"class": [*r.classes, "worst class"]}
    for a in arms:
        for k in METRICS:
            for ckpt, s in ((LAST, r.models[a].summary(k)), (BEST, getattr(r.models[a].best_worst, k))):
                out[f"{a} {k} {ckpt}"] = ([interval_text(s.per_class[c], (s.per_class_ci or {}).get(c))
                                           for c in r.classes] + [interval_text(s.worst, s.worst_ci)])
    return pd.DataFrame(out)


def _mcnemar_wide(mcnemar: pd.DataFrame) -> pd.DataFrame | None:
    if mcnemar.empty:
        return None
    t = mcnemar.assign(test=lambda d: d["a"] + " vs " + d["b"] + " " + d["metric"] + " seed " + d["seed"].astype(str))
    return t.pivot_table(index="class", columns="test", values="p_value", sort=False).reset_index()


def _corruption_tables(corr: dict, classes: list[str]) -> list[pd.DataFrame]:
    """Points, per arm: each class's mean accuracy under corruption and its share of clean; each
    corruption's mean accuracy, costliest (for the first arm) first."""
    by_class = pd.DataFrame({"class": classes, **{f"{arm} {col}": [points(s[key][c]) for c in classes]
                                                  for arm, s in corr.items()
                                                  for col, key in (("corrupted", "per_class"),
                                                                   ("% of clean", "relative"))}})
    first = next(iter(corr.values()))["per_corruption"]
    names = sorted(first, key=first.get)
    by_corruption = pd.DataFrame({"corruption": names, **{arm: [points(s["per_corruption"][n]) for n in names]
                                                          for arm, s in corr.items()}})
    return [by_class, by_corruption]


def _meta(r: StudyResult) -> list[str]:
    arms = ", ".join(f"{a} (fine-tuned from {r.init_from[a]})" if a in r.init_from else a for a in r.arms)
    conf = f"{r.confidence * 100:.0f}%"
    return [f"{r.arch} on {r.dataset} ({r.n_test} test images), preset {r.preset}; arms {arms}; seeds "
            f"{', '.join(map(str, r.seeds))}; threat model {r.norm} eps={r.eps:.4g}, attack {r.attack}; total "
            f"{r.seconds:.0f}s. Intervals: {conf} percentile bootstrap, {r.resamples} resamples, images resampled "
            "within each class and paired across the arms evaluated on them"
            + (", seeds resampled with replacement" if len(r.seeds) > 1 else "") + "."]


def write_html(out_dir: Path, r: StudyResult, rows: PerClassResult, mcnemar: pd.DataFrame, figs: dict,
               explain_sections: list[Section], explain_answers: list[str]) -> Path:
    conf = f"{r.confidence * 100:.0f}%"
    arm_figures = [(f, f"Figure {i}: {a} arm") for i, a in enumerate(r.arms, start=1)
                   if (f := figs.get(f"figure{i}_{a}")) is not None]
    tradeoff = [(figs["tradeoff"], "Worst class against the mean, one point per arm")] if "tradeoff" in figs else []
    sections = [Section(f"Note on the {a} run (seed {s})", [run.stopped])
                for a in r.arms for s, run in r.models[a].runs.items() if run.stopped]
    sections += [Section("Worst class against the mean, and each arm per class", [*tradeoff, *arm_figures],
                         figures=True),
                 Section(f"Summary (points; [{conf} interval]; std is the population std over classes)",
                         [summary_table(r)])]
    ref_table = reference_table(r)
    if ref_table is not None:
        sections.append(Section(f"Every arm against the reference arm ({r.reference}) under {r.attack}", [ref_table]))
    sections.append(Section("Per-class accuracy (points; last checkpoint, mean over seeds)",
                            [_in_points(rows.wide())]))
    sections.append(Section("Probability that each class is the weakest (over seeds and bootstrap resamples)",
                            [_weakest_table(r)], folded=True))
    if len(r.seeds) > 1:
        sections.append(Section(f"Per-class accuracy, mean ± std over seeds {', '.join(map(str, r.seeds))} (points)",
                                [_seed_table(r)], folded=True))
    ckpt = _checkpoint_table(r)
    if ckpt is not None:
        sections.append(Section("Last and best worst-class checkpoint side by side (points)", [ckpt], folded=True))
    mc = _mcnemar_wide(mcnemar)
    if mc is not None:
        sections.append(Section("Exact McNemar test per class (p-values; same test images, discordant pairs)", [mc],
                                folded=True))
    if r.comparisons:
        sections.append(Section("Every comparison (b - a, fractions)",
                                [pd.DataFrame([c.model_dump() for c in r.comparisons])], folded=True))
    sections += [Section(f"The {a} arm: per-class trend during training and confusion matrices",
                         [figs.get(f"trend_{a}"), figs.get(f"confusion_{a}")], folded=True) for a in r.arms]
    sections.append(Section("Per-class detail with 95% Wilson intervals (points)",
                            [_in_points(rows.rows, ["accuracy", "ci_low", "ci_high"])], folded=True))
    checks = [SanityReport.from_dict(run.sanity).table().assign(arm=a, seed=s)
              for a in r.arms for s, run in r.models[a].runs.items() if run.sanity]
    if checks:
        sections.append(Section("Sanity checks of the robust evaluation",
                                [pd.concat(checks, ignore_index=True)[["arm", "seed", "check", "status", "detail"]]],
                                folded=True))
    if r.corruptions:
        heatmaps = [f for k, f in figs.items() if k.startswith("corruption_")]
        sections.append(Section("Per-class accuracy under natural corruptions (mean over severities)",
                                [*_corruption_tables(r.corruptions, r.classes), *heatmaps], folded=True))
    sections += [Section(f"Why: {s.heading}", s.items, folded=True) for s in explain_sections]
    # without figures (--no-figures) a figure's section is left out, not shown empty
    kept = []
    for s in sections:
        s.items = [i for i in s.items if i is not None]
        if s.items:
            kept.append(s)
    return write_report(out_dir / "report.html", f"classwise study: {r.dataset} / {r.arch}", headline(r),
                        _meta(r), kept, answers=[*r.answers, *explain_answers])


def arm_summaries(r: StudyResult) -> list[str]:
    """One line per arm with the figures a study is quoted by: overall, class mean and worst
    class, clean and under the attack (the mean over the seeds with several)."""
    note = f" (mean of {plural(len(r.seeds), 'seed')})" if len(r.seeds) > 1 else ""

    def part(s, name: str) -> str:
        return (f"{name} overall {percent(s.overall)}, class mean {percent(s.mean)}, worst class "
                f"'{s.worst_class}' {percent(s.worst)}")

    return [f"{a}{note}: {part(r.models[a].clean, 'clean')}; {part(r.models[a].robust, r.attack)}" for a in r.arms]


def terminal(r: StudyResult, rows: PerClassResult, out_dir: Path) -> None:
    worst = {r.models[a].summary(k).worst_class for a in r.arms for k in METRICS}
    wide = rows.wide()
    if len(wide) <= 30:
        note = f", mean of seeds {', '.join(map(str, r.seeds))}" if len(r.seeds) > 1 else ""
        print_per_class(wide, f"Per-class accuracy (%), {r.attack} at eps={r.eps:.4g}{note}", worst)
    warns = [f"{a} arm (seed {s}): {line}" for a in r.arms for s, run in r.models[a].runs.items()
             for line in SanityReport.from_dict(run.sanity or []).lines() if " WARN " in line]
    print_lines([*r.answers, *r.explain, *warns, *arm_summaries(r),
                 f"Run directory: {out_dir} (report.html, results.json, per_class.csv, explain/)"])
