"""The zoo as a resumable sweep whose axis is the model: choose the models (all, a list, or a
filter on the leaderboard's facts), register one run a model in the study's SQLite store (its id
a hash of the name and the protocol), and evaluate the unfinished ones, in this process, in local
worker processes or as a Slurm job array (one model a task), with `classwise.study.sweep`'s
executors. Rerunning the same command skips the finished models and starts the others again."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ClasswiseError
from ..io import check_out_dir
from ..progress import console
from .info import InfoSource, ModelInfo, leaderboard_names
from .names import THREATS, names
from .protocol import ZooSettings, zoo_run_id
from .run import DB, ZooJob

CACHE = "model_info"


@dataclass
class Selection:
    """The models of one zoo run: the ones to evaluate (name -> run id), the ones that cannot be
    (name -> why, one line each), and what the leaderboard says of each (None: nothing known)."""

    runs: dict[str, str] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    infos: dict[str, ModelInfo | None] = field(default_factory=dict)
    offline: str | None = None  # why published numbers could not be fetched, if they could not


def default_study_dir(settings: ZooSettings) -> Path:
    return Path("runs") / f"zoo-{settings.dataset}-{settings.threat}"


def _parse_models(models) -> list[str]:
    if isinstance(models, str):
        models = [m for m in models.replace(",", " ").split() if m]
    models = list(dict.fromkeys(models or []))
    if not models:
        raise ClasswiseError("--models is empty; give all, or names separated by commas")
    return models


def select(models, settings: ZooSettings, study_dir, *, leaderboard=None, fetch: bool = True,
           architecture: str | None = None) -> Selection:
    """Resolve `models` (`all` or names) and the filters to the runs to make. Unknown names are
    refused here, before any work; names the leaderboard lists but the installed package cannot
    build are kept as unavailable, each with its one line."""
    requested = _parse_models(models)
    package = names(settings.dataset, settings.threat)
    listed = leaderboard_names(leaderboard, settings.dataset, settings.threat) if leaderboard else []
    if requested == ["all"]:
        chosen = list(dict.fromkeys([*package, *listed]))
    else:
        unknown = [m for m in requested if m not in package and m not in listed]
        if unknown:
            import difflib

            close = difflib.get_close_matches(unknown[0], package, n=3)
            raise ClasswiseError(f"no RobustBench model '{unknown[0]}' for {settings.dataset} {settings.threat}"
                                 + (f" (and {len(unknown) - 1} more unknown)" if len(unknown) > 1 else "")
                                 + (f"; did you mean {', '.join(close)}?" if close else
                                    "; `classwise zoo --list` shows the names"))
        chosen = requested
    source = InfoSource(settings.dataset, settings.threat, leaderboard=leaderboard,
                        cache_dir=Path(study_dir) / CACHE, fetch=fetch)
    sel = Selection()
    for name in chosen:
        sel.infos[name] = source.get(name)
    sel.offline = source.offline_reason if fetch else None
    if architecture:
        if all(i is None for i in sel.infos.values()):
            raise ClasswiseError("--architecture filters on the leaderboard's model_info, which is not available "
                                 f"({source.offline_reason or 'no file found'}); give --leaderboard DIR, a copy of "
                                 "RobustBench's model_info/")
        want = architecture.strip().lower()
        chosen = [n for n in chosen if sel.infos[n] is not None and (sel.infos[n].architecture or "").lower() == want]
        if not chosen:
            seen = sorted({i.architecture for i in sel.infos.values() if i is not None and i.architecture})
            raise ClasswiseError(f"no {settings.dataset} {settings.threat} model has architecture '{architecture}'; "
                                 f"the leaderboard has: {', '.join(seen)}")
        sel.infos = {n: sel.infos[n] for n in chosen}
    for name in chosen:
        if name in package:
            sel.runs[name] = zoo_run_id(name, settings)
        else:
            sel.unavailable[name] = (f"not in the installed robustbench package's zoo (only its published numbers are "
                                     f"known); a newer robustbench may have it, in <model_dir>/{settings.dataset}/"
                                     f"{THREATS[settings.threat]}/{name}.pt")
    return sel


def run_config(name: str, settings: ZooSettings, info: ModelInfo | None, threads: int) -> dict:
    """The registered config of one model's run: its identity, then what the leaderboard says of
    it (the factors of the agreement analysis: architecture, extra data, year), then the thread
    count every attempt uses (results depend on it, as in `classwise sweep`)."""
    return {"robustbench": name, **settings.identity(), "eps": settings.radius,
            "arch": info.architecture if info else None, "additional_data": info.additional_data if info else None,
            "year": info.year if info else None, "venue": info.venue if info else None, "threads": threads}


def register(sel: Selection, settings: ZooSettings, study_dir):
    """The store, with every selected model's run registered (finished runs are left as they are)."""
    import torch

    from ..study.store import Store

    check_out_dir(study_dir)
    threads = torch.get_num_threads()
    store = Store(Path(study_dir) / DB)
    store.register({rid: run_config(name, settings, sel.infos.get(name), threads) for name, rid in sel.runs.items()})
    return store


def execute(sel: Selection, study_dir, store, job: ZooJob, *, executor: str = "local", jobs: int = 1,
            device: str = "auto", slurm=None) -> dict[str, str]:
    """Evaluate the selected models that are not finished; {run id: why it failed}."""
    from ..study.sweep import SlurmOptions, _sweep_pool, _sweep_slurm

    status = store.status()
    todo = [rid for rid in sel.runs.values() if status.get(rid) != "finished"]
    console.print(f"zoo: {len(sel.runs)} models, {len(sel.runs) - len(todo)} finished, {len(todo)} to evaluate "
                  f"({Path(study_dir) / DB})" + (f"; {len(sel.unavailable)} cannot be loaded" if sel.unavailable
                                                 else ""))
    if not todo:
        return {}
    if executor == "slurm":
        return _sweep_slurm(Path(study_dir), todo, device, slurm or SlurmOptions(), task=job)
    if executor != "local":
        raise ClasswiseError(f"unknown executor '{executor}'; use local or slurm")
    if jobs > 1:
        return _sweep_pool(Path(study_dir), todo, device, jobs, task=job)
    failures = {}
    for rid in todo:
        try:
            job(str(study_dir), rid, device)
        except Exception as exc:  # noqa: BLE001 - recorded in the store; the zoo goes on with the others
            failures[rid] = str(exc)
    return failures


def failed_models(sel: Selection, store, executed: dict[str, str] | None = None) -> dict[str, str]:
    """Every selected model that could not be evaluated, with its one line: the store's record, or
    the executor's for a job that ended without finishing its run (a Slurm task whose Python
    raised before the store heard of it still ends COMPLETED)."""
    runs = store.runs_table().set_index("id")
    out = dict(sel.unavailable)
    for name, rid in sel.runs.items():
        status = runs.loc[rid, "status"] if rid in runs.index else "unknown"
        if status == "failed":
            out[name] = str(runs.loc[rid, "error"] or "failed")
        elif executed is not None and rid in executed and status != "finished":
            out[name] = executed[rid] or f"its job ended with the run {status}"
    return out
