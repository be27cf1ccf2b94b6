"""The per-class leaderboard: for every model, from its per-class rows in the study database,
the overall accuracy (what the leaderboard publishes), the class mean, the worst class with its
accuracy and 95% Wilson interval, and the std and max-min gap across classes, clean and robust
(AutoAttack) or corrupted (the mean over the corruptions and severities). Next to it, the check
against the published numbers: a model whose overall clean or robust accuracy differs from the
leaderboard's by more than our evaluation's own 95% interval is flagged."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..metrics import disparity, wilson_interval
from ..study.store import FINAL
from .info import ModelInfo

# a published number has two decimals in percent: a match may be off by the rounding
ROUNDING = 0.00005


def side_names(threat: str) -> tuple[str, str]:
    """The two sides of a model's leaderboard row: clean, and robust or corrupted."""
    return "clean", "corrupted" if threat == "corruptions" else "robust"


def per_class_tables(tidy: pd.DataFrame, runs: dict[str, str], robust_label: str,
                     threat: str) -> dict[str, dict[str, pd.DataFrame]]:
    """{model: {side: DataFrame(class, n, accuracy)}} of the finished runs among `runs`
    (name -> run id), from the store's tidy table. Under corruptions a class's accuracy is its
    mean over every corruption and severity, each on the same n images."""
    clean, robust = side_names(threat)
    final = tidy[(tidy["epoch"] == FINAL) & (tidy["split"] == "test")]
    out = {}
    for name, rid in runs.items():
        rows = final[final["run"] == rid]
        if rows.empty:
            continue
        sides = {clean: rows[rows["attack"] == "none"][["class", "n", "accuracy"]].reset_index(drop=True)}
        if threat == "corruptions":
            corr = rows[rows["attack"].str.contains("@", regex=False)]
            if not corr.empty:
                order = list(sides[clean]["class"])
                agg = corr.groupby("class", sort=False).agg(n=("n", "first"), accuracy=("accuracy", "mean"))
                sides[robust] = agg.reindex(order).reset_index()
        else:
            adv = rows[rows["attack"] == robust_label]
            if not adv.empty:
                sides[robust] = adv[["class", "n", "accuracy"]].reset_index(drop=True)
        out[name] = sides
    return out


def summary(table: pd.DataFrame) -> dict:
    """Overall accuracy and its interval, and the disparity across classes, of one side."""
    n = table["n"].to_numpy(dtype=float)
    acc = table["accuracy"].to_numpy(dtype=float)
    correct = np.where(n > 0, np.nan_to_num(acc) * n, 0.0)  # a class without images (NaN) adds nothing
    total = float(n.sum())
    overall = float(correct.sum() / total) if total else float("nan")
    low, high = wilson_interval(correct.sum(), total)
    d = disparity(acc, list(table["class"]))
    w = list(table["class"]).index(d["worst_class"])
    w_low, w_high = wilson_interval(correct[w], n[w])
    return {"overall": overall, "low": low, "high": high, "mean": d["mean"], "worst_class": d["worst_class"],
            "worst": d["worst"], "worst_low": w_low, "worst_high": w_high, "std": d["std"], "gap": d["gap"],
            "best_class": d["best_class"], "best": d["best"]}


def check(ours: float, low: float, high: float, published: float | None) -> str:
    """`matches` when the published number lies in our 95% interval, `DIFFERS` when not."""
    if published is None:
        return "no published number"
    if ours != ours:
        return "not evaluated"
    return "matches" if low - ROUNDING <= published <= high + ROUNDING else "DIFFERS"


def leaderboard(tables: dict[str, dict[str, pd.DataFrame]], infos: dict[str, ModelInfo | None],
                threat: str) -> pd.DataFrame:
    """One row a model: the leaderboard's facts, then per side the overall accuracy with its
    interval, the class mean, worst class (name, accuracy, interval), std and gap, then the
    published numbers and the check. Sorted by the robust (or corrupted) class mean."""
    clean, robust = side_names(threat)
    rows = []
    for name, sides in tables.items():
        info = infos.get(name)
        row = {"model": name, "architecture": info.architecture if info else None,
               "additional_data": info.additional_data if info else None, "year": info.year if info else None,
               "n": int(sides[clean]["n"].sum())}
        for side in (clean, robust):
            s = summary(sides[side]) if side in sides else {}
            for key in ("overall", "low", "high", "mean", "worst_class", "worst", "worst_low", "worst_high", "std",
                        "gap"):
                row[f"{side}_{key}"] = s.get(key, np.nan if key != "worst_class" else None)
        for side, pub in ((clean, info.clean_acc if info else None), (robust, info.robust_acc if info else None)):
            row[f"published_{side}"] = pub
            row[f"{side}_check"] = check(row[f"{side}_overall"], row[f"{side}_low"], row[f"{side}_high"], pub)
        rows.append(row)
    board = pd.DataFrame(rows)
    if board.empty:
        return board
    return board.sort_values([f"{robust}_mean", f"{clean}_mean"], ascending=False, kind="stable",
                             na_position="last").reset_index(drop=True)


def comparison(board: pd.DataFrame, threat: str) -> pd.DataFrame:
    """Our overall accuracy next to the published one, per model and side, in percent points."""
    rows = []
    for _, r in board.iterrows():
        for side in side_names(threat):
            ours, pub = r[f"{side}_overall"], r[f"published_{side}"]
            rows.append({"model": r["model"], "side": side, "n": r["n"], "ours": ours * 100,
                         "low": r[f"{side}_low"] * 100, "high": r[f"{side}_high"] * 100,
                         "published": None if pub is None or pub != pub else pub * 100,
                         "difference": None if pub is None or pub != pub else (ours - pub) * 100,
                         "check": r[f"{side}_check"]})
    return pd.DataFrame(rows)


def tidy_per_class(tables: dict[str, dict[str, pd.DataFrame]]) -> pd.DataFrame:
    """model, side, class, n, accuracy, ci_low, ci_high: every model's per-class numbers."""
    parts = []
    for name, sides in tables.items():
        for side, t in sides.items():
            low, high = wilson_interval(t["accuracy"].to_numpy(float) * t["n"].to_numpy(float), t["n"].to_numpy(float))
            parts.append(pd.DataFrame({"model": name, "side": side, "class": t["class"], "n": t["n"],
                                       "accuracy": t["accuracy"], "ci_low": low, "ci_high": high}))
    cols = ["model", "side", "class", "n", "accuracy", "ci_low", "ci_high"]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)


def check_lines(board: pd.DataFrame, threat: str) -> list[str]:
    """One line a model whose overall number differs from the leaderboard's, and a count of the rest."""
    lines, checked, matched = [], 0, 0
    for _, r in board.iterrows():
        for side in side_names(threat):
            state = r[f"{side}_check"]
            if state in ("matches", "DIFFERS"):
                checked += 1
                matched += state == "matches"
            if state == "DIFFERS":
                lines.append(f"{r['model']}: {side} accuracy {r[f'{side}_overall'] * 100:.2f}% "
                             f"[{r[f'{side}_low'] * 100:.2f}, {r[f'{side}_high'] * 100:.2f}] on {r['n']} images, "
                             f"published {r[f'published_{side}'] * 100:.2f}%: DIFFERS beyond our 95% interval")
    if checked:
        lines.append(f"Check against the leaderboard: {matched} of {checked} published numbers lie within our 95% "
                     f"interval" + (f"; {checked - matched} {'differs' if checked - matched == 1 else 'differ'} "
                                    "(above)." if matched < checked else "."))
    else:
        lines.append("Check against the leaderboard: no published numbers available (give --leaderboard DIR, a copy "
                     "of RobustBench's model_info/, or run with network).")
    return lines
