"""`classwise explain`: why the weak classes are weak, from what the runs stored. Reads every
evaluation of a study run folder (one subfolder per arm), an evaluate `--out` folder or a
sweep's study folder, and puts together the analyses of this package: where errors and
adversarial examples go, how similar the classes look to the model, CIFAR-100 superclasses,
and whether the runs agree on the weak classes and which factor that depends on. Nothing is
recomputed: predictions come from eval.json, similarity from its per-class sums."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ClasswiseError
from ..evaluate import EvalResult
from ..rounding import percent, plural
from . import agreement, flow, similarity, superclass

EVAL = "eval.json"
# which run settings make up each factor of the research plan's question (§3.2)
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


def _config_of(folder: Path, root: Path) -> dict:
    """The run's configuration: the model file's record of it (model.pt, else the training
    checkpoint.pt), else the nearest config.json."""
    for name in ("model.pt", "checkpoint.pt"):
        if (folder / name).is_file():
            import torch

            try:
                meta = torch.load(folder / name, map_location="cpu", weights_only=True)
                if isinstance(meta, dict) and isinstance(meta.get("config"), dict):
                    return meta["config"]
            except Exception:  # noqa: BLE001 - an unreadable weights file only costs us the labels
                pass
    for d in (folder, *folder.parents):
        cfg = d / "config.json"
        if cfg.is_file():
            from ..io import read_json

            data = read_json(cfg, "run configuration (config.json)")
            return data.get("run", data) if isinstance(data, dict) else {}
        if d == root:
            break
    return {}


def _load(path: Path) -> EvalResult:
    from ..evaluate.stored import load_eval

    return load_eval(path, "; evaluate that run again, or leave its folder out")


def find_runs(path) -> list[Run]:
    """The evaluations under `path`: a sweep's study folder (study.db, runs/<id>/eval.json),
    an evaluate --out or train folder (eval.json), or a study run folder (arm subfolders,
    possibly one level of seed folders below them, each with its eval.json)."""
    path = Path(path)
    if not path.exists():
        raise ClasswiseError(f"{path} does not exist")
    if (path / "study.db").is_file() and (path / "runs").is_dir():  # a sweep (a study keeps arm folders)
        from ..study.store import Store

        store = Store(path / "study.db", readonly=True)  # explain reads; it never writes into a study
        status = store.status()
        runs = []
        for rid in sorted(status):
            ev = path / "runs" / rid / EVAL
            if status[rid] == "finished" and ev.is_file():
                runs.append(Run(rid, ev.parent, _load(ev), store.config(rid)))
        if not runs:
            raise ClasswiseError(f"{path}: no finished run with an {EVAL} yet (see `classwise runs {path}`)")
        return _named(runs)
    if (path / EVAL).is_file():
        return [Run(path.name, path, _load(path / EVAL), _config_of(path, path))]
    found = sorted(p for p in path.glob("**/" + EVAL) if len(p.relative_to(path).parts) <= 3
                   and "explain" not in p.relative_to(path).parts)
    if not found:
        raise ClasswiseError(f"{path} holds no {EVAL} (a study run folder, an evaluate --out folder or a "
                             "sweep's study folder)")
    return [Run("/".join(p.parent.relative_to(path).parts), p.parent, _load(p), _config_of(p.parent, path))
            for p in found]


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


def _named(runs: list[Run]) -> list[Run]:
    """Sweep runs named by the levels that set them apart (their ids otherwise); zoo runs by
    their model's name."""
    zoo = [r.config.get("robustbench") for r in runs]
    if all(zoo) and len(set(zoo)) == len(zoo):
        for r, name in zip(runs, zoo, strict=True):
            r.name = name
        return runs
    levels = factor_levels(runs)
    if levels:
        names = [" / ".join(levels[f][i] for f in levels) for i in range(len(runs))]
        if len(set(names)) == len(names):
            for r, n in zip(runs, names, strict=True):
                r.name = n
    return runs


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
    out = {"runs": [r.name for r in runs], "runs_text": runs_text([r.config for r in runs]), "factors": levels,
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
                factors[f] = {**fa.__dict__, "delta": fa.delta, "sentence": agreement.factor_sentence(fa, metric)}
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


def explain(runs: list[Run], superclasses=None) -> dict:
    """Every analysis of `runs` as plain values, with the answers as sentences. The runs must
    share their classes (`check_comparable`)."""
    check_comparable(runs)
    classes = runs[0].result.classes
    per_run = [explain_run(r, superclasses) for r in runs]
    agree = explain_agreement(runs, per_run)
    summary = {"classes": classes, "runs": per_run, "agreement": agree, "skipped": []}
    summary["answers"] = answers(summary)
    return summary


def _pct(v: float) -> str:
    return percent(v, 0)


def _corr_text(c: dict) -> str:
    return "n/a" if c["rho"] != c["rho"] else f"rho {c['rho']:+.2f} (p {c['p']:.3g})"


def runs_text(configs: list[dict]) -> str:
    """How many runs, said the way they were made: `2 arms, 1 seed` when the runs are every arm
    (method) at every seed, as a study's are; `6 runs` otherwise."""
    n = len(configs)
    methods = {c.get("method") for c in configs}
    seeds = {c.get("seed") for c in configs}
    pairs = {(c.get("method"), c.get("seed")) for c in configs}
    if n > 1 and None not in methods | seeds and len(pairs) == n == len(methods) * len(seeds):
        return f"{plural(len(methods), 'arm')}, {plural(len(seeds), 'seed')}"
    return plural(n, "run")


def answers(summary: dict) -> list[str]:
    lines = []
    ag = summary["agreement"]
    for metric, e in ag["metrics"].items():
        if "kendall_w" in e:
            w = e["kendall_w"]
            across = ag.get("runs_text") or plural(w["m"], "run")
            lines.append(f"Agreement on the {metric} weak classes across {across}: Kendall's W {w['w']:.2f} "
                         f"(chi2 {w['chi2']:.1f}, df {w['df']}, p {w['p']:.2g}); among the {ag['k']} weakest of every "
                         f"run: {', '.join(e['always_weak']) or 'no class'}.")
            lines += [f["sentence"] for f in e.get("factors", {}).values()]
    for r in summary["runs"]:
        head = f"{r['name']}:"
        cl = r["confusion"]["clusters"]
        lines.append(f"{head} clean confusion clusters: " + ("; ".join("{" + ", ".join(g) + "}" for g in cl) or "none")
                     + f"; symmetry of clean confusion {r['confusion']['symmetry']:.2f}.")
        if "flow" in r:
            tops = "; ".join(flow.flow_sentence(f) for f in r["flow"]["top"][:3])
            lines.append(f"{head} adversarial flows ({r['robust_key']}): {tops or 'nothing was fooled'}; "
                         f"symmetry {r['flow']['symmetry']:.2f}.")
        sim = r["similarity"]
        if not sim:
            lines.append(f"{head} similarity: not stored (this eval.json predates per-class sums; evaluate again).")
        for label, s in sim.items():
            if label not in ("clean logits", "clean features", "adversarial logits"):
                continue
            corr = ", ".join(f"with {e} error {_corr_text(c)}" for e, c in s["correlation"].items())
            most = int(np.nanargmax(s["nearest_similarity"]))
            pair = f"{summary['classes'][most]} ~ {s['nearest'][most]}"
            lines.append(f"{head} similarity of {label}: nearest pair {pair} "
                         f"(cosine {s['nearest_similarity'][most]:.2f}); across classes, nearest-class similarity "
                         f"correlates {corr}.")
        if "superclass" in r:
            sc = r["superclass"]
            txt = f"{head} errors inside the true superclass: clean {_pct(sc['clean']['share'])}"
            if "adversarial" in sc:
                txt += f", adversarial {_pct(sc['adversarial']['share'])}"
            lines.append(txt + f" (chance {percent(sc['clean']['chance'])}, binomial p {sc['clean']['p']:.2g}).")
    if summary["skipped"]:
        lines.append(f"Skipped (other classes than the first run): {', '.join(summary['skipped'])}.")
    return lines
