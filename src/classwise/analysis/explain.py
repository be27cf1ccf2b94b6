"""`classwise explain`: why the weak classes are weak, from what the runs stored (study/
stored_runs.py finds them in a study, an evaluate `--out` or a sweep's folder): the analyses
of this package put together: where errors and
adversarial examples go, how similar the classes look to the model, CIFAR-100 superclasses,
and whether the runs agree on the weak classes and which factor that depends on. Nothing is
recomputed: predictions come from eval.json, similarity from its per-class sums."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ClasswiseError
from ..evaluation import EvalResult
from . import agreement, flow, similarity, superclass

# which run settings make up each factor of Benz et al.'s question: do the weak classes depend on it?
FACTORS = {
    "architecture": ("arch",),
    "optimisation": ("optimizer", "lr", "momentum", "nesterov", "weight_decay", "schedule", "milestones", "epochs",
                     "batch_size"),
    "method": ("method",),
    "data": ("dataset", "train_limit"),  # e.g. the original set vs a constructed features:DIR one
    "seed": ("seed",),
    # the leaderboard's facts of RobustBench zoo runs (`classwise zoo`); absent from trained runs
    "extra data": ("additional_data",),
    "year": ("year",),
}


@dataclass
class Run:
    name: str
    folder: Path
    result: EvalResult
    config: dict = field(default_factory=dict)

    @property
    def robust_key(self) -> str | None:
        keys = self.result.robust_keys
        return keys[0] if keys else None


def _level(cfg: dict, keys: tuple[str, ...]) -> str:
    return ", ".join(f"{k}={cfg.get(k)}" for k in keys if k in cfg) if len(keys) > 1 else str(cfg.get(keys[0]))


def factor_levels(runs: list[Run]) -> dict[str, list[str]]:
    """Each factor whose level differs between runs, with every run's level; an optimisation
    level names only the settings that vary."""
    out = {}
    for factor, keys in FACTORS.items():
        varying = tuple(k for k in keys if len({json.dumps(r.config.get(k)) for r in runs}) > 1)
        if varying:
            out[factor] = [_level(r.config, varying) for r in runs]
    return out


# --- one run -------------------------------------------------------------------------------

def _per_class_acc(res: EvalResult, key: str) -> np.ndarray:
    return res.per_class(key)["accuracy"].to_numpy(dtype=float)


def _similarity(res: EvalResult, key: str, what: str) -> np.ndarray | None:
    sums = res.class_sums.get(key, {})
    if what not in sums:
        return None
    return similarity.cosine_matrix(similarity.class_means(sums[what], res.labels, len(res.classes)))


def explain_run(run: Run, superclasses: tuple[list[str], list[int]] | None = None, top: int = 5) -> dict:
    res, classes, c = run.result, run.result.classes, len(run.result.classes)
    key = run.robust_key
    out: dict = {"name": run.name, "folder": str(run.folder), "n": len(res.labels), "robust_key": key,
                 "clean_accuracy": res.accuracy("clean"), "per_class": {"clean": _per_class_acc(res, "clean").tolist()}}
    confusion = flow.counts(res.labels, res.clean_pred, c)
    out["confusion"] = {"counts": confusion.tolist(), "top": flow.top_flows(confusion, classes, top),
                        "symmetry": flow.symmetry(confusion), "clusters": flow.clusters(confusion, classes)}
    if key:
        out["robust_accuracy"] = res.accuracy(key)
        out["per_class"]["robust"] = _per_class_acc(res, key).tolist()
        fl = flow.adversarial_flow(res.labels, res.clean_pred, res.preds(key), c)
        out["flow"] = {"counts": fl.tolist(), "fooled_share": flow.fooled_share(fl).tolist(),
                       "top": flow.top_flows(fl, classes, top), "symmetry": flow.symmetry(fl),
                       "clusters": flow.clusters(fl, classes)}
    sim = {}
    for skey, label in (("clean", "clean"), (key, "adversarial")):
        for what in ("logits", "features"):
            m = _similarity(res, skey, what) if skey else None
            if m is None:
                continue
            idx, val = similarity.nearest(m)
            errors = {"clean": 1 - np.asarray(out["per_class"]["clean"])}
            if key:
                errors["robust"] = 1 - np.asarray(out["per_class"]["robust"])
            corr = {e: similarity.rank_correlation(val, v).__dict__ for e, v in errors.items()}
            sim[f"{label} {what}"] = {"matrix": m.tolist(), "nearest": [classes[i] for i in idx],
                                      "nearest_similarity": val.tolist(), "correlation": corr}
    out["similarity"] = sim
    if superclasses is not None:
        names, sup_of = superclasses
        sc = {"superclasses": names, "clean": superclass.within_superclass(res.labels, res.clean_pred, sup_of).__dict__,
              "table": superclass.superclass_table(res.labels, res.clean_pred, sup_of, names),
              "flow_clean": superclass.superclass_flow(res.labels, res.clean_pred, sup_of, len(names)).tolist()}
        if key:
            correct = res.clean_pred == res.labels
            sc["adversarial"] = superclass.within_superclass(res.labels, res.preds(key), sup_of, mask=correct).__dict__
            sc["flow_adversarial"] = superclass.superclass_flow(res.labels, res.preds(key), sup_of, len(names),
                                                                mask=correct).tolist()
        out["superclass"] = sc
    return out


# --- across runs ---------------------------------------------------------------------------

def _k(num_classes: int) -> int:
    return 3 if num_classes <= 20 else max(3, num_classes // 10)


def explain_agreement(runs: list[Run], per_run: list[dict]) -> dict:
    """Agreement on the weak classes, for clean and robust per-class accuracy."""
    classes = runs[0].result.classes
    levels = factor_levels(runs)
    out = {"runs": [r.name for r in runs], "design": design([r.config for r in runs]), "factors": levels,
           "k": _k(len(classes)), "metrics": {}}
    for metric in ("clean", "robust"):
        rows = [p["per_class"].get(metric) for p in per_run]
        if any(r is None for r in rows):
            continue
        scores = np.asarray(rows, dtype=float)
        k = out["k"]
        entry = {"scores": scores.tolist(), "always_weak": [classes[i] for i in agreement.always_weak(scores, k)],
                 "weakest": [[classes[i] for i in sorted(agreement.weakest(s, k), key=lambda j: s[j])] for s in scores]}
        if len(runs) >= 2:
            w = agreement.kendall_w(scores)
            rho = agreement.spearman_matrix(scores)
            factors = {}
            for f, lv in levels.items():
                if f == "seed":
                    continue  # seeds are the noise floor, not a factor of the question
                fa = agreement.factor_agreement(rho, lv, f)
                factors[f] = {**fa.__dict__, "delta": fa.delta}
            entry.update(kendall_w=w.__dict__, spearman=rho.tolist(),
                         overlap=agreement.topk_overlap(scores, k).tolist(), factors=factors)
        out["metrics"][metric] = entry
    return out


def superclasses_for(runs: list[Run], data_dir=None) -> tuple[list[str], list[int]] | None:
    """CIFAR-100's superclass names and fine -> superclass map, from the data set the runs were
    evaluated on, when it has them (read from its files; None otherwise)."""
    names = {r.config.get("dataset") for r in runs} - {None}
    if len(names) != 1:
        return None
    from ..data import get_spec, load_raw

    name = names.pop()
    try:
        spec = get_spec(name)
        if "superclass" not in spec.description:
            return None
        test = load_raw(name, data_dir)[1]
    except ClasswiseError:
        return None
    if not getattr(test, "superclasses", None) or list(test.classes) != list(runs[0].result.classes):
        return None
    if any(s < 0 for s in test.superclass_of):
        return None  # a class that no image names: the map is incomplete
    return list(test.superclasses), list(test.superclass_of)


def check_comparable(runs: list[Run]) -> None:
    """Runs analysed together must share their classes (the same data set, or one constructed
    from it): per-class rankings of different class sets do not compare."""
    classes = runs[0].result.classes
    other = [r for r in runs if r.result.classes != classes]
    if other:
        def what(r):
            name = r.config.get("dataset")
            shown = ", ".join(r.result.classes[:4]) + (", ..." if len(r.result.classes) > 4 else "")
            return f"{r.name} ({f'{name}, ' if name else ''}{len(r.result.classes)} classes: {shown})"
        raise ClasswiseError(f"runs of different data sets cannot be explained together: {what(runs[0])} vs "
                             f"{what(other[0])}; give runs that share their classes")


def design(configs: list[dict]) -> dict:
    """How the runs were made: every arm (method) at every seed, as a study's runs are (counts
    of each), or just so many runs."""
    n = len(configs)
    methods = {c.get("method") for c in configs}
    seeds = {c.get("seed") for c in configs}
    pairs = {(c.get("method"), c.get("seed")) for c in configs}
    if n > 1 and None not in methods | seeds and len(pairs) == n == len(methods) * len(seeds):
        return {"runs": n, "arms": len(methods), "seeds": len(seeds)}
    return {"runs": n, "arms": None, "seeds": None}


def explain(runs: list[Run], superclasses=None) -> dict:
    """Every analysis of `runs` as plain values (report/explain.py words them). The runs must
    share their classes (`check_comparable`)."""
    check_comparable(runs)
    classes = runs[0].result.classes
    per_run = [explain_run(r, superclasses) for r in runs]
    return {"classes": classes, "runs": per_run, "agreement": explain_agreement(runs, per_run), "skipped": []}
