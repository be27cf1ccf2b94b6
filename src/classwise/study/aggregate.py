"""A study's runs put together into its typed result: per-class rows of every arm, seed and
checkpoint (`PerClassResult`), each arm's summaries, their bootstrap intervals, the comparisons
between arms, the McNemar tests and the answers (`StudyResult`, results.json)."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from ..config.study import StudyConfig
from ..evaluation import EvalResult
from ..metrics import disparity
from ..result import FORMAT, VERSION, PerClassResult, StudyResult
from .arms import ArmRun
from .compare import BEST, LAST, METRIC_KEYS, add_statistics, mcnemar_table, study_bootstrap


def _summary(res: EvalResult, key: str) -> dict:
    table = res.per_class(key)
    return {**res.summary(key), "per_class": dict(zip(table["class"], table["accuracy"], strict=True))}


def _seed_summary(per_seed: list[dict], classes: list[str]) -> dict:
    """Disparity of the per-class accuracy averaged over seeds (its std across seeds comes with
    the bootstrap, see compare.add_statistics)."""
    mean = np.array([[s["per_class"][c] for c in classes] for s in per_seed]).mean(0)
    return {"overall": float(np.mean([s["overall"] for s in per_seed])), **disparity(mean, classes),
            "per_class": dict(zip(classes, mean.tolist(), strict=True))}


def per_class_rows(runs: list[ArmRun]) -> PerClassResult:
    """Every run's per-class rows, clean and under its attack, for its last and (when it kept
    one) its best worst-class checkpoint."""
    parts = []
    for r in runs:
        keys = {"clean": "clean", "robust": r.outcome.attack.label}
        parts.append(PerClassResult.from_evaluation(r.outcome.evaluation, r.arm, r.seed, LAST, keys))
        if r.best is not None:
            parts.append(PerClassResult.from_evaluation(r.best, r.arm, r.seed, BEST, keys))
    return PerClassResult.concat(parts)


def _arm_entries(cfg: StudyConfig, runs: list[ArmRun], classes: list[str], out_dir, sanity: dict) -> dict:
    seeds = cfg.seed_list
    models = {a: {"method": a, "runs": {}} for a in cfg.arms}
    for r in runs:
        res, label, hist = r.outcome.evaluation, r.outcome.attack.label, r.outcome.history
        entry = {"dir": str(r.run_dir.relative_to(out_dir)), "epochs_run": len(hist),
                 "stopped": next((h["stopped"] for h in hist if h.get("stopped")), None),
                 "train_seconds": r.outcome.train_seconds, "eval_seconds": r.outcome.eval_seconds,
                 "clean": _summary(res, "clean"), "robust": _summary(res, label)}
        if (r.arm, r.seed) in sanity:
            entry["sanity"] = sanity[r.arm, r.seed]
        if r.best is not None:
            entry[BEST] = {"epoch": r.best_epoch, "differs": r.best_differs,
                           "clean": _summary(r.best, "clean"), "robust": _summary(r.best, label)}
        models[r.arm]["runs"][str(r.seed)] = entry
    for entry in models.values():
        entry["runs"] = {str(s): entry["runs"][str(s)] for s in seeds}
        first = entry["runs"][str(seeds[0])]
        entry.update(epochs_run=first["epochs_run"], stopped=first["stopped"])
        for metric in METRIC_KEYS:
            entry[metric] = (first[metric] if len(seeds) == 1 else
                             _seed_summary([entry["runs"][str(s)][metric] for s in seeds], classes))
    return models


def aggregate(cfg: StudyConfig, runs: list[ArmRun], classes: list[str], out_dir, *, sanity: dict,
              corruptions: dict | None, answers, explain_answers: list[str],
              t_start: float) -> tuple[StudyResult, PerClassResult, pd.DataFrame]:
    """(the study's result, its per-class rows, its McNemar tests) from its runs. `sanity` holds
    each (arm, seed)'s sanity checks, `answers(result)` the sentences the report says (appended
    to `corruptions`' own answers)."""
    rc, seeds = cfg.run, cfg.seed_list
    first = runs[0].outcome
    results = {"format": FORMAT, "version": VERSION, "dataset": rc.dataset, "arch": rc.arch, "eps": rc.eps,
               "norm": rc.norm, "preset": cfg.preset,
               "classes": classes, "arms": cfg.arms, "seeds": seeds, "reference": cfg.reference_arm,
               "init_from": cfg.init_from, "resamples": cfg.resamples, "confidence": cfg.confidence,
               "attack": first.attack.label, "attack_spec": first.attack.model_dump(),
               "n_test": len(first.evaluation.labels),
               "models": _arm_entries(cfg, runs, classes, out_dir, sanity)}
    t_boot = time.perf_counter()
    boot = study_bootstrap(runs, results["attack"], classes, resamples=cfg.resamples, seed=seeds[0],
                           confidence=cfg.confidence)
    add_statistics(results, boot)
    for arm, entry in results["models"].items():
        if BEST in entry:
            entry[BEST]["differs"] = any(r.best_differs for r in runs if r.arm == arm)
            entry[BEST]["epochs"] = {str(r.seed): r.best_epoch for r in runs if r.arm == arm and r.best is not None}
    mcnemar = mcnemar_table(runs, results["attack"], classes, cfg.arms, cfg.reference_arm)
    results.update(mcnemar=mcnemar.to_dict(orient="records"), statistics_seconds=time.perf_counter() - t_boot,
                   seconds=time.perf_counter() - t_start, answers=[], explain=explain_answers)
    if corruptions:
        results["corruptions"] = corruptions["summaries"]
    result = StudyResult.model_validate(results)
    said = answers(result) + (corruptions["answers"] if corruptions else [])
    result.answers = said
    return result, per_class_rows(runs), mcnemar
