"""What a study may claim: every summary of every arm with its bootstrap interval, the
differences between arms with theirs, exact McNemar tests per class, and answer sentences
that name a direction only when its interval excludes zero."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..analysis.seeds import Evaluation, SeedBootstrap
from ..analysis.stats import STATS, change_sentence, mcnemar_per_class, verdict
from ..rounding import percent, points

STANDARD = "standard"
METRIC_KEYS = ("clean", "robust")
LAST, BEST = "last", "best_worst"
STAT_LABELS = {"mean": "class mean", "worst": "worst class", "std": "std", "gap": "max-min gap"}


def correct_by_metric(res, attack_label: str) -> dict[str, np.ndarray]:
    return {"clean": res.clean_pred == res.labels, "robust": res.adv_pred[attack_label] == res.labels}


def study_bootstrap(runs, attack_label: str, classes, *, resamples: int, seed: int,
                    confidence: float) -> SeedBootstrap:
    """`runs`: the study's ArmRun list (with `best` evaluations where a best-worst checkpoint exists)."""
    evals = []
    for r in runs:
        res = r.outcome.evaluation
        evals.append(Evaluation((r.arm, LAST), r.seed, res.labels, correct_by_metric(res, attack_label)))
        if r.best is not None:
            evals.append(Evaluation((r.arm, BEST), r.seed, r.best.labels, correct_by_metric(r.best, attack_label)))
    return SeedBootstrap(evals, classes, resamples=resamples, rng=seed, confidence=confidence)


def comparison_pairs(arms: list[str], reference: str | None) -> list[tuple[str, str]]:
    """(a, b) pairs the study compares: standard against every other arm, and the reference
    (plain adversarial) arm against every arm that is neither."""
    pairs = [(STANDARD, a) for a in arms if STANDARD in arms and a != STANDARD]
    if reference is not None:
        pairs += [(reference, a) for a in arms if a not in (STANDARD, reference)]
    return pairs


def add_statistics(results: dict, boot: SeedBootstrap) -> None:
    """Intervals, per-class mean ± std, weakest-class probabilities and the comparisons, into
    `results` (the values of results.json)."""
    m = results["models"]
    for arm in results["arms"]:
        for ckpt in (LAST, BEST):
            for metric in METRIC_KEYS:
                if not boot.has((arm, ckpt), metric):
                    continue
                target = m[arm][metric] if ckpt == LAST else m[arm].setdefault(BEST, {}).setdefault(metric, {})
                summary = boot.summary((arm, ckpt), metric)
                table = boot.per_class((arm, ckpt), metric)
                if ckpt == BEST:  # the best-worst checkpoint's summaries come from the bootstrap's estimates
                    target.update({s: v["estimate"] for s, v in summary.items()})
                    target["per_class"] = dict(zip(table["class"], table["mean"].tolist(), strict=True))
                for s, v in summary.items():
                    target[f"{s}_ci"] = [v["low"], v["high"]]
                target["per_class_std"] = dict(zip(table["class"], table["std"].tolist(), strict=True))
                target["per_class_ci"] = {c: [lo, hi] for c, lo, hi in
                                          zip(table["class"], table["ci_low"], table["ci_high"], strict=True)}
                target["weakest_probability"] = boot.weakest((arm, ckpt), metric)
        if boot.has((arm, BEST), "robust"):
            m[arm][BEST]["difference"] = {
                metric: boot.difference((arm, LAST), (arm, BEST), metric) for metric in METRIC_KEYS}
    ref = results.get("reference")
    results["against_reference"] = {a: boot.difference((ref, LAST), (a, LAST), "robust")
                                    for a in results["arms"] if ref is not None and a != ref}
    results["comparisons"] = [
        {"arm_a": a, "arm_b": b, "metric": metric, "stat": s, **v,
         "verdict": verdict(v["low"], v["high"], "up", "down")}
        for a, b in comparison_pairs(results["arms"], results.get("reference"))
        for metric in METRIC_KEYS for s, v in boot.difference((a, LAST), (b, LAST), metric).items()]


def mcnemar_table(runs, attack_label: str, classes, arms: list[str], reference: str | None) -> pd.DataFrame:
    """Exact McNemar per class for every compared pair of arms, per metric and seed (the two
    arms of a seed see the same test images)."""
    by = {(r.arm, r.seed): r.outcome.evaluation for r in runs}
    frames = []
    for a, b in comparison_pairs(arms, reference):
        for seed in sorted({s for _, s in by}):
            ra, rb = by.get((a, seed)), by.get((b, seed))
            if ra is None or rb is None or not np.array_equal(ra.labels, rb.labels):
                continue
            ca, cb = correct_by_metric(ra, attack_label), correct_by_metric(rb, attack_label)
            for metric in METRIC_KEYS:
                t = mcnemar_per_class(ra.labels, ca[metric], cb[metric], classes)
                frames.append(t.assign(a=a, b=b, metric=metric, seed=seed))
    if not frames:
        return pd.DataFrame(columns=["a", "b", "metric", "seed", "class", "n", "only_a", "only_b", "p_value"])
    out = pd.concat(frames, ignore_index=True)
    return out[["a", "b", "metric", "seed", "class", "n", "only_a", "only_b", "p_value"]]


def _pct(v: float) -> str:
    return points(v)


def _worst_text(s: dict) -> str:
    others = [c for c in s["worst_tied"] if c != s["worst_class"]]
    tie = f" (tied with {', '.join(repr(c) for c in others)})" if others else ""
    interval = f" [{_pct(s['worst_ci'][0])}, {_pct(s['worst_ci'][1])}]" if "worst_ci" in s else ""
    prob = s.get("weakest_probability", {}).get(s["worst_class"])
    chance = f"; the weakest class in {percent(prob, 0)} of runs and resamples" if prob is not None else ""
    return f"'{s['worst_class']}'{tie}", f"{_pct(s['worst'])}%{interval}{chance}"


def _say(label: str, d: dict, **kw) -> str:
    return change_sentence(label, d["a"], d["b"], d["low"], d["high"], **kw)


def _find(results: dict, a: str, b: str, metric: str, stat: str) -> dict | None:
    return next((c for c in results.get("comparisons", []) if (c["arm_a"], c["arm_b"], c["metric"], c["stat"]) ==
                 (a, b, metric, stat)), None)


def answers(results: dict) -> list[str]:
    """The study's questions, answered from results.json values: the weakest class of every
    arm; for every arm against the standard one, how the spread across classes moves; for
    every arm against the reference arm, its worst class and its cost to the average."""
    m, attack = results["models"], results["attack"]
    lines = []
    for arm in results["arms"]:
        (cn, cv), (rn, rv) = _worst_text(m[arm]["clean"]), _worst_text(m[arm]["robust"])
        lines.append(f"Weakest class of the {arm} arm: {cn} clean ({cv}), {rn} under {attack} ({rv}).")
    ref = results.get("reference")
    for a, b in comparison_pairs(results["arms"], ref):
        if a == STANDARD:
            for metric in METRIC_KEYS:
                std, gap = _find(results, a, b, metric, "std"), _find(results, a, b, metric, "gap")
                if std is None:
                    continue
                lines.append(f"{metric.capitalize()} accuracy across classes ({a} → {b}): "
                             f"{_say('std', std)}; {_say('max-min gap', gap)}.")
        else:
            worst, mean = _find(results, a, b, "robust", "worst"), _find(results, a, b, "robust", "mean")
            if worst is None:
                continue
            kw = {"up": "raises", "down": "lowers"}
            lines.append(f"{b} against {a} under {attack}: {_say('worst class', worst, **kw)}; "
                         f"{_say('class mean', mean, **kw)}.")
    for arm in results["arms"]:
        best = m[arm].get(BEST)
        if not best or not best.get("differs"):
            continue
        d = best["difference"]["robust"]["worst"]
        lines.append(f"{arm}: the best worst-class checkpoint against the last one under {attack}: "
                     f"{_say('worst class', d, up='raises', down='lowers')}.")
    return lines


def interval_text(v: float, ci) -> str:
    return f"{_pct(v)} [{_pct(ci[0])}, {_pct(ci[1])}]" if ci is not None else _pct(v)


def summary_table(results: dict) -> pd.DataFrame:
    """Per arm and metric: every summary with its interval, in points."""
    m = results["models"]
    rows = []
    for a in results["arms"]:
        for k in METRIC_KEYS:
            s = m[a][k]
            rows.append({"arm": a, "metric": k, "overall": _pct(s["overall"]),
                         **{STAT_LABELS[st]: interval_text(s[st], s.get(f"{st}_ci")) for st in STATS},
                         "worst class name": s["worst_class"], "best class": s["best_class"], "best": _pct(s["best"])})
    return pd.DataFrame(rows)


def reference_table(results: dict) -> pd.DataFrame | None:
    """Every arm against the reference arm under the attack: worst class and its cost to the
    average (reference mean - arm mean), each with its interval."""
    ref, m = results.get("reference"), results["models"]
    if not results.get("against_reference"):
        return None
    rows = []
    for a, d in results["against_reference"].items():
        w, mu = d["worst"], d["mean"]
        rows.append({"arm": a, "worst class": interval_text(m[a]["robust"]["worst"], m[a]["robust"].get("worst_ci")),
                     f"worst class - {ref}": interval_text(w["difference"], (w["low"], w["high"])),
                     "class mean": interval_text(m[a]["robust"]["mean"], m[a]["robust"].get("mean_ci")),
                     f"cost to the average ({ref} - arm)": interval_text(-mu["difference"], (-mu["high"], -mu["low"])),
                     "worst class verdict": verdict(w["low"], w["high"], "raises", "lowers"),
                     "class mean verdict": verdict(mu["low"], mu["high"], "raises", "lowers")})
    return pd.DataFrame(rows)
