"""`classwise study`: train a standard and an adversarially trained model with the same
architecture and budget, evaluate both per class, and write one run directory."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from ..data import Splits, load_dataset, stratified_subset
from ..device import resolve_device
from ..evaluate import EvalResult, SanityReport, sanity_checks
from ..io import atomic_write_json, atomic_write_text
from ..models import load_weights
from ..report import class_figure, confusion_figure, print_lines, print_per_class, trend_figure, write_report
from ..train import FINAL, METRICS, build_model
from .config import StudyConfig
from .execute import execute_run, resolve

MODELS = ("standard", "adversarial")


def _per_class_rows(name: str, method: str, res: EvalResult, attack_label: str) -> pd.DataFrame:
    frames = []
    for metric, key in (("clean", "clean"), ("robust", attack_label)):
        t = res.per_class(key)
        t.insert(0, "attack", "none" if key == "clean" else key)
        t.insert(0, "metric", metric)
        t.insert(0, "method", method)
        t.insert(0, "model", name)
        frames.append(t)
    return pd.concat(frames, ignore_index=True)


def _summary(res: EvalResult, key: str) -> dict:
    table = res.per_class(key)
    return {**res.summary(key), "per_class": dict(zip(table["class"], table["accuracy"], strict=True))}


def _worst(summary: dict) -> str:
    others = [c for c in summary["worst_tied"] if c != summary["worst_class"]]
    tie = f" (tied with {', '.join(repr(c) for c in others)})" if others else ""
    return f"'{summary['worst_class']}'{tie}"


def answers(results: dict) -> list[str]:
    """The study's two questions, answered from results.json values."""
    m = results["models"]
    lines = []
    for name in MODELS:
        c, r = m[name]["clean"], m[name]["robust"]
        lines.append(f"Weakest class of the {name} model ({m[name]['method']}): "
                     f"{_worst(c)} clean ({c['worst'] * 100:.1f}%), "
                     f"{_worst(r)} under {results['attack']} ({r['worst'] * 100:.1f}%).")
    for metric in ("clean", "robust"):
        s, a = m["standard"][metric], m["adversarial"][metric]
        w = results["gap_widens"][metric]
        verdict = ("WIDENS the gap between classes" if w["std"] and w["gap"] else
                   "does not widen the gap between classes" if not (w["std"] or w["gap"]) else
                   f"gives a mixed answer (std {'up' if w['std'] else 'down'}, "
                   f"gap {'up' if w['gap'] else 'down'})")
        lines.append(
            f"{metric.capitalize()} accuracy across classes: std {s['std'] * 100:.1f} -> {a['std'] * 100:.1f} "
            f"points, max-min gap {s['gap'] * 100:.1f} -> {a['gap'] * 100:.1f} points "
            f"(standard -> adversarial): adversarial training {verdict}.")
    return lines


def run_study(cfg: StudyConfig, out_dir, *, data_dir=None, device: str = "auto", resume: bool = False,
              download: bool = False, splits: Splits | None = None) -> dict:
    t_start = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rc = cfg.run
    if splits is None:
        splits = load_dataset(rc.dataset, data_dir, val_size=rc.val_size, seed=rc.seed, download=download)
    rc = resolve(rc, splits)
    cfg = cfg.model_copy(update={"run": rc})
    atomic_write_json(out_dir / "config.json", {**cfg.model_dump(), "device": str(resolve_device(device))})

    results = {"dataset": rc.dataset, "arch": rc.arch, "eps": rc.eps, "norm": rc.norm, "preset": cfg.preset,
               "classes": list(splits.classes), "models": {}}
    rows, histories, evals = [], {}, {}
    for name, method in zip(MODELS, ("standard", cfg.adversarial_method), strict=True):
        run = execute_run(rc.model_copy(update={"method": method}), out_dir / name, device=device, splits=splits,
                          resume=resume, tag=f"{name}: ")
        res, label = run.evaluation, run.attack.label
        histories[name], evals[name] = run.history, res
        results.update(attack=label, attack_spec=run.attack.model_dump(), n_test=len(res.labels))
        results["models"][name] = {
            "method": method, "epochs_run": len(run.history),
            "stopped": next((h["stopped"] for h in run.history if h.get("stopped")), None),
            "train_seconds": run.train_seconds, "eval_seconds": run.eval_seconds,
            "clean": _summary(res, "clean"), "robust": _summary(res, label),
        }
        rows.append(_per_class_rows(name, method, res, label))
        if (out_dir / name / FINAL).exists():
            results["models"][name]["sanity"] = _sanity(out_dir / name, rc, splits, res, run.attack, device)
    m = results["models"]
    results["gap_widens"] = {k: {s: bool(m["adversarial"][k][s] > m["standard"][k][s]) for s in ("std", "gap")}
                             for k in ("clean", "robust")}
    results["seconds"] = time.perf_counter() - t_start
    results["answers"] = answers(results)
    atomic_write_json(out_dir / "results.json", results)
    per_class = pd.concat(rows, ignore_index=True)
    atomic_write_text(out_dir / "per_class.csv", per_class.to_csv(index=False))
    atomic_write_text(out_dir / METRICS, "".join(
        (out_dir / n / METRICS).read_text() for n in MODELS if (out_dir / n / METRICS).exists()))

    figures = _figures(out_dir, results, evals, histories, per_class)
    _html(out_dir, results, per_class, figures)
    _terminal(results, per_class, out_dir)
    return results


def _sanity(run_dir: Path, rc, splits: Splits, res: EvalResult, spec, device) -> list[dict]:
    """The sanity checks of a run's test evaluation, probing the weights the run saved."""
    model = build_model(rc, splits.train)
    load_weights(model, run_dir / FINAL)
    test = stratified_subset(splits.test, rc.test_limit, seed=rc.seed) if rc.test_limit else splits.test
    return sanity_checks(res, model.to(resolve_device(device)), test, spec=spec, seed=rc.seed).to_dict()


def _figures(out_dir: Path, results: dict, evals: dict, histories: dict, per_class: pd.DataFrame):
    fig_dir = out_dir / "figures"
    classes, attack = results["classes"], results["attack"]
    figs = {}
    for i, name in enumerate(MODELS, start=1):
        sel = per_class[per_class.model == name]
        method = results["models"][name]["method"]
        figs[f"figure{i}_{name}"] = class_figure(
            sel[sel.metric == "clean"].reset_index(drop=True), sel[sel.metric == "robust"].reset_index(drop=True),
            f"Figure {i}: {name} model ({method}), {results['arch']} on {results['dataset']}",
            f"{attack}, eps={results['eps']:.4g}", fig_dir / f"figure{i}_{name}.png")
        figs[f"trend_{name}"] = trend_figure(
            histories[name], classes, f"Per-class validation accuracy during training: {name} ({method})",
            fig_dir / f"trend_{name}.png")
        figs[f"confusion_{name}"] = confusion_figure(
            {"clean": evals[name].confusion("clean"), attack: evals[name].confusion(attack)}, classes,
            f"Confusion matrices (row-normalised, %): {name} model", fig_dir / f"confusion_{name}.png")
    return figs


def _wide(per_class: pd.DataFrame) -> pd.DataFrame:
    wide = per_class.pivot_table(index="class", columns=["model", "metric"], values="accuracy", sort=False)
    wide.columns = [f"{m} {k}" for m, k in wide.columns]
    return wide.reset_index()


def _html(out_dir: Path, results: dict, per_class: pd.DataFrame, figs: dict) -> None:
    m = results["models"]
    summary = pd.DataFrame([
        {"model": n, "method": m[n]["method"], "metric": k, "overall": m[n][k]["overall"],
         "mean": m[n][k]["mean"], "std": m[n][k]["std"], "max-min gap": m[n][k]["gap"],
         "worst class": m[n][k]["worst_class"], "worst": m[n][k]["worst"],
         "best class": m[n][k]["best_class"], "best": m[n][k]["best"]}
        for n in MODELS for k in ("clean", "robust")])
    meta = [f"{results['arch']} on {results['dataset']} ({results['n_test']} test images), "
            f"preset {results['preset']}; threat model {results['norm']} eps={results['eps']:.4g}, "
            f"attack {results['attack']}; total {results['seconds']:.0f}s."]
    sections = [
        ("Summary (accuracy as fractions; std is the population std over classes)", [summary]),
        ("Figure 1: standard model", [figs["figure1_standard"]]),
        ("Figure 2: adversarially trained model", [figs["figure2_adversarial"]]),
        ("Per-class accuracy", [_wide(per_class)]),
        ("Per-class trends during training", [figs["trend_standard"], figs["trend_adversarial"]]),
        ("Confusion matrices", [figs["confusion_standard"], figs["confusion_adversarial"]]),
        ("Per-class detail with 95% Wilson intervals", [per_class]),
    ]
    checks = [SanityReport.from_dict(m[n]["sanity"]).table().assign(model=n) for n in MODELS if m[n].get("sanity")]
    if checks:
        sections.append(("Sanity checks of the robust evaluation",
                         [pd.concat(checks, ignore_index=True)[["model", "check", "status", "detail"]]]))
    for n in MODELS:
        if m[n]["stopped"]:
            sections.insert(1, (f"Note on the {n} run", [m[n]["stopped"]]))
    write_report(out_dir / "report.html", f"classwise study: {results['dataset']} / {results['arch']}",
                 meta, results["answers"], sections)


def _terminal(results: dict, per_class: pd.DataFrame, out_dir: Path) -> None:
    worst = {results["models"][n][k]["worst_class"] for n in MODELS for k in ("clean", "robust")}
    wide = _wide(per_class)
    if len(wide) <= 30:
        print_per_class(wide, f"Per-class accuracy (%), {results['attack']} at eps={results['eps']:.4g}", worst)
    warns = [f"{n} model: {line}" for n in MODELS for line in SanityReport.from_dict(
        results["models"][n].get("sanity") or []).lines() if " WARN " in line]
    print_lines(results["answers"] + warns + [f"Run directory: {out_dir} (report.html, results.json, per_class.csv)"])

