"""A run directory is touched only once the new settings are known valid: `check_trainable`
refuses a run that would fail before its first epoch, `claim_out` refuses an output folder that
already holds a result (a finished study is the user's result: only `--resume` or
`--overwrite` may touch it), `prepare_run_dir` refuses a `--resume` with other settings (naming
the fields) and only then creates the folder, clears the temporary files of writes a kill
interrupted and records the config."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..errors import ClasswiseError
from ..io import atomic_write_json, check_out_dir, remove_stale_temps
from ..settings import config_differences

CONFIG = "config.json"


def check_trainable(cfg, splits=None) -> None:
    """Refuse, before anything is written, a run whose architecture, method or data cannot
    train: unknown names, an evaluation-only data set, images too small for the network."""
    from ..models import MODELS, check_arch

    check_arch(cfg.arch)
    if splits is None:
        return
    if splits.train is None:
        hint = (" (put train/ and val/ subfolders of class folders in it)" if cfg.dataset == "imagefolder"
                else " (it is evaluation-only: use `classwise evaluate`)")
        raise ClasswiseError(f"data set '{cfg.dataset}' has no training images{hint}")
    c, h, _ = splits.train.shape
    entry = MODELS.get(cfg.arch)
    if entry is not None and h < entry.min_size:
        raise ClasswiseError(f"{cfg.arch} needs inputs of at least {entry.min_size} px; {cfg.dataset} has {h} px "
                             "images: choose another --arch (see `classwise models`)")


def check_resume_config(out_dir, config: dict, resume: bool, may_change: frozenset = frozenset()) -> dict | None:
    """The config recorded in `out_dir` (None if none or unreadable without `resume`); with
    `resume` it must be readable and the same as `config` but for the fields in `may_change`.
    Reads only."""
    path = Path(out_dir) / CONFIG
    old = None
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            if resume:
                raise ClasswiseError(f"--resume: {path} is unreadable ({exc}); drop --resume to start over") from exc
    config = json.loads(json.dumps(config))  # as it will read back: tuples as lists, keys as strings
    if resume and isinstance(old, dict):
        diff = config_differences(old, config, may_change)
        if diff:
            raise ClasswiseError(f"--resume: {out_dir} was run with other settings: {'; '.join(diff)}; give the "
                                 "same settings to continue it, or drop --resume (or use a new --out) to start over")
    return old


def prepare_run_dir(out_dir, config: dict, resume: bool, may_change: frozenset = frozenset()) -> None:
    """Create `out_dir` for a run with `config` (JSON-able) and record it in config.json.
    With `resume`, the recorded settings must be the same, except the top-level fields in
    `may_change`. Raises before writing anything."""
    out_dir = Path(out_dir)
    check_out_dir(out_dir)
    old = check_resume_config(out_dir, config, resume, may_change)
    config = json.loads(json.dumps(config))
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out_dir)
    if old != config:
        atomic_write_json(out_dir / CONFIG, config)


# what each kind of output folder holds (the files `clear_outputs` removes for --overwrite)
STUDY_FILES = ("config.json", "results.json", "per_class.csv", "mcnemar.csv", "metrics.jsonl", "report.html",
               "study.db", "study.db-wal", "study.db-shm", "study.db-journal", "corruption_per_class.csv")
STUDY_DIRS = ("figures", "explain")
RUN_FILES = ("checkpoint.pt", "model.pt", "best_worst.pt", "eval.json", "eval_best_worst.json", "metrics.jsonl",
             "corruptions.json")
EVAL_FILES = ("eval.json", "results.json", "per_class.csv", "robustbench.json", "eps_curve.json", "eps_curve.csv",
              "corruption_per_class.csv")
KIND_NAMES = {"study": "a study", "sweep": "a sweep's study", "run": "a training run", "evaluation": "an evaluation",
              "features": "a constructed data set", "explain": "an explain analysis"}


def _json_object(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def folder_kind(path) -> tuple[str, bool] | None:
    """What an output folder holds: (kind, finished) with kind one of KIND_NAMES, or None for a
    folder that is missing, empty or holds none of our outputs."""
    path = Path(path)
    if not path.is_dir():
        return None
    has = lambda name: (path / name).exists()  # noqa: E731
    config = _json_object(path / CONFIG) if has(CONFIG) else None
    if has(CONFIG) and (config is None or "methods" in config or "run" in config):
        return "study", has("results.json")
    if has("study.db") and ((path / "runs").is_dir() or not has(CONFIG)):
        return "sweep", False  # a study writes its config.json before its study.db; a sweep has none
    if has("checkpoint.pt") or has("model.pt"):
        return "run", has("model.pt") and has("eval.json")
    if has("meta.json") and (path / "chunks").is_dir():
        return "features", bool((_json_object(path / "meta.json") or {}).get("complete"))
    if has("explain.json"):
        return "explain", True
    if has("eval.json") or (has("results.json") and has("per_class.csv")):
        return "evaluation", True
    if has("study.db"):
        return "study", False
    return None


def claim_out(path, kind: str, *, resume: bool = False, overwrite: bool = False, flag: str = "--out",
              continues: bool = False) -> tuple[str, bool] | None:
    """Refuse, before any work, an output folder holding a result this command would change:
    another kind of output always; one of its own kind unless `--resume` (or, for commands
    that continue by design, `continues`) or `--overwrite` says what to do with it. Returns what
    the folder holds."""
    found = folder_kind(path)
    if resume and overwrite:
        raise ClasswiseError("--resume continues what is there and --overwrite replaces it: give one of them")
    if found is None:
        return None
    held, finished = found
    state = "a finished" if finished else "an unfinished"
    what = f"{state} {KIND_NAMES[held].split(' ', 1)[1]}"
    if held != kind:
        raise ClasswiseError(f"{flag} {path} holds {KIND_NAMES[held]}, not {KIND_NAMES[kind]}; give another {flag} "
                             f"(nothing was changed)")
    if resume or overwrite or continues:
        return found
    todo = "" if kind == "evaluation" else "--resume to re-report it, " if finished else "--resume to continue it, "
    raise ClasswiseError(f"{flag} {path} already holds {what}; rerun with {todo}--overwrite to replace it, or "
                         f"give another {flag} (nothing was changed)")


def clear_outputs(path, kind: str) -> None:
    """--overwrite: remove what a `kind` folder holds of ours (its files, and for a study its arm
    folders as its config.json names them); anything else in the folder is left alone."""
    path = Path(path)
    if kind == "study":
        config = _json_object(path / CONFIG) or {}
        arms = [a for a in config.get("methods", [])
                if isinstance(a, str) and a not in ("", ".", "..") and "/" not in a]
        for d in (*STUDY_DIRS, *arms):
            if (path / d).is_dir() and not (path / d).is_symlink():
                shutil.rmtree(path / d)
        names = STUDY_FILES
    else:
        names = {"run": RUN_FILES, "evaluation": EVAL_FILES}.get(kind, ())
    for name in names:
        (path / name).unlink(missing_ok=True)
    if kind == "evaluation":
        for fig in (path / "figures").glob("corruption_*.png") if (path / "figures").is_dir() else ():
            fig.unlink()
