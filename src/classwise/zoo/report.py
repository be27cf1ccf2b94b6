"""What a zoo run writes, from the study database and nothing else: the per-class leaderboard
(`leaderboard.csv`, `leaderboard.parquet`, `leaderboard.html`), every model's per-class table
(`per_class.csv`), the check against the published numbers (`comparison.csv`), the frontier
figure (`figures/frontier.png`) and `zoo.json` with the agreement across models and the answers.
Each file is written atomically, after the evaluations: a killed zoo leaves the previous
report or none, never half of one."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..io import atomic_write_bytes, atomic_write_json, atomic_write_text
from .agreement import zoo_agreement
from .frontier import frontier_figure, frontier_models
from .leaderboard import check_lines, comparison, leaderboard, per_class_tables, side_names, tidy_per_class
from .protocol import ZooSettings
from .run import META
from .sweep import Selection, failed_models


@dataclass
class ZooReport:
    settings: ZooSettings
    board: pd.DataFrame
    comparison: pd.DataFrame
    per_class: pd.DataFrame
    agreement: dict
    frontier: dict[str, list[str]]
    failures: dict[str, str]
    departures: list[str]
    answers: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


def _run_notes(study_dir: Path, sel: Selection, finished: set[str]) -> list[str]:
    """Departures a run found at run time: corruptions left out or made in memory."""
    skipped, memory = set(), False
    for rid in sel.runs.values():
        meta = study_dir / "runs" / rid / META
        if rid in finished and meta.is_file():
            m = json.loads(meta.read_text())
            skipped |= set(m.get("skipped", {}))
            memory |= "tensor" in m.get("sources", [])
    out = [f"{', '.join(sorted(skipped))} left out (see zoo_run.json)"] if skipped else []
    if memory:
        out.append("corruptions made in memory (the same formulas, other random draws), not read from the published "
                   "CIFAR-10-C files (those need the whole test set and the files under a data root)")
    return out


def build_report(study_dir, sel: Selection, settings: ZooSettings, store,
                 executed: dict[str, str] | None = None) -> ZooReport:
    """`executed`: {run id: why its job failed} of the evaluation just run, if one ran."""
    study_dir = Path(study_dir)
    clean, robust = side_names(settings.threat)
    status = store.status()
    finished = {name: rid for name, rid in sel.runs.items() if status.get(rid) == "finished"}
    tables = per_class_tables(store.tidy(), finished, settings.robust_label, settings.threat)
    board = leaderboard(tables, sel.infos, settings.threat)
    departures = settings.departures() + _run_notes(study_dir, sel, set(finished.values()))
    if settings.dataset == "imagenet":
        departures.append("ImageNet: the first n images of our validation order with resize-256 / crop-224, not "
                          "RobustBench's 5,000-image list and per-model preprocessing")
    models = list(board["model"]) if not board.empty else []
    classes = list(next(iter(tables.values()))[clean]["class"]) if tables else []
    scores = {side: np.vstack([tables[m][side]["accuracy"].to_numpy(float) for m in models])
              for side in (clean, robust) if models and all(side in tables[m] for m in models)}
    agree = zoo_agreement(scores, models, classes, sel.infos) if models else {"answers": [], "sides": {}}
    fronts = {side: frontier_models(board, side) for side in (clean, robust)}
    failures = failed_models(sel, store, executed)
    rep = ZooReport(settings, board, comparison(board, settings.threat) if models else pd.DataFrame(),
                    tidy_per_class(tables), agree, fronts, failures, departures)
    answers = []
    if departures:
        answers.append("Not the leaderboard's protocol: " + "; ".join(departures) + ".")
    if models:
        answers += check_lines(board, settings.threat)
        for side in (clean, robust):
            if fronts[side]:
                answers.append(f"On the {side} frontier (no model has both a higher class mean and a higher worst "
                               f"class): {', '.join(fronts[side])}.")
        answers += agree["answers"]
    if sel.offline and any(i is None for i in sel.infos.values()):
        answers.append(f"Published numbers could not be fetched ({sel.offline}); give --leaderboard DIR, a copy of "
                       "RobustBench's model_info/.")
    if failures:
        answers.append(f"{len(failures)} model(s) could not be evaluated: {', '.join(failures)} (one line each).")
    rep.answers = answers
    return rep


def _parquet(path: Path, df: pd.DataFrame) -> bool:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    import io

    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    atomic_write_bytes(path, buf.getvalue())
    return True


def write_report(rep: ZooReport, out, *, figures: bool = True) -> list[Path]:
    """Every file of the report under `out`; returns their paths."""
    from .page import write_page

    out = Path(out)
    s = rep.settings
    files = []
    atomic_write_text(out / "leaderboard.csv", rep.board.to_csv(index=False))
    files.append(out / "leaderboard.csv")
    if _parquet(out / "leaderboard.parquet", rep.board):
        files.append(out / "leaderboard.parquet")
    else:
        rep.answers.append("leaderboard.parquet not written: it needs pyarrow (pip install 'classwise[parquet]').")
    atomic_write_text(out / "per_class.csv", rep.per_class.to_csv(index=False))
    atomic_write_text(out / "comparison.csv", rep.comparison.to_csv(index=False))
    files += [out / "per_class.csv", out / "comparison.csv"]
    figure = None
    if figures and not rep.board.empty:
        figure = frontier_figure(rep.board, side_names(s.threat), f"RobustBench {s.dataset} {s.threat}: "
                                 f"{len(rep.board)} models, {s.images} test images", out / "figures" / "frontier.png")
        files.append(figure)
    meta = [f"RobustBench zoo, {s.dataset} {s.threat}: {len(rep.board)} models evaluated on the first {s.images} "
            "test images" + ("" if s.threat == "corruptions" else f", {s.autoattack().describe()}")]
    files.append(write_page(out / "leaderboard.html", title=f"Per-class leaderboard: RobustBench {s.dataset} "
                            f"{s.threat}", meta=meta, answers=rep.answers, board=rep.board,
                            comparison=rep.comparison, figure=figure, per_class=rep.per_class,
                            failures=rep.failures))
    atomic_write_json(out / "zoo.json", {
        "settings": s.model_dump(), "protocol": s.identity(), "departures": rep.departures,
        "answers": rep.answers, "frontier": rep.frontier, "failures": rep.failures,
        "agreement": rep.agreement, "leaderboard": json.loads(rep.board.to_json(orient="records"))})
    files.append(out / "zoo.json")
    rep.files = files
    return files
