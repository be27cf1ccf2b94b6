"""Are the weak classes the same across the field's models? `classwise.analysis.agreement` on
the zoo's per-class accuracies: Kendall's W of the per-class ranking over all models, the classes
among the k weakest of every model, and the factor test for the leaderboard's facts
(architecture, extra training data, year): whether models that share a level agree more on
*which* classes are weak than models that differ in it. Next to each factor test, how much the
level moves the accuracy itself (mean over its models of the class mean and the worst class), so
that the answer separates "which classes" from "by how much"."""

from __future__ import annotations

import numpy as np

from ..analysis import agreement
from ..report.sentences import factor_sentence, kendall_sentence
from ..rounding import plural
from .info import ModelInfo

FACTORS = ("architecture", "extra data", "year")


def top_k(num_classes: int) -> int:
    """How many weakest classes are compared (the rule of `classwise explain`)."""
    return 3 if num_classes <= 20 else max(3, num_classes // 10)


def levels(models: list[str], infos: dict[str, ModelInfo | None]) -> dict[str, list]:
    """Each factor's level per model (None where the leaderboard does not say)."""
    def get(name, attr):
        info = infos.get(name)
        return getattr(info, attr) if info is not None else None

    extra = [get(m, "additional_data") for m in models]
    return {"architecture": [get(m, "architecture") for m in models],
            "extra data": [None if e is None else ("extra data" if e else "no extra data") for e in extra],
            "year": [get(m, "year") for m in models]}


def _how_much(scores: np.ndarray, labels: list, known: np.ndarray) -> list[dict]:
    out = []
    for level in sorted({labels[i] for i in np.flatnonzero(known)}, key=str):
        rows = scores[[i for i in np.flatnonzero(known) if labels[i] == level]]
        out.append({"level": str(level), "models": len(rows), "mean": float(np.nanmean(rows.mean(1))),
                    "worst": float(np.nanmean(rows.min(1)))})
    return out


def zoo_agreement(scores: dict[str, np.ndarray], models: list[str], classes: list[str],
                  infos: dict[str, ModelInfo | None]) -> dict:
    """`scores[side]` is a (models x classes) matrix of per-class accuracy (sides: clean, robust
    or corrupted). Returns plain values and the answers as sentences."""
    k = top_k(len(classes))
    lv = levels(models, infos)
    out = {"models": models, "k": k, "levels": {f: [None if v is None else str(v) for v in vals]
                                                for f, vals in lv.items()}, "sides": {}, "answers": []}
    for side, s in scores.items():
        s = np.asarray(s, dtype=float)
        keep = np.isfinite(s).all(0)  # a class without images in the evaluated set has no rank
        entry = {"classes_left_out": [c for c, ok in zip(classes, keep, strict=True) if not ok]}
        s, kept = s[:, keep], [c for c, ok in zip(classes, keep, strict=True) if ok]
        entry.update({"always_weak": [kept[i] for i in agreement.always_weak(s, k)],
                      "weakest": {m: [kept[i] for i in sorted(agreement.weakest(row, k), key=lambda j: row[j])]
                                  for m, row in zip(models, s, strict=True)}})
        if len(models) >= 2:
            w = agreement.kendall_w(s)
            rho = agreement.spearman_matrix(s)
            entry["kendall_w"] = w.__dict__
            entry["spearman"] = rho.tolist()
            entry["factors"] = {}
            if w.w != w.w:  # every model scores all its classes alike (e.g. 0% robust): nothing ranks them
                out["answers"].append(f"Agreement on the {side} weak classes across {w.m} models: undefined, every "
                                      f"model scores all its classes the same ({side} accuracy "
                                      f"{', '.join(f'{v * 100:.0f}%' for v in sorted(set(s[:, 0])))}).")
                out["sides"][side] = entry
                continue
            left_out = entry["classes_left_out"]
            out["answers"].append(kendall_sentence(side, entry, k, plural(w.m, "model")).removesuffix(".")
                                  + (f" ({len(left_out)} classes without images left out)" if left_out else "") + ".")
            factors = {}
            for factor, labels in lv.items():
                known = np.array([v is not None for v in labels])
                if known.sum() < 2 or len({labels[i] for i in np.flatnonzero(known)}) < 2:
                    continue
                idx = np.flatnonzero(known)
                fa = agreement.factor_agreement(rho[np.ix_(idx, idx)], [labels[i] for i in idx], factor)
                much = _how_much(s, labels, known)
                size = "; ".join(f"{h['level']} ({h['models']}): class mean {h['mean'] * 100:.1f}%, worst class "
                                 f"{h['worst'] * 100:.1f}%" for h in much)
                sentence = factor_sentence(fa, side)
                factors[factor] = {**fa.__dict__, "delta": fa.delta, "by_level": much}
                out["answers"].append(f"{sentence} By how much ({side}, mean over the models of each level): {size}.")
            entry["factors"] = factors
        out["sides"][side] = entry
    if len(models) < 2:
        out["answers"].append("Agreement across models needs at least two evaluated models.")
    return out
