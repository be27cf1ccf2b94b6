"""Per-class accuracy under natural corruptions, from stored evaluations: class x corruption
tables (mean over severities), the mean corruption accuracy per class and relative to clean,
and the values behind the answers (report/corruption.py words them): does the rank of classes
under corruption follow their rank under attack (Spearman across classes, per model), and does
adversarial training move the weakest class under corruption?"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr


def corruption_keys(res) -> list[str]:
    return [k for k in res.adv_pred if res.kind(k) == "corruption"]


def long_table(res) -> pd.DataFrame:
    """class, corruption, severity, n, correct, accuracy: one row per class and key."""
    frames = []
    for key in corruption_keys(res):
        t = res.per_class(key)[["class", "n", "correct", "accuracy"]].copy()
        meta = res.attacks[key]
        t.insert(1, "corruption", meta["name"])
        t.insert(2, "severity", meta["severity"])
        t["source"] = meta.get("source", "tensor")
        frames.append(t)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def class_table(res) -> pd.DataFrame:
    """Rows: classes; columns: clean, each corruption (mean accuracy over its severities), mean."""
    long = long_table(res)
    wide = long.pivot_table(index="class", columns="corruption", values="accuracy", aggfunc="mean", sort=False)
    order = list(dict.fromkeys(long["corruption"]))
    wide = wide.reindex(index=res.classes, columns=order)
    clean = res.per_class("clean").set_index("class")["accuracy"]
    return pd.concat([clean.rename("clean"), wide, wide.mean(axis=1).rename("mean")], axis=1)


def summary(res, attack: str | None = None) -> dict:
    """Mean corruption accuracy per class (over every corruption and severity), relative to
    clean, the worst class under corruption, and with `attack` the Spearman correlation across
    classes between corruption error and adversarial error."""
    table = class_table(res)
    mean = table["mean"]
    rel = mean / table["clean"].replace(0, np.nan)
    keys = corruption_keys(res)
    out = {
        "corruptions": list(table.columns[1:-1]), "severities": sorted({res.attacks[k]["severity"] for k in keys}),
        "sources": sorted({res.attacks[k].get("source", "tensor") for k in keys}),
        "overall": float(np.mean([res.accuracy(k) for k in keys])), "clean": res.accuracy("clean"),
        "per_class": mean.to_dict(), "relative": rel.to_dict(),
        "per_corruption": {c: float(np.mean([res.accuracy(k) for k in keys if res.attacks[k]["name"] == c]))
                           for c in table.columns[1:-1]},
        "worst_class": str(mean.idxmin()), "worst": float(mean.min()),
        "worst_relative_class": str(rel.idxmin()), "worst_relative": float(rel.min()),
    }
    if attack is not None:
        adv_err = 1 - res.per_class(attack).set_index("class")["accuracy"].reindex(table.index)
        # a constant side (every class at 0, say) has no ranks to correlate: undefined, without scipy's warning
        rho, p = (spearmanr(1 - mean, adv_err) if min(np.ptp(1 - mean), np.ptp(adv_err)) > 0
                  else (np.nan, np.nan))
        out.update(attack=attack, spearman=None if np.isnan(rho) else float(rho), p_value=None if np.isnan(p) else
                   float(p), adversarial_worst_class=str(adv_err.idxmax()))
    return out
