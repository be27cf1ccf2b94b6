"""Per-class views of an evaluation's results that go beyond one attack's accuracy: eps curves
(per-class accuracy over a range of eps, and the eps at which each class falls below half its
clean accuracy), where a victim class's images go, and which classes are pushed into a target.
They read `EvalResult`s; the attacks themselves are in `classwise.attacks`."""

from __future__ import annotations

import numpy as np
import pandas as pd
from torch import nn

from ..attacks import AttackSpec
from ..errors import ClasswiseError

# ---- eps curves ------------------------------------------------------------------------------

def curve_label(spec: AttackSpec, eps: float) -> str:
    return f"{spec.label}@{eps:.4g}"


def eps_curve(model: nn.Module, data, spec: AttackSpec, eps_values, **kwargs):
    """Per-sample predictions under `spec` at every eps in `eps_values` (an `EvalResult` whose
    keys are `curve_label`s). Every eps uses the same random starts scaled to its ball, so that
    differences between eps are the attack's, not the dice's. `kwargs` go to `evaluate`."""
    from .evaluate import evaluate

    values = sorted({float(e) for e in eps_values})
    if not values or values[0] < 0:
        raise ClasswiseError(f"an eps curve needs eps values >= 0, got {list(eps_values)}")
    specs = {curve_label(spec, e): spec.model_copy(update={"eps": e}) for e in values}
    res = evaluate(model, data, specs, **kwargs)
    for label in specs:
        res.attacks[label] = {**res.attacks[label], "curve": spec.label}
    return res


def curves(res) -> dict[str, list[tuple[float, str]]]:
    """curve name -> [(eps, key)] sorted by eps, from the records' attack descriptions."""
    out: dict[str, list[tuple[float, str]]] = {}
    for key, meta in res.attacks.items():
        if "curve" in meta:
            out.setdefault(meta["curve"], []).append((float(meta["eps"]), key))
    return {k: sorted(v) for k, v in out.items()}


def _curve(res, curve: str | None) -> tuple[str, list[tuple[float, str]]]:
    found = curves(res)
    if not found:
        raise ClasswiseError("these results hold no eps curve; run eps_curve(...) or `classwise evaluate --eps-curve`")
    if curve is None:
        if len(found) > 1:
            raise ClasswiseError(f"several eps curves ({', '.join(found)}); name one")
        curve = next(iter(found))
    if curve not in found:
        raise ClasswiseError(f"no eps curve '{curve}'; have {', '.join(found)}")
    return curve, found[curve]


def curve_table(res, curve: str | None = None) -> pd.DataFrame:
    """One row per class: clean accuracy, then accuracy at each eps (columns `eps=...`)."""
    _, points = _curve(res, curve)
    table = pd.DataFrame({"class": res.classes, "clean": res.per_class("clean")["accuracy"].to_numpy()})
    for eps, key in points:
        table[f"eps={eps:.4g}"] = res.per_class(key)["accuracy"].to_numpy()
    return table


def half_accuracy_eps(res, curve: str | None = None) -> pd.DataFrame:
    """Per class, the first eps of the grid at which accuracy is below half of the clean
    accuracy (`eps_below_half`, NaN if it never is) and a linear interpolation between that
    grid point and the one before it (`eps_half`)."""
    _, points = _curve(res, curve)
    clean = res.per_class("clean")["accuracy"].to_numpy()
    grid = np.array([0.0] + [e for e, _ in points])
    acc = np.stack([clean] + [res.per_class(k)["accuracy"].to_numpy() for _, k in points], axis=1)
    below, interp = np.full(len(clean), np.nan), np.full(len(clean), np.nan)
    for c in range(len(clean)):
        half = clean[c] / 2
        hits = np.flatnonzero(acc[c, 1:] < half) + 1
        if clean[c] > 0 and hits.size:
            j = hits[0]
            below[c] = grid[j]
            a0, a1 = acc[c, j - 1], acc[c, j]
            interp[c] = grid[j - 1] + (grid[j] - grid[j - 1]) * ((a0 - half) / (a0 - a1) if a0 != a1 else 1.0)
    return pd.DataFrame({"class": res.classes, "clean": clean, "eps_below_half": below, "eps_half": interp})


# ---- per-class views of the targeted threats ----------------------------------------------

def _meta(res, label: str, threat: str) -> dict:
    meta = res.attacks.get(label)
    if meta is None or meta.get("threat") != threat:
        raise ClasswiseError(f"'{label}' is not a {threat} threat in these results (have: {', '.join(res.attacks)})")
    return meta


def victim_table(res, label: str) -> pd.DataFrame:
    """Where the victim class's images go: for every class, the fraction of victim images the
    model assigns to it, clean and under the threat (the victim's own row is its accuracy)."""
    victim = _meta(res, label, "victim")["victim"]
    mine = res.labels == victim
    n = max(int(mine.sum()), 1)
    k = len(res.classes)
    return pd.DataFrame({"class": res.classes,
                         "clean": np.bincount(res.clean_pred[mine], minlength=k) / n,
                         label: np.bincount(res.adv_pred[label][mine], minlength=k) / n})


def victim_summary(res, label: str) -> dict:
    """The victim class's accuracy clean, under the threat, and under every untargeted attack
    in the same results with the same norm and eps (for comparison)."""
    meta = _meta(res, label, "victim")
    victim, atk = meta["victim"], meta["attack"]
    mine = res.labels == victim
    acc = {"clean": float((res.clean_pred[mine] == victim).mean()),
           label: float((res.adv_pred[label][mine] == victim).mean())}
    for key, other in res.attacks.items():
        if other.get("threat", "untargeted") == "untargeted" and other.get("norm") == atk["norm"] \
                and np.isclose(other.get("eps", -1), atk["eps"]) and "curve" not in other:
            acc[key] = float((res.adv_pred[key][mine] == victim).mean())
    return {"victim": res.classes[victim], "n": int(mine.sum()), "accuracy": acc}


def into_table(res, label: str) -> pd.DataFrame:
    """For every other class, the fraction of its images the model assigns to the target class,
    clean and under the threat."""
    target = _meta(res, label, "into")["target"]
    rows = []
    for c, name in enumerate(res.classes):
        if c == target:
            continue
        mine = res.labels == c
        n = int(mine.sum())
        rows.append({"class": name, "n": n,
                     "clean": float((res.clean_pred[mine] == target).mean()) if n else np.nan,
                     label: float((res.adv_pred[label][mine] == target).mean()) if n else np.nan})
    return pd.DataFrame(rows)
