"""`classwise study`: train one arm per training method (and per seed) with the same
architecture and budget, evaluate every arm per class on the same test images, and write one
run directory. This module is the orchestration: the checks before anything is written and the
seed x arm loop; study/aggregate.py puts the runs together into the typed result, report/study.py
writes the report."""

from __future__ import annotations

import time
from pathlib import Path

from ..config.study import ARM_FIELDS, REPORT_FIELDS, StudyConfig
from ..data import Splits, load_dataset
from ..estimate_training import StudyClock
from ..evaluation import load_eval
from ..io import atomic_write_text, check_out_dir
from ..models import read_weights_file
from ..progress import console
from ..report.corruption import corruption_section
from ..report.explain import answers as explain_answers
from ..report.explain import sections as explain_sections
from ..report.explain import write_explain
from ..report.study import figures, terminal, write_html
from ..report.study_text import answers
from ..result import StudyResult
from ..training import BEST_WORST, CHECKPOINT, FINAL, METRICS
from ..training.resolve import resolve
from .aggregate import aggregate
from .arms import (
    REEVALUATE,
    ArmRun,
    arm_config,
    arm_dir,
    best_worst,
    check_no_arm_dropped,
    metrics_lines,
    record,
    sanity,
    shared_run,
    stored,
)
from .execute import execute_run
from .grid import run_id
from .lock import FolderLock
from .outdir import check_resume_config, claim_out, clear_outputs, prepare_run_dir
from .preflight import check_device, check_seed, decide, preflight_run, warn
from .store import Store

__all__ = ["arm_dir", "run_study"]


def _preflight(cfg: StudyConfig, splits: Splits, out_dir: Path, data_dir, force: bool, resume: bool) -> list[str]:
    """Every arm at every seed checked on the data before anything is written (see
    study/preflight.py), and with `resume` every stored file a resume reads (the study
    database, each arm's checkpoint and evaluations); the warnings of forced no-op settings."""
    problems = []
    if resume and (out_dir / "study.db").is_file():
        Store(out_dir / "study.db", readonly=True)  # a damaged database: one line, before any write
    for seed in cfg.seed_list:
        check_seed(seed, "--seeds" if cfg.seeds else "--seed")
        for arm in cfg.arms:
            arm_cfg = resolve(arm_config(cfg, cfg.run, arm, seed, out_dir, check_source=False), splits)
            # an arm fine-tuned from another starts from weights this study makes: not checked here
            for p in preflight_run(arm_cfg, splits, data_dir=data_dir, init_weights=arm not in cfg.init_from):
                if p not in problems:
                    problems.append(p)
            run_dir = arm_dir(out_dir, arm, seed, len(cfg.seed_list) > 1)
            if resume:
                for name in (CHECKPOINT, FINAL, BEST_WORST):
                    if (run_dir / name).is_file():
                        read_weights_file(run_dir / name)
                for name in ("eval.json", "eval_best_worst.json"):
                    if (run_dir / name).is_file():
                        load_eval(run_dir / name, REEVALUATE)
    return decide(problems, force)


def run_study(cfg: StudyConfig, out_dir, *, data_dir=None, device: str = "auto", resume: bool = False,
              download: bool = False, splits: Splits | None = None, overwrite: bool = False, force: bool = False,
              wait: bool = False, estimate: bool = True) -> StudyResult:
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
    cfg = cfg.model_copy(update={"run": shared_run(rc, splits)})
    warnings = _preflight(cfg, splits, out_dir, data_dir, force, resume)  # out_dir is untouched until here
    config_record = {**cfg.model_dump(exclude=REPORT_FIELDS), "device": str(dev)}
    if resume:
        check_no_arm_dropped(out_dir, cfg)
        check_resume_config(out_dir, config_record, resume, may_change=ARM_FIELDS)
    with lock:
        # under the lock: another study may have finished in this folder while we waited
        held = claim_out(out_dir, "study", resume=resume, overwrite=overwrite)
        if overwrite and held:
            clear_outputs(out_dir, "study")
        warn(warnings)
        prepare_run_dir(out_dir, config_record, resume, may_change=ARM_FIELDS)
        # each arm's steps timed here, scaled to the plan; the time left as each arm starts
        done, left = stored(cfg, splits, out_dir) if resume else ({}, None)
        clock = StudyClock.start(cfg, splits, dev, left) if estimate and left != {} else None
        runs = _train_arms(cfg, splits, out_dir, device=device, resume=resume, clock=clock, done=done)
        return _report(cfg, runs, splits, out_dir, data_dir=data_dir, device=device, t_start=t_start)


def _train_arms(cfg: StudyConfig, splits: Splits, out_dir: Path, *, device, resume: bool,
                clock: StudyClock | None, done: dict) -> list[ArmRun]:
    """Every arm at every seed, seed by seed (an interrupted study already holds whole
    comparisons); a run `done` (finished before a resume) is reused, not run again."""
    several = len(cfg.seed_list) > 1
    store = Store(out_dir / "study.db")
    runs = []
    for seed in cfg.seed_list:
        for arm in cfg.arms:
            arm_cfg = arm_config(cfg, cfg.run, arm, seed, out_dir)
            rid = run_id(arm_cfg)
            store.register({rid: arm_cfg.model_dump()})
            run_dir = arm_dir(out_dir, arm, seed, several)
            tag = f"{arm} seed {seed}: " if several else f"{arm}: "
            try:
                outcome = done.get((arm, seed))
                if outcome is not None:  # reused, not run again: no new attempt
                    console.print(f"{tag}resuming from epoch {len(outcome.history)} ({run_dir / CHECKPOINT}): "
                                  "finished, its test evaluation is reused")
                    record(store, rid, outcome, splits.classes)
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
            run.best, run.best_epoch, run.best_differs = best_worst(run, splits, device, tag)
            runs.append(run)
    return runs


def _report(cfg: StudyConfig, runs: list[ArmRun], splits: Splits, out_dir: Path, *, data_dir, device,
            t_start: float) -> StudyResult:
    """The study's result from its runs, every file of it written, and the terminal's summary."""
    classes = list(splits.classes)
    checks = {(r.arm, r.seed): sanity(r, splits, device) for r in runs
              if cfg.sanity and (r.run_dir / FINAL).exists()}
    attack = runs[0].outcome.attack.label
    corr_answers, corr_figures, corr = corruption_section(
        out_dir, {r.arm: r.outcome.evaluation for r in runs if r.seed == cfg.seed_list[0]}, attack,
        draw=cfg.figures)
    explained = _explain(out_dir, data_dir, cfg.figures)
    result, rows, mcnemar = aggregate(cfg, runs, classes, out_dir, sanity=checks,
                                      corruptions={"summaries": corr, "answers": corr_answers} if corr else None,
                                      answers=answers, explain_answers=explained["answers"], t_start=t_start)
    result.save(out_dir / "results.json")
    atomic_write_text(out_dir / "per_class.csv", rows.to_csv())
    atomic_write_text(out_dir / "mcnemar.csv", mcnemar.to_csv(index=False))
    atomic_write_text(out_dir / METRICS, metrics_lines(runs, classes))
    figs = {}
    if cfg.figures:
        histories = {a: next(r for r in runs if r.arm == a).outcome.history for a in cfg.arms}
        confusions = {a: {k: sum(r.outcome.evaluation.confusion(k) for r in runs if r.arm == a)
                          for k in ("clean", attack)} for a in cfg.arms}
        figs = figures(out_dir, result, rows, histories, confusions)
    figs.update(corr_figures)
    write_html(out_dir, result, rows, mcnemar, figs,
               explain_sections(explained["summary"], explained["figures"], explained["tables"]),
               explained["answers"])
    terminal(result, rows, out_dir)
    return result


def _explain(out_dir: Path, data_dir, draw: bool) -> dict:
    """`classwise explain` of the study's own stored evaluations (no new pass): explain/ in the
    run folder, its sections in the study report."""
    from ..analysis.explain import explain, superclasses_for
    from .stored_runs import find_runs

    found = find_runs(out_dir)
    summary = explain(found, superclasses_for(found, data_dir))
    _, figs, tabs = write_explain(summary, out_dir / "explain", draw=draw)
    return {"answers": explain_answers(summary), "summary": summary, "tables": tabs, "figures": figs}

