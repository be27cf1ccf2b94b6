"""A study's findings in words and tables, from its `StudyResult`: the headline (at most five
sentences: each arm's weakest class, whether adversarial training widens the gap, which arm
lifts the worst class at what cost), every answer, the summary and reference tables. A
direction is named only when its interval excludes zero."""

from __future__ import annotations

import pandas as pd

from ..analysis.stats import STATS, verdict
from ..result import Change, StudyResult, Summary
from ..rounding import percent, points
from .sentences import change_sentence

STANDARD = "standard"
METRICS = ("clean", "robust")
STAT_LABELS = {"mean": "class mean", "worst": "worst class", "std": "std", "gap": "max-min gap"}
RAISES = {"up": "raises", "down": "lowers"}


def interval_text(v: float, ci) -> str:
    return f"{points(v)} [{points(ci[0])}, {points(ci[1])}]" if ci is not None else points(v)


def _worst_text(s: Summary) -> tuple[str, str]:
    others = [c for c in s.worst_tied or [] if c != s.worst_class]
    tie = f" (tied with {', '.join(repr(c) for c in others)})" if others else ""
    interval = f" [{points(s.worst_ci[0])}, {points(s.worst_ci[1])}]" if s.worst_ci is not None else ""
    prob = (s.weakest_probability or {}).get(s.worst_class)
    chance = f"; the weakest class in {percent(prob, 0)} of runs and resamples" if prob is not None else ""
    return f"'{s.worst_class}'{tie}", f"{points(s.worst)}%{interval}{chance}"


def _say(label: str, d: Change, **kw) -> str:
    return change_sentence(label, d.a, d.b, d.low, d.high, **kw)


def _pairs(r: StudyResult) -> list[tuple[str, str]]:
    """(a, b) the study compares: standard against every other arm, the reference arm against
    every arm that is neither (study/compare.py computes the same pairs)."""
    pairs = [(STANDARD, a) for a in r.arms if STANDARD in r.arms and a != STANDARD]
    if r.reference is not None:
        pairs += [(r.reference, a) for a in r.arms if a not in (STANDARD, r.reference)]
    return pairs


def weakest_sentence(r: StudyResult, arm: str) -> str:
    (cn, cv), (rn, rv) = _worst_text(r.models[arm].clean), _worst_text(r.models[arm].robust)
    return f"Weakest class of the {arm} arm: {cn} clean ({cv}), {rn} under {r.attack} ({rv})."


def spread_sentence(r: StudyResult, a: str, b: str, metric: str) -> str | None:
    std, gap = r.comparison(a, b, metric, "std"), r.comparison(a, b, metric, "gap")
    if std is None or gap is None:
        return None
    return (f"{metric.capitalize()} accuracy across classes ({a} → {b}): {_say('std', std)}; "
            f"{_say('max-min gap', gap)}.")


def worst_sentence(r: StudyResult, a: str, b: str) -> str | None:
    worst, mean = r.comparison(a, b, "robust", "worst"), r.comparison(a, b, "robust", "mean")
    if worst is None or mean is None:
        return None
    return (f"{b} against {a} under {r.attack}: {_say('worst class', worst, **RAISES)}; "
            f"{_say('class mean', mean, **RAISES)}.")


def answers(r: StudyResult) -> list[str]:
    """The study's questions: the weakest class of every arm; for every arm against the standard
    one, how the spread across classes moves; for every arm against the reference arm, its worst
    class and its cost to the average; each arm's best worst-class checkpoint against its last."""
    lines = [weakest_sentence(r, arm) for arm in r.arms]
    for a, b in _pairs(r):
        said = ([spread_sentence(r, a, b, m) for m in METRICS] if a == STANDARD else [worst_sentence(r, a, b)])
        lines += [s for s in said if s]
    for arm in r.arms:
        best = r.models[arm].best_worst
        if best is not None and best.differs:
            lines.append(f"{arm}: the best worst-class checkpoint against the last one under {r.attack}: "
                         f"{_say('worst class', best.difference['robust']['worst'], **RAISES)}.")
    return lines


def headline(r: StudyResult) -> list[str]:
    """At most five sentences for the top of the report: each arm's weakest class (one sentence
    for all arms), whether adversarial training widens the gap, and which arm lifts the worst
    class most at what cost to the average."""
    weakest = "; ".join(f"{a} '{r.models[a].robust.worst_class}' {points(r.models[a].robust.worst)}%"
                        for a in r.arms)
    lines = [f"Weakest class under {r.attack}, per arm: {weakest}."]
    adversarial = [a for a in r.arms if a != STANDARD]
    if STANDARD in r.arms and adversarial:
        b = r.reference if r.reference in adversarial else adversarial[0]
        lines += [s for s in (spread_sentence(r, STANDARD, b, m) for m in METRICS) if s]
    if r.reference is not None:
        lifts = {b: c for a, b in _pairs(r) if a == r.reference and (c := r.comparison(a, b, "robust", "worst"))}
        if lifts:
            best = max(lifts, key=lambda b: lifts[b].difference)
            lines.append(worst_sentence(r, r.reference, best))
    return lines[:5]


def summary_table(r: StudyResult) -> pd.DataFrame:
    """Per arm and metric: every summary with its interval, in points."""
    rows = []
    for a in r.arms:
        for k in METRICS:
            s = r.models[a].summary(k)
            rows.append({"arm": a, "metric": k, "overall": points(s.overall),
                         **{STAT_LABELS[st]: interval_text(getattr(s, st), s.interval(st)) for st in STATS},
                         "worst class name": s.worst_class, "best class": s.best_class, "best": points(s.best)})
    return pd.DataFrame(rows)


def reference_table(r: StudyResult) -> pd.DataFrame | None:
    """Every arm against the reference arm under the attack: worst class and its cost to the
    average (reference mean - arm mean), each with its interval."""
    if not r.against_reference:
        return None
    rows = []
    for a, d in r.against_reference.items():
        w, mu, s = d["worst"], d["mean"], r.models[a].robust
        rows.append({"arm": a, "worst class": interval_text(s.worst, s.worst_ci),
                     f"worst class - {r.reference}": interval_text(w.difference, (w.low, w.high)),
                     "class mean": interval_text(s.mean, s.mean_ci),
                     f"cost to the average ({r.reference} - arm)": interval_text(-mu.difference, (-mu.high, -mu.low)),
                     "worst class verdict": verdict(w.low, w.high, "raises", "lowers"),
                     "class mean verdict": verdict(mu.low, mu.high, "raises", "lowers")})
    return pd.DataFrame(rows)
