"""RobustBench's model_info fields for an evaluation, plus our per-class table."""

from __future__ import annotations

from .result import EvalResult


def _eps_text(eps: float) -> str:
    levels = eps * 255
    return f"{round(levels)}/255" if abs(levels - round(levels)) < 1e-6 and round(levels) > 0 else f"{eps:.4g}"


def robustbench_json(res: EvalResult, *, dataset: str, name: str | None = None, architecture: str | None = None,
                     autoattack_key: str | None = None, unreliable: bool | None = None) -> dict:
    """RobustBench's model_info fields (accuracies as percent strings with two decimals, eps
    as `8/255`), with `autoattack_acc` from `autoattack_key` (default: the first AutoAttack run
    in the results; None if there is none), plus our per-class table under `classwise`."""
    aa = autoattack_key or next((k for k in res.robust_keys if res.attacks[k].get("name") == "autoattack"), None)
    spec = res.attacks.get(aa) or next((res.attacks[k] for k in res.robust_keys), {})
    table = res.per_class("clean")[["class", "n"]].copy()
    table["clean_acc"] = (res.per_class("clean")["accuracy"] * 100).round(2)
    for key in res.robust_keys:
        table[f"{key}_acc" if key != aa else "autoattack_acc"] = (res.per_class(key)["accuracy"] * 100).round(2)
    footnote = None if aa else "no AutoAttack run: autoattack_acc is missing; see classwise.per_class for other attacks"
    if aa:
        notes = [f"AutoAttack version '{res.attacks[aa].get('version')}', not the standard one"
                 if res.attacks[aa].get("version") != "standard" else None,
                 "a reduced AutoAttack budget" if any(res.attacks[aa].get(k) is not None for k in
                                                     ("iterations", "restarts", "targets", "queries")) else None]
        footnote = "; ".join(n for n in notes if n) or None
    return {
        "link": None, "name": name, "authors": None, "additional_data": None, "number_forward_passes": 1,
        "dataset": dataset, "venue": None, "architecture": architecture,
        "eps": _eps_text(spec["eps"]) if "eps" in spec else None,
        "clean_acc": f"{res.accuracy('clean') * 100:.2f}", "reported": None,
        "autoattack_acc": f"{res.accuracy(aa) * 100:.2f}" if aa else None,
        "footnote": footnote, "unreliable": unreliable,
        "classwise": {"threat_model": {"linf": "Linf", "l2": "L2"}.get(spec.get("norm")), "n_examples": len(res.labels),
                      "attack": spec, "per_class": table.to_dict(orient="records")},
    }
