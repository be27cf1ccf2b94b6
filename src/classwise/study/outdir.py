"""A run directory is touched only once the new settings are known valid: `check_trainable`
refuses a run that would fail before its first epoch, `prepare_run_dir` refuses a `--resume`
with other settings (naming the fields) and only then creates the folder, clears the temporary
files of writes a kill interrupted and records the config."""

from __future__ import annotations

import json
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


def prepare_run_dir(out_dir, config: dict, resume: bool, may_change: frozenset = frozenset()) -> None:
    """Create `out_dir` for a run with `config` (JSON-able) and record it in config.json.
    With `resume`, the recorded settings must be the same, except the top-level fields in
    `may_change`. Raises before writing anything."""
    out_dir = Path(out_dir)
    check_out_dir(out_dir)
    path = out_dir / CONFIG
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
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out_dir)
    if old != config:
        atomic_write_json(path, config)
