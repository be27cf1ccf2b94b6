"""`classwise study`: train one arm per training method (and per seed) with the same
architecture and budget, evaluate every arm per class on the same test images, and write
one run directory."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..data import Splits, load_dataset, stratified_subset
from ..device import resolve_device
from ..errors import ClasswiseError
from ..evaluate import EvalResult, SanityReport, sanity_checks
from ..io import atomic_write_json, atomic_write_text
from ..metrics import disparity
from ..models import load_weights
from ..report import class_figure, confusion_figure, print_lines, print_per_class, trend_figure, write_report
from ..report.arms import tradeoff_figure
from ..train import FINAL, METRICS, build_model
from .config import StudyConfig
from .execute import RunOutcome, execute_run, resolve
from .grid import RunConfig, run_id
from .outdir import check_trainable, prepare_run_dir
from .store import Store

STANDARD = "standard"
METRIC_KEYS = ("clean", "robust")


@dataclass
class ArmRun:
    """One arm at one seed."""

    arm: str
    seed: int
    run_dir: Path
    outcome: RunOutcome


def arm_dir(out_dir: Path, arm: str, seed: int, several_seeds: bool) -> Path:
    return out_dir / arm / f"seed{seed}" if several_seeds else out_dir / arm


def _arm_config(cfg: StudyConfig, rc: RunConfig, arm: str, seed: int) -> RunConfig:
    fields = {**rc.model_dump(), "method": arm, "seed": seed}
    params = cfg.method_params.get(arm, {})
    if "method_params" in RunConfig.model_fields:
        fields["method_params"] = params  # the base run's parameters belong to its own method
    elif params:
        raise ClasswiseError(f"method_params for '{arm}': this version's run config takes no method parameters")
    return RunConfig(**fields)


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
    """Disparity of the per-class accuracy averaged over seeds, with its std across seeds
    (sample std, ddof=1, as fair-AT papers report mean ± std over seeds)."""
    acc = np.array([[s["per_class"][c] for c in classes] for s in per_seed])
    mean = acc.mean(0)
    std = acc.std(0, ddof=1) if len(acc) > 1 else np.zeros_like(mean)
    return {"overall": float(np.mean([s["overall"] for s in per_seed])), **disparity(mean, classes),
            "per_class": dict(zip(classes, mean.tolist(), strict=True)),
            "per_class_std": dict(zip(classes, std.tolist(), strict=True))}


def _worst(summary: dict) -> str:
    others = [c for c in summary["worst_tied"] if c != summary["worst_class"]]
    tie = f" (tied with {', '.join(repr(c) for c in others)})" if others else ""
    return f"'{summary['worst_class']}'{tie}"


def weakest_lines(results: dict) -> list[str]:
    m = results["models"]
    return [f"Weakest class of the {arm} arm: {_worst(m[arm]['clean'])} clean ({m[arm]['clean']['worst'] * 100:.1f}%), "
            f"{_worst(m[arm]['robust'])} under {results['attack']} ({m[arm]['robust']['worst'] * 100:.1f}%)."
            for arm in results["arms"]]


def answers(results: dict) -> list[str]:
    """The study's questions, answered from results.json values: the weakest class of every
    arm, and for every adversarial arm how the spread across classes moves from the standard arm."""
    m = results["models"]
    lines = weakest_lines(results)
    if STANDARD not in m:
        return lines
    for arm in (a for a in results["arms"] if a != STANDARD):
        for metric in METRIC_KEYS:
            s, a = m[STANDARD][metric], m[arm][metric]
            lines.append(
                f"{metric.capitalize()} accuracy across classes ({STANDARD} -> {arm}): std {s['std'] * 100:.1f} -> "
                f"{a['std'] * 100:.1f} points, max-min gap {s['gap'] * 100:.1f} -> {a['gap'] * 100:.1f} points.")
    return lines


def run_study(cfg: StudyConfig, out_dir, *, data_dir=None, device: str = "auto", resume: bool = False,
              download: bool = False, splits: Splits | None = None) -> dict:
    t_start = time.perf_counter()
    out_dir = Path(out_dir)
    rc = cfg.run
    seeds = cfg.seed_list
    # one data split for every arm and seed: arms and seeds are evaluated on the same test images
    if splits is None:
        splits = load_dataset(rc.dataset, data_dir, val_size=rc.val_size, seed=seeds[0], download=download)
    rc = resolve(rc, splits)
    cfg = cfg.model_copy(update={"run": rc})
    check_trainable(rc, splits)  # nothing in out_dir may change before the settings are known valid
    prepare_run_dir(out_dir, {**cfg.model_dump(), "device": str(resolve_device(device))}, resume)
    several = len(seeds) > 1
    store = Store(out_dir / "study.db")

    results = {"dataset": rc.dataset, "arch": rc.arch, "eps": rc.eps, "norm": rc.norm, "preset": cfg.preset,
               "classes": list(splits.classes), "arms": cfg.arms, "seeds": seeds, "reference": cfg.reference_arm,
               "models": {}}
    runs: list[ArmRun] = []
    for arm in cfg.arms:
        for seed in seeds:
            arm_cfg = _arm_config(cfg, rc, arm, seed)
            rid = run_id(arm_cfg)
            store.register({rid: arm_cfg.model_dump()})
            store.start(rid)
            run_dir = arm_dir(out_dir, arm, seed, several)
            tag = f"{arm} seed {seed}: " if several else f"{arm}: "
            try:
                outcome = execute_run(arm_cfg, run_dir, device=device, splits=splits, resume=resume, tag=tag,
                                      store=store, run_id=rid)
            except BaseException as exc:
                store.fail(rid, f"{type(exc).__name__}: {exc}")
                raise
            runs.append(ArmRun(arm, seed, run_dir, outcome))

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
        if (r.run_dir / FINAL).exists():
            seed_entry["sanity"] = _sanity(r.run_dir, r.outcome.config, splits, res, r.outcome.attack, device)
        entry["runs"][str(r.seed)] = seed_entry
        rows.append(_per_class_rows(r.arm, r.seed, "last", res, label))
    for entry in results["models"].values():
        first = entry["runs"][str(seeds[0])]
        entry.update(epochs_run=first["epochs_run"], stopped=first["stopped"])
        for metric in METRIC_KEYS:
            entry[metric] = (first[metric] if not several else
                             _seed_summary([entry["runs"][str(s)][metric] for s in seeds], results["classes"]))
    results["seconds"] = time.perf_counter() - t_start
    results["answers"] = answers(results)
    atomic_write_json(out_dir / "results.json", results)
    per_class = pd.concat(rows, ignore_index=True)
    atomic_write_text(out_dir / "per_class.csv", per_class.to_csv(index=False))
    atomic_write_text(out_dir / METRICS, _metrics_lines(runs))

    figures = _figures(out_dir, results, runs, per_class)
    _html(out_dir, results, per_class, figures)
    _terminal(results, per_class, out_dir)
    return results


def _metrics_lines(runs: list[ArmRun]) -> str:
    """Every run's per-epoch records, each labelled with its arm and seed."""
    lines = []
    for r in runs:
        path = r.run_dir / METRICS
        if path.exists():
            for line in path.read_text().splitlines():
                if line.strip():
                    lines.append(json.dumps({**json.loads(line), "model": r.arm, "seed": r.seed}))
    return "\n".join(lines) + "\n"


def _sanity(run_dir: Path, rc, splits: Splits, res: EvalResult, spec, device) -> list[dict]:
    """The sanity checks of a run's test evaluation, probing the weights the run saved."""
    model = build_model(rc, splits.train)
    load_weights(model, run_dir / FINAL)
    test = stratified_subset(splits.test, rc.test_limit, seed=rc.seed) if rc.test_limit else splits.test
    return sanity_checks(res, model.to(resolve_device(device)), test, spec=spec, seed=rc.seed).to_dict()


def _arm_tables(per_class: pd.DataFrame, arm: str, metric: str) -> pd.DataFrame:
    """The arm's per-class table for the figures: one seed as it is; several seeds as the mean
    accuracy with the range of the seeds as its bar."""
    sel = per_class[(per_class.model == arm) & (per_class.metric == metric) & (per_class.checkpoint == "last")]
    if sel["seed"].nunique() == 1:
        return sel.reset_index(drop=True)
    g = sel.groupby("class", sort=False)["accuracy"]
    return pd.DataFrame({"class": list(g.groups), "accuracy": g.mean().to_numpy(),
                         "ci_low": g.min().to_numpy(), "ci_high": g.max().to_numpy()})


def _figures(out_dir: Path, results: dict, runs: list[ArmRun], per_class: pd.DataFrame) -> dict:
    fig_dir = out_dir / "figures"
    classes, attack = results["classes"], results["attack"]
    seeds = results["seeds"]
    seed_note = f", seed {seeds[0]}" if len(seeds) > 1 else ""
    figs = {}
    for i, arm in enumerate(results["arms"], start=1):
        figs[f"figure{i}_{arm}"] = class_figure(
            _arm_tables(per_class, arm, "clean"), _arm_tables(per_class, arm, "robust"),
            f"Figure {i}: {arm} arm, {results['arch']} on {results['dataset']}"
            + (f" (mean of seeds {', '.join(map(str, seeds))}; bars: their range)" if len(seeds) > 1 else ""),
            f"{attack}, eps={results['eps']:.4g}", fig_dir / f"figure{i}_{arm}.png")
        first = next(r for r in runs if r.arm == arm)
        figs[f"trend_{arm}"] = trend_figure(
            first.outcome.history, classes, f"Per-class validation accuracy during training: {arm}{seed_note}",
            fig_dir / f"trend_{arm}.png")
        arm_runs = [r for r in runs if r.arm == arm]
        figs[f"confusion_{arm}"] = confusion_figure(
            {k: sum(r.outcome.evaluation.confusion(k if k == "clean" else attack) for r in arm_runs)
             for k in ("clean", attack)}, classes,
            f"Confusion matrices (row-normalised, %): {arm} arm" + (", all seeds" if len(seeds) > 1 else ""),
            fig_dir / f"confusion_{arm}.png")
    m = results["models"]
    figs["tradeoff"] = tradeoff_figure(
        [{"arm": a, "mean": m[a]["robust"]["mean"], "worst": m[a]["robust"]["worst"],
          "mean_ci": m[a]["robust"].get("mean_ci"), "worst_ci": m[a]["robust"].get("worst_ci")}
         for a in results["arms"]],
        f"Worst class against the mean, {attack} at eps={results['eps']:.4g} (95% intervals)",
        fig_dir / "tradeoff.png")
    return figs


def _wide(per_class: pd.DataFrame) -> pd.DataFrame:
    last = per_class[per_class.checkpoint == "last"]
    wide = last.pivot_table(index="class", columns=["model", "metric"], values="accuracy", sort=False)
    wide.columns = [f"{m} {k}" for m, k in wide.columns]
    return wide.reset_index()


def _summary_table(results: dict) -> pd.DataFrame:
    m = results["models"]
    return pd.DataFrame([
        {"arm": a, "metric": k, "overall": m[a][k]["overall"], "mean": m[a][k]["mean"], "std": m[a][k]["std"],
         "max-min gap": m[a][k]["gap"], "worst class": m[a][k]["worst_class"], "worst": m[a][k]["worst"],
         "best class": m[a][k]["best_class"], "best": m[a][k]["best"]}
        for a in results["arms"] for k in METRIC_KEYS])


def _html(out_dir: Path, results: dict, per_class: pd.DataFrame, figs: dict) -> None:
    m, arms = results["models"], results["arms"]
    meta = [f"{results['arch']} on {results['dataset']} ({results['n_test']} test images), "
            f"preset {results['preset']}; arms {', '.join(arms)}; seeds {', '.join(map(str, results['seeds']))}; "
            f"threat model {results['norm']} eps={results['eps']:.4g}, attack {results['attack']}; "
            f"total {results['seconds']:.0f}s."]
    sections = [("Summary (accuracy as fractions; std is the population std over classes)",
                 [_summary_table(results)]),
                ("Worst class against the mean, per arm", [figs["tradeoff"]])]
    sections += [(f"Figure {i}: {a} arm", [figs[f"figure{i}_{a}"]]) for i, a in enumerate(arms, start=1)]
    sections += [
        ("Per-class accuracy", [_wide(per_class)]),
        ("Per-class trends during training", [figs[f"trend_{a}"] for a in arms]),
        ("Confusion matrices", [figs[f"confusion_{a}"] for a in arms]),
        ("Per-class detail with 95% Wilson intervals", [per_class]),
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
    write_report(out_dir / "report.html", f"classwise study: {results['dataset']} / {results['arch']}",
                 meta, results["answers"], sections)


def _terminal(results: dict, per_class: pd.DataFrame, out_dir: Path) -> None:
    m = results["models"]
    worst = {m[a][k]["worst_class"] for a in results["arms"] for k in METRIC_KEYS}
    wide = _wide(per_class)
    if len(wide) <= 30:
        print_per_class(wide, f"Per-class accuracy (%), {results['attack']} at eps={results['eps']:.4g}", worst)
    warns = [f"{a} arm (seed {s}): {line}" for a in results["arms"] for s, run in m[a]["runs"].items()
             for line in SanityReport.from_dict(run.get("sanity") or []).lines() if " WARN " in line]
    print_lines(results["answers"] + warns + [f"Run directory: {out_dir} (report.html, results.json, per_class.csv)"])
