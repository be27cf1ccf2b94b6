"""Every sentence a report says about a result, written once: a change between two arms with
its interval, a factor's agreement on the weak classes, where an adversarial flow goes,
Kendall's W, how many runs were compared. The analyses return values; these turn them into
words (report/study_answers.py, report/explain.py, report/corruption.py and the zoo use them)."""

from __future__ import annotations

from ..analysis.agreement import DEPENDS_DELTA, FactorAgreement
from ..analysis.stats import verdict
from ..rounding import percent, plural, points


def change_sentence(label: str, before: float, after: float, low: float, high: float, *, up: str = "widens",
                    down: str = "narrows") -> str:
    """e.g. `widens: std 8.0 → 16.1 points, difference +8.1 [+6.9, +9.4]` (fractions in,
    points out); the difference is after - before with its interval."""
    v = verdict(low, high, up, down)
    return (f"{v}: {label} {points(before)} → {points(after)} points, difference "
            f"{points(after - before, sign=True)} [{points(low, sign=True)}, {points(high, sign=True)}]")


FACTOR_NAMES = {"architecture": "the architecture", "optimisation": "the optimisation setting",
                "method": "standard vs adversarial training", "data": "the training data"}


def factor_sentence(fa: FactorAgreement | dict, metric: str) -> str:
    """Whether the weak classes depend on a factor: agreement within its levels vs across."""
    fa = fa if isinstance(fa, dict) else {**fa.__dict__, "delta": fa.delta}
    name = FACTOR_NAMES.get(fa["factor"], f"the {fa['factor']}")
    if fa["depends"] is None:
        return (f"{metric.capitalize()} weak classes vs {name}: every run has its own level "
                f"({', '.join(fa['levels'])}), so only the agreement across levels is known: mean Spearman "
                f"{fa['across']:.2f} over {plural(fa['n_across'], 'pair')}.")
    said = "DEPEND on" if fa["depends"] else "hardly depend on"
    return (f"{metric.capitalize()} weak classes {said} {name}: mean Spearman {fa['within']:.2f} between runs "
            f"with the same level ({plural(fa['n_within'], 'pair')}) vs {fa['across']:.2f} with different levels "
            f"({plural(fa['n_across'], 'pair')}), difference {fa['delta']:+.2f} (permutation p {fa['p']:.2f}; "
            f"'depends' needs >= {DEPENDS_DELTA}).")


def flow_sentence(f: dict, what: str = "fooled") -> str:
    """"62% of fooled Shirt images become T-shirt/top"."""
    return f"{percent(f['share_of_errors'], 0)} of {what} {f['true']} images become {f['pred']} ({f['count']} images)"


def runs_text(design: dict) -> str:
    """How many runs, said the way they were made: `2 arms, 1 seed` when the runs are every arm
    at every seed, as a study's are; `6 runs` otherwise (`design` from analysis.explain)."""
    if design.get("arms") and design.get("seeds"):
        return f"{plural(design['arms'], 'arm')}, {plural(design['seeds'], 'seed')}"
    return plural(design["runs"], "run")


def kendall_sentence(metric: str, entry: dict, k: int, across: str) -> str:
    """Kendall's W of the per-class ranking over the runs, and the classes weak in every run."""
    w = entry["kendall_w"]
    return (f"Agreement on the {metric} weak classes across {across}: Kendall's W {w['w']:.2f} (chi2 {w['chi2']:.1f}, "
            f"df {w['df']}, p {w['p']:.2g}); among the {k} weakest of every run: "
            f"{', '.join(entry['always_weak']) or 'no class'}.")


def corr_text(c: dict) -> str:
    return "n/a" if c["rho"] != c["rho"] else f"rho {c['rho']:+.2f} (p {c['p']:.3g})"
