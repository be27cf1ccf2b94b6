"""What a study may claim: every summary of every arm with its bootstrap interval, the
differences between arms with theirs, and exact McNemar tests per class (report/study_text.py
says it in words)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..analysis.seeds import Evaluation, SeedBootstrap
from ..analysis.stats import mcnemar_per_class, verdict

STANDARD = "standard"
METRIC_KEYS = ("clean", "robust")
LAST, BEST = "last", "best_worst"


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
