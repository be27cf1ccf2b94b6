"""The stored runs `classwise explain` reads, wherever they live: a sweep's study folder
(study.db, runs/<id>/eval.json), an evaluate --out or train folder (eval.json), or a study's run
folder (arm subfolders, possibly seed folders below them). Each run's evaluation is checked
when read, and its configuration comes from its weights file's record, else the nearest
config.json."""

from __future__ import annotations

from pathlib import Path

from ..analysis.explain import Run, factor_levels
from ..errors import ClasswiseError
from ..evaluation import EvalResult

EVAL = "eval.json"


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
    from ..evaluation import load_eval

    return load_eval(path, "; evaluate that run again, or leave its folder out")


def find_runs(path) -> list[Run]:
    """The evaluations under `path`: a sweep's study folder (study.db, runs/<id>/eval.json),
    an evaluate --out or train folder (eval.json), or a study run folder (arm subfolders,
    possibly one level of seed folders below them, each with its eval.json)."""
    path = Path(path)
    if not path.exists():
        raise ClasswiseError(f"{path} does not exist")
    if (path / "study.db").is_file() and (path / "runs").is_dir():  # a sweep (a study keeps arm folders)
        from .store import Store

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
