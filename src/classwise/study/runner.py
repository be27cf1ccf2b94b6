"""`classwise study`: train one arm per training method (and per seed) with the same
architecture and budget, evaluate every arm per class on the same test images, state every
summary and comparison with its uncertainty (study/compare.py), and write one run directory."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..analysis.corruption import corruption_section
from ..attacks import AttackSpec
from ..data import Splits, load_dataset, stratified_subset
from ..device import resolve_device
from ..errors import ClasswiseError
from ..estimate_training import StudyClock
from ..evaluate import EvalResult, SanityReport, evaluate, sanity_checks
from ..evaluate.stored import load_eval
from ..io import atomic_write_json, atomic_write_text, check_out_dir
from ..metrics import disparity
from ..models import load_weights, read_weights_file
from ..progress import console
from ..report import class_figure, confusion_figure, print_lines, print_per_class, trend_figure, write_report
from ..report.arms import tradeoff_figure
from ..report.explain import sections as explain_sections
from ..report.explain import write_explain
from ..rounding import percent, plural, points
from ..train import BEST_WORST, CHECKPOINT, FINAL, METRICS, build_model
from .compare import (
    BEST,
    LAST,
    METRIC_KEYS,
    STANDARD,
    add_statistics,
    answers,
    interval_text,
    mcnemar_table,
    reference_table,
    study_bootstrap,
    summary_table,
)
from .config import ARM_FIELDS, REPORT_FIELDS, StudyConfig
from .execute import RunOutcome, execute_run, resolve
from .grid import RunConfig, run_id
from .lock import FolderLock
from .outdir import CONFIG, check_resume_config, claim_out, clear_outputs, prepare_run_dir
from .preflight import check_device, check_seed, decide, preflight_run, warn
from .store import Store

__all__ = ["STANDARD", "arm_dir", "run_study"]


@dataclass
class ArmRun:
    """One arm at one seed."""

    arm: str
    seed: int
    run_dir: Path
    outcome: RunOutcome
    best: EvalResult | None = None  # the best worst-class checkpoint's evaluation
    best_epoch: int | None = None
    best_differs: bool = False  # its weights are not the last ones


def arm_dir(out_dir: Path, arm: str, seed: int, several_seeds: bool) -> Path:
    return out_dir / arm / f"seed{seed}" if several_seeds else out_dir / arm


def _arm_config(cfg: StudyConfig, rc: RunConfig, arm: str, seed: int, out_dir: Path,
                check_source: bool = True) -> RunConfig:
    fields = {**rc.model_dump(), "method": arm, "seed": seed}
    source = cfg.init_from.get(arm)
    if source:  # the source arm trained earlier in this seed's loop (the config checks the order)
        weights = arm_dir(out_dir, source, seed, len(cfg.seed_list) > 1) / FINAL
        if check_source and not weights.is_file():
            raise ClasswiseError(f"{arm} starts from the {source} arm's weights, but {weights} does not exist")
        fields["init_weights"] = str(weights.resolve())
    params = cfg.method_params.get(arm, {})
    if "method_params" in RunConfig.model_fields:
        fields["method_params"] = params  # the base run's parameters belong to its own method
    elif params:
        raise ClasswiseError(f"method_params for '{arm}': this version's run config takes no method parameters")
    return RunConfig(**fields)


def _preflight(cfg: StudyConfig, rc: RunConfig, splits: Splits, out_dir: Path, data_dir, force: bool,
               resume: bool) -> list[str]:
    """Every arm at every seed checked on the data before anything is written (see
    study/preflight.py), and with `resume` every stored file a resume reads (the study
    database, each arm's checkpoint and evaluations); the warnings of forced no-op settings."""
    problems = []
    several = len(cfg.seed_list) > 1
    if resume and (out_dir / "study.db").is_file():
        Store(out_dir / "study.db", readonly=True)  # a damaged database: one line, before any write
    for seed in cfg.seed_list:
        check_seed(seed, "--seeds" if cfg.seeds else "--seed")
        for arm in cfg.arms:
            arm_cfg = resolve(_arm_config(cfg, rc, arm, seed, out_dir, check_source=False), splits)
            # an arm fine-tuned from another starts from weights this study makes: not checked here
            for p in preflight_run(arm_cfg, splits, data_dir=data_dir, init_weights=arm not in cfg.init_from):
                if p not in problems:
                    problems.append(p)
            run_dir = arm_dir(out_dir, arm, seed, several)
            if resume:
                for name in (CHECKPOINT, FINAL, BEST_WORST):
                    if (run_dir / name).is_file():
                        read_weights_file(run_dir / name)
                for name in ("eval.json", "eval_best_worst.json"):
                    if (run_dir / name).is_file():
                        load_eval(run_dir / name, _REEVALUATE)
    return decide(problems, force)


def _per_class_rows(arm: str, seed: int, checkpoint: str, res: EvalResult, attack_label: str) -> pd.DataFrame:
    frames = []
    for metric, key in (("clean", "clean"), ("robust", attack_label)):
        t = res.per_class(key)
        t.insert(0, "attack", "none" if key == "clean" else key)
        t.insert(0, "metric", metric)
        t.insert(0, "checkpoint", checkpoint)
        t.insert(0, "seed", seed)
        t.insert(0, "method", arm)
        t.insert(0, "model", arm)
        frames.append(t)
    return pd.concat(frames, ignore_index=True)


def _summary(res: EvalResult, key: str) -> dict:
    table = res.per_class(key)
    return {**res.summary(key), "per_class": dict(zip(table["class"], table["accuracy"], strict=True))}


def _seed_summary(per_seed: list[dict], classes: list[str]) -> dict:
    """Disparity of the per-class accuracy averaged over seeds (its std across seeds comes with
    the bootstrap, see compare.add_statistics)."""
    mean = np.array([[s["per_class"][c] for c in classes] for s in per_seed]).mean(0)
    return {"overall": float(np.mean([s["overall"] for s in per_seed])), **disparity(mean, classes),
            "per_class": dict(zip(classes, mean.tolist(), strict=True))}


def run_study(cfg: StudyConfig, out_dir, *, data_dir=None, device: str = "auto", resume: bool = False,
              download: bool = False, splits: Splits | None = None, overwrite: bool = False, force: bool = False,
              wait: bool = False, estimate: bool = True) -> dict:
    """Train and evaluate every arm at every seed into `out_dir` and report. The whole request
    is checked before anything is written (study/preflight.py); a folder that already holds a
    study is refused unless `resume` (continue it, or re-report a finished one) or `overwrite`
    (replace it); one process at a time works in a study folder (`wait`: wait for the other).
    `estimate`: time a few steps of each arm first and print how long the study will take."""
    t_start = time.perf_counter()
    out_dir = Path(out_dir)
    rc = cfg.run
    check_out_dir(out_dir)
    dev = check_device(device)
    lock = FolderLock(out_dir, what="study", wait=wait)
    lock.check()  # a study running in this folder is named first, whatever else is wrong
    claim_out(out_dir, "study", resume=resume, overwrite=overwrite)
    # one data split for every arm and seed, from the base seed (`run.seed`): arms and seeds are
    # evaluated on the same test images, and a study of seeds [1] trains seed 1 of the study of [0, 1, 2]
    if splits is None:
        splits = load_dataset(rc.dataset, data_dir, val_size=rc.val_size, seed=rc.seed, download=download,
                              imbalance=rc.imbalance)
    rc = resolve(rc, splits)
    cfg = cfg.model_copy(update={"run": rc})
    warnings = _preflight(cfg, rc, splits, out_dir, data_dir, force, resume)  # out_dir is untouched until here
    record = {**cfg.model_dump(exclude=REPORT_FIELDS), "device": str(dev)}
    if resume:
        _check_no_arm_dropped(out_dir, cfg)
        check_resume_config(out_dir, record, resume, may_change=ARM_FIELDS)
    with lock:
        # under the lock: another study may have finished in this folder while we waited
        held = claim_out(out_dir, "study", resume=resume, overwrite=overwrite)
        if overwrite and held:
            clear_outputs(out_dir, "study")
        warn(warnings)
        prepare_run_dir(out_dir, record, resume, may_change=ARM_FIELDS)
        # issue 28: each arm's steps timed here, scaled to the plan; the time left as each arm starts
        clock = StudyClock.start(cfg, splits, dev) if estimate and not resume else None
        return _run_study(cfg, rc, splits, out_dir, data_dir=data_dir, device=device, resume=resume,
                          t_start=t_start, clock=clock)


def _run_study(cfg: StudyConfig, rc: RunConfig, splits: Splits, out_dir: Path, *, data_dir, device, resume: bool,
               t_start: float, clock: StudyClock | None = None) -> dict:
    seeds = cfg.seed_list
    several = len(seeds) > 1
    store = Store(out_dir / "study.db")

    results = {"dataset": rc.dataset, "arch": rc.arch, "eps": rc.eps, "norm": rc.norm, "preset": cfg.preset,
               "classes": list(splits.classes), "arms": cfg.arms, "seeds": seeds, "reference": cfg.reference_arm,
               "init_from": cfg.init_from,
               "resamples": cfg.resamples, "confidence": cfg.confidence, "models": {}}
    runs: list[ArmRun] = []
    # seed by seed, so that an interrupted study already holds whole comparisons
    for seed in seeds:
        for arm in cfg.arms:
            arm_cfg = _arm_config(cfg, rc, arm, seed, out_dir)
            rid = run_id(arm_cfg)
            store.register({rid: arm_cfg.model_dump()})
            run_dir = arm_dir(out_dir, arm, seed, several)
            tag = f"{arm} seed {seed}: " if several else f"{arm}: "
            try:
                outcome = _finished(arm_cfg, run_dir, splits, tag) if resume else None
                if outcome is not None:  # reused, not run again: no new attempt
                    _record(store, rid, outcome, splits.classes)
                else:
                    store.start(rid)
                    if clock is not None:
                        clock.arm_starts(arm)
                    outcome = execute_run(arm_cfg, run_dir, device=device, splits=splits, resume=resume, tag=tag,
                                          store=store, run_id=rid)
            except BaseException as exc:
                store.fail(rid, f"{type(exc).__name__}: {exc}")
                raise
            run = ArmRun(arm, seed, run_dir, outcome)
            run.best, run.best_epoch, run.best_differs = _best_worst(run, splits, device, tag)
            runs.append(run)

    rows = []
    for r in runs:
        res, label = r.outcome.evaluation, r.outcome.attack.label
        results.update(attack=label, attack_spec=r.outcome.attack.model_dump(), n_test=len(res.labels))
        hist = r.outcome.history
        entry = results["models"].setdefault(r.arm, {"method": r.arm, "runs": {}})
        seed_entry = {
            "dir": str(r.run_dir.relative_to(out_dir)), "epochs_run": len(hist),
            "stopped": next((h["stopped"] for h in hist if h.get("stopped")), None),
            "train_seconds": r.outcome.train_seconds, "eval_seconds": r.outcome.eval_seconds,
            "clean": _summary(res, "clean"), "robust": _summary(res, label),
        }
        if cfg.sanity and (r.run_dir / FINAL).exists():
            seed_entry["sanity"] = _sanity(r.run_dir, r.outcome.config, splits, res, r.outcome.attack, device)
        rows.append(_per_class_rows(r.arm, r.seed, LAST, res, label))
        if r.best is not None:
            seed_entry[BEST] = {"epoch": r.best_epoch, "differs": r.best_differs,
                                "clean": _summary(r.best, "clean"), "robust": _summary(r.best, label)}
            rows.append(_per_class_rows(r.arm, r.seed, BEST, r.best, label))
        entry["runs"][str(r.seed)] = seed_entry
    results["models"] = {a: results["models"][a] for a in cfg.arms}  # in the order of the arms
    for entry in results["models"].values():
        entry["runs"] = {str(s): entry["runs"][str(s)] for s in seeds}
        first = entry["runs"][str(seeds[0])]
        entry.update(epochs_run=first["epochs_run"], stopped=first["stopped"])
        for metric in METRIC_KEYS:
            entry[metric] = (first[metric] if not several else
                             _seed_summary([entry["runs"][str(s)][metric] for s in seeds], results["classes"]))
    t_boot = time.perf_counter()
    boot = study_bootstrap(runs, results["attack"], results["classes"], resamples=cfg.resamples, seed=seeds[0],
                           confidence=cfg.confidence)
    add_statistics(results, boot)
    for arm, entry in results["models"].items():
        if BEST in entry:
            entry[BEST]["differs"] = any(r.best_differs for r in runs if r.arm == arm)
            entry[BEST]["epochs"] = {str(r.seed): r.best_epoch for r in runs if r.arm == arm and r.best is not None}
    mcnemar = mcnemar_table(runs, results["attack"], results["classes"], cfg.arms, cfg.reference_arm)
    results["mcnemar"] = mcnemar.to_dict(orient="records")
    results["statistics_seconds"] = time.perf_counter() - t_boot
    results["seconds"] = time.perf_counter() - t_start
    results["answers"] = answers(results)
    corr_answers, corr_figures, corr = corruption_section(
        out_dir, {r.arm: r.outcome.evaluation for r in runs if r.seed == seeds[0]}, results["attack"],
        draw=cfg.figures)
    if corr:  # natural corruptions per class: a heatmap per arm, the rank-correlation answers
        results["corruptions"] = corr
        results["answers"] += corr_answers
    explained = _explain(out_dir, data_dir, cfg.figures)
    results["explain"] = explained["answers"]
    atomic_write_json(out_dir / "results.json", results)
    per_class = pd.concat(rows, ignore_index=True)
    atomic_write_text(out_dir / "per_class.csv", per_class.to_csv(index=False))
    atomic_write_text(out_dir / "mcnemar.csv", mcnemar.to_csv(index=False))
    atomic_write_text(out_dir / METRICS, _metrics_lines(runs, results["classes"]))

    figures = _figures(out_dir, results, runs, per_class) if cfg.figures else {}
    figures.update(corr_figures)
    _html(out_dir, results, per_class, mcnemar, figures, explained)
    _terminal(results, per_class, out_dir)
    return results


def _check_no_arm_dropped(out_dir: Path, cfg: StudyConfig) -> None:
    try:
        old = json.loads((out_dir / CONFIG).read_text()).get("methods", [])
    except (OSError, ValueError, AttributeError):
        return  # prepare_run_dir names what is wrong with the file
    dropped = [m for m in old if m not in cfg.methods]
    if dropped:
        keep = ",".join([*old, *(m for m in cfg.methods if m not in old)])
        raise ClasswiseError(f"--resume: {out_dir} holds the arm(s) {', '.join(dropped)}; a resume may add arms, "
                             f"not drop them: give --methods {keep} or use a new --out")


def _explain(out_dir: Path, data_dir, draw: bool) -> dict:
    """`classwise explain` of the study's own stored evaluations (no new pass): explain/ in the
    run folder, its sections in the study report."""
    from ..analysis.explain import explain, find_runs, superclasses_for

    found = find_runs(out_dir)
    summary = explain(found, superclasses_for(found, data_dir))
    _, figs, tabs = write_explain(summary, out_dir / "explain", draw=draw)
    return {"answers": summary["answers"], "summary": summary, "tables": tabs, "figures": figs}


def _finished(arm_cfg: RunConfig, run_dir: Path, splits: Splits, tag: str) -> RunOutcome | None:
    """The outcome of a run this folder already finished with these settings, read back from its
    checkpoint and eval.json (a resumed study re-reports without re-evaluating), else None."""
    ckpt, ev, final = run_dir / CHECKPOINT, run_dir / "eval.json", run_dir / FINAL
    if not (ckpt.is_file() and ev.is_file() and final.is_file()) or ev.stat().st_mtime < final.stat().st_mtime:
        return None
    cfg = resolve(arm_cfg, splits)
    state = read_weights_file(ckpt)
    if not isinstance(state, dict) or state.get("config") != cfg.model_dump():
        return None
    history = state["history"]
    if state["epoch"] < cfg.epochs and not (history and history[-1].get("stopped")):
        return None
    spec = AttackSpec(name="pgd", eps=cfg.eps, steps=cfg.test_steps, norm=cfg.norm, restarts=cfg.test_restarts)
    res = load_eval(ev, _REEVALUATE)
    if spec.label not in res.adv_pred or len(res.classes) != len(splits.classes):
        return None
    console.print(f"{tag}resuming from epoch {state['epoch']} ({ckpt}): finished, its test evaluation is reused")
    return RunOutcome(cfg, history, res, spec, float(sum(h.get("seconds", 0) for h in history)), 0.0)


_REEVALUATE = "; delete it and rerun with --resume to evaluate that run again"


def _record(store: Store, rid: str, outcome: RunOutcome, classes) -> None:
    for rec in outcome.history:
        store.record_epoch(rid, rec, classes, rec["val_n_per_class"])
    store.finish(rid, outcome.evaluation)


def _best_worst(run: ArmRun, splits: Splits, device, tag: str):
    """The run's best worst-class checkpoint evaluated like its last weights: (evaluation,
    epoch, whether its weights differ from the last ones), or (None, None, False) if the run
    kept none. Identical weights reuse the last evaluation; a new evaluation is cached in
    eval_best_worst.json."""
    path = run.run_dir / BEST_WORST
    if not path.exists():
        return None, None, False
    best, last = read_weights_file(path), read_weights_file(run.run_dir / FINAL)
    epoch = best.get("epoch") if isinstance(best, dict) else None
    if _same_weights(best.get("state_dict", {}), last.get("state_dict", {})):
        return run.outcome.evaluation, epoch, False
    cache = run.run_dir / "eval_best_worst.json"
    if cache.exists() and cache.stat().st_mtime >= path.stat().st_mtime:
        return load_eval(cache, _REEVALUATE), epoch, True
    rc, dev = run.outcome.config, resolve_device(device)
    model = build_model(rc, splits.train)
    load_weights(model, path, best)
    test = stratified_subset(splits.test, rc.test_limit, seed=rc.seed) if rc.test_limit else splits.test
    console.print(f"{tag}evaluating the best worst-class checkpoint (epoch {epoch})")
    res = evaluate(model.to(dev), test, [run.outcome.attack], device=dev, seed=rc.seed)
    atomic_write_json(cache, res.to_dict())
    return res, epoch, True


def _same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _metrics_lines(runs: list[ArmRun], classes: list[str]) -> str:
    """Every run's per-epoch records (its checkpoint's history, which its metrics.jsonl was
    written from), each labelled with its arm and seed."""
    lines = [json.dumps({"model": r.arm, "classes": classes, **rec, "seed": r.seed})
             for r in runs for rec in r.outcome.history]
    return "\n".join(lines) + "\n"


def _sanity(run_dir: Path, rc, splits: Splits, res: EvalResult, spec, device) -> list[dict]:
    """The sanity checks of a run's test evaluation, probing the weights the run saved."""
    model = build_model(rc, splits.train)
    load_weights(model, run_dir / FINAL)
    test = stratified_subset(splits.test, rc.test_limit, seed=rc.seed) if rc.test_limit else splits.test
    return sanity_checks(res, model.to(resolve_device(device)), test, spec=spec, seed=rc.seed).to_dict()


def _arm_tables(results: dict, per_class: pd.DataFrame, arm: str, metric: str) -> pd.DataFrame:
    """The arm's per-class table for the figures: one seed as it is (Wilson intervals); several
    seeds as the mean accuracy with its bootstrap interval over seeds and images."""
    sel = per_class[(per_class.model == arm) & (per_class.metric == metric) & (per_class.checkpoint == LAST)]
    if len(results["seeds"]) == 1:
        return sel.reset_index(drop=True)
    s = results["models"][arm][metric]
    classes = results["classes"]
    return pd.DataFrame({"class": classes, "accuracy": [s["per_class"][c] for c in classes],
                         "ci_low": [s["per_class_ci"][c][0] for c in classes],
                         "ci_high": [s["per_class_ci"][c][1] for c in classes]})


def _figures(out_dir: Path, results: dict, runs: list[ArmRun], per_class: pd.DataFrame) -> dict:
    fig_dir = out_dir / "figures"
    classes, attack = results["classes"], results["attack"]
    seeds = results["seeds"]
    seed_note = f", seed {seeds[0]}" if len(seeds) > 1 else ""
    figs = {}
    for i, arm in enumerate(results["arms"], start=1):
        figs[f"figure{i}_{arm}"] = class_figure(
            _arm_tables(results, per_class, arm, "clean"), _arm_tables(results, per_class, arm, "robust"),
            f"Figure {i}: {arm} arm, {results['arch']} on {results['dataset']}"
            + (f" (mean of seeds {', '.join(map(str, seeds))})" if len(seeds) > 1 else ""),
            f"{attack}, eps={results['eps']:.4g}", fig_dir / f"figure{i}_{arm}.png")
        first = next(r for r in runs if r.arm == arm)
        figs[f"trend_{arm}"] = trend_figure(
            first.outcome.history, classes, f"Per-class validation accuracy during training: {arm}{seed_note}",
            fig_dir / f"trend_{arm}.png")
        arm_runs = [r for r in runs if r.arm == arm]
        figs[f"confusion_{arm}"] = confusion_figure(
            {k: sum(r.outcome.evaluation.confusion(k) for r in arm_runs) for k in ("clean", attack)}, classes,
            f"Confusion matrices (row-normalised, %): {arm} arm" + (", all seeds" if len(seeds) > 1 else ""),
            fig_dir / f"confusion_{arm}.png")
    m = results["models"]
    figs["tradeoff"] = tradeoff_figure(
        [{"arm": a, "mean": m[a]["robust"]["mean"], "worst": m[a]["robust"]["worst"],
          "mean_ci": m[a]["robust"].get("mean_ci"), "worst_ci": m[a]["robust"].get("worst_ci")}
         for a in results["arms"]],
        f"Worst class against the mean, {attack} at eps={results['eps']:.4g} "
        f"({results['confidence'] * 100:.0f}% bootstrap intervals)", fig_dir / "tradeoff.png")
    return figs


def _wide(per_class: pd.DataFrame, checkpoint: str = LAST) -> pd.DataFrame:
    """class x (arm metric): accuracy, averaged over seeds."""
    sel = per_class[per_class.checkpoint == checkpoint]
    wide = sel.pivot_table(index="class", columns=["model", "metric"], values="accuracy", sort=False)
    wide.columns = [f"{m} {k}" for m, k in wide.columns]
    return wide.reset_index()


def _in_points(df: pd.DataFrame, columns: list[str] | None = None) -> pd.DataFrame:
    """Accuracy columns (fractions) as points, rounded once by `rounding.points`, as every
    other table and sentence shows them."""
    out = df.copy()
    for c in columns or [c for c in df.columns if c != "class"]:
        out[c] = [points(v) for v in df[c]]
    return out


def _seed_table(results: dict) -> pd.DataFrame:
    """Per class: mean ± std across seeds for every arm and metric, in points."""
    m, classes = results["models"], results["classes"]
    out = {"class": classes}
    for a in results["arms"]:
        for k in METRIC_KEYS:
            s = m[a][k]
            out[f"{a} {k}"] = [f"{points(s['per_class'][c])} ± {points(s['per_class_std'][c])}" for c in classes]
    return pd.DataFrame(out)


def _weakest_table(results: dict) -> pd.DataFrame:
    m, classes = results["models"], results["classes"]
    return pd.DataFrame({"class": classes, **{f"{a} {k}": [m[a][k]["weakest_probability"][c] for c in classes]
                                              for a in results["arms"] for k in METRIC_KEYS}})


def _checkpoint_table(results: dict) -> pd.DataFrame | None:
    """The last and the best worst-class checkpoint side by side, per class, for every arm that kept one."""
    m, classes = results["models"], results["classes"]
    arms = [a for a in results["arms"] if BEST in m[a]]
    if not arms:
        return None
    pairs = [(a, k, ckpt, m[a][k] if ckpt == LAST else m[a][BEST][k])
             for a in arms for k in METRIC_KEYS for ckpt in (LAST, BEST)]
    out = {"class": classes + ["worst class"]}
    for a, k, ckpt, s in pairs:
        out[f"{a} {k} {ckpt}"] = ([interval_text(s["per_class"][c], s.get("per_class_ci", {}).get(c)) for c in classes]
                                  + [interval_text(s["worst"], s.get("worst_ci"))])
    return pd.DataFrame(out)


def _mcnemar_wide(mcnemar: pd.DataFrame) -> pd.DataFrame | None:
    if mcnemar.empty:
        return None
    t = mcnemar.assign(test=lambda d: d["a"] + " vs " + d["b"] + " " + d["metric"] + " seed " + d["seed"].astype(str))
    return t.pivot_table(index="class", columns="test", values="p_value", sort=False).reset_index()


def _arm_label(results: dict, arm: str) -> str:
    source = results.get("init_from", {}).get(arm)
    return f"{arm} (fine-tuned from {source})" if source else arm


def _html(out_dir: Path, results: dict, per_class: pd.DataFrame, mcnemar: pd.DataFrame, figs: dict,
          explained: dict) -> None:
    m, arms, seeds = results["models"], results["arms"], results["seeds"]
    conf = f"{results['confidence'] * 100:.0f}%"
    meta = [f"{results['arch']} on {results['dataset']} ({results['n_test']} test images), "
            f"preset {results['preset']}; arms {', '.join(_arm_label(results, a) for a in arms)}; "
            f"seeds {', '.join(map(str, seeds))}; "
            f"threat model {results['norm']} eps={results['eps']:.4g}, attack {results['attack']}; "
            f"total {results['seconds']:.0f}s.",
            f"Intervals: {conf} percentile bootstrap, {results['resamples']} resamples, images resampled within "
            "each class and paired across the arms evaluated on them"
            + (", seeds resampled with replacement" if len(seeds) > 1 else "") + "."]
    sections = [(f"Summary (points; [{conf} interval]; std is the population std over classes)",
                 [summary_table(results)])]
    ref_table = reference_table(results)
    if ref_table is not None:
        sections.append((f"Every arm against the reference arm ({results['reference']}) under {results['attack']}",
                         [ref_table]))
    sections.append(("Worst class against the mean, per arm", [figs.get("tradeoff")]))
    if len(seeds) > 1:
        sections.append((f"Per-class accuracy, mean ± std over seeds {', '.join(map(str, seeds))} (points)",
                         [_seed_table(results)]))
    sections.append(("Probability that each class is the weakest (over seeds and bootstrap resamples)",
                     [_weakest_table(results)]))
    ckpt = _checkpoint_table(results)
    if ckpt is not None:
        sections.append(("Last and best worst-class checkpoint side by side (points)", [ckpt]))
    sections += [(f"Figure {i}: {a} arm", [figs.get(f"figure{i}_{a}")]) for i, a in enumerate(arms, start=1)]
    sections.append(("Per-class accuracy (points; last checkpoint, mean over seeds)", [_in_points(_wide(per_class))]))
    mc = _mcnemar_wide(mcnemar)
    if mc is not None:
        sections.append(("Exact McNemar test per class (p-values; same test images, discordant pairs)", [mc]))
    if results.get("comparisons"):
        sections.append(("Every comparison (b - a, fractions)", [pd.DataFrame(results["comparisons"])]))
    sections += [
        ("Per-class trends during training", [figs.get(f"trend_{a}") for a in arms]),
        ("Confusion matrices", [figs.get(f"confusion_{a}") for a in arms]),
        ("Per-class detail with 95% Wilson intervals (points)",
         [_in_points(per_class, ["accuracy", "ci_low", "ci_high"])]),
    ]
    checks = [SanityReport.from_dict(run["sanity"]).table().assign(arm=a, seed=s)
              for a in arms for s, run in m[a]["runs"].items() if run.get("sanity")]
    if checks:
        sections.append(("Sanity checks of the robust evaluation",
                         [pd.concat(checks, ignore_index=True)[["arm", "seed", "check", "status", "detail"]]]))
    for a in arms:
        for s, run in m[a]["runs"].items():
            if run["stopped"]:
                sections.insert(1, (f"Note on the {a} run (seed {s})", [run["stopped"]]))
    corr = results.get("corruptions")
    if corr:
        heatmaps = [f for k, f in figs.items() if k.startswith("corruption_")]
        sections.append(("Per-class accuracy under natural corruptions (mean over severities)",
                         [*_corruption_tables(corr, results["classes"]), *heatmaps]))
    sections += [(f"Why: {title}", items) for title, items in
                 explain_sections(explained["summary"], explained["figures"], explained["tables"])]
    # without figures (--no-figures) a figure's section is left out, not shown empty
    sections = [(title, kept) for title, items in sections if (kept := [i for i in items if i is not None])]
    write_report(out_dir / "report.html", f"classwise study: {results['dataset']} / {results['arch']}",
                 meta, results["answers"] + explained["answers"], sections)


def _corruption_tables(corr: dict, classes: list[str]) -> list[pd.DataFrame]:
    """Points, per arm: each class's mean accuracy under corruption and its share of clean; each
    corruption's mean accuracy, costliest (for the first arm) first."""
    pts = points  # "-" for no share of a clean 0
    by_class = pd.DataFrame({"class": classes, **{f"{arm} {col}": [pts(s[key][c]) for c in classes]
                                                  for arm, s in corr.items()
                                                  for col, key in (("corrupted", "per_class"),
                                                                   ("% of clean", "relative"))}})
    first = next(iter(corr.values()))["per_corruption"]
    names = sorted(first, key=first.get)
    by_corruption = pd.DataFrame({"corruption": names, **{arm: [pts(s["per_corruption"][n]) for n in names]
                                                          for arm, s in corr.items()}})
    return [by_class, by_corruption]


def _terminal(results: dict, per_class: pd.DataFrame, out_dir: Path) -> None:
    m = results["models"]
    worst = {m[a][k]["worst_class"] for a in results["arms"] for k in METRIC_KEYS}
    wide = _wide(per_class)
    if len(wide) <= 30:
        seeds = results["seeds"]
        note = f", mean of seeds {', '.join(map(str, seeds))}" if len(seeds) > 1 else ""
        print_per_class(wide, f"Per-class accuracy (%), {results['attack']} at eps={results['eps']:.4g}{note}", worst)
    warns = [f"{a} arm (seed {s}): {line}" for a in results["arms"] for s, run in m[a]["runs"].items()
             for line in SanityReport.from_dict(run.get("sanity") or []).lines() if " WARN " in line]
    print_lines(results["answers"] + results.get("explain", []) + warns + arm_summaries(results)
                + [f"Run directory: {out_dir} (report.html, results.json, per_class.csv, explain/)"])


def arm_summaries(results: dict) -> list[str]:
    """One line per arm with the figures a study is quoted by: overall, class mean and worst
    class, clean and under the attack (the mean over the seeds with several)."""
    m, seeds = results["models"], results["seeds"]
    note = f" (mean of {plural(len(seeds), 'seed')})" if len(seeds) > 1 else ""

    def part(s: dict, name: str) -> str:
        return (f"{name} overall {percent(s['overall'])}, class mean {percent(s['mean'])}, worst class "
                f"'{s['worst_class']}' {percent(s['worst'])}")

    return [f"{a}{note}: {part(m[a]['clean'], 'clean')}; {part(m[a]['robust'], results['attack'])}"
            for a in results["arms"]]
