"""One check of the whole request before any folder is created or any file is touched, called
by every verb: seeds, devices, output folders, the data subsets each run takes, every method's
parameters (finite numbers; class names and indices, refused by constructing the objective;
settings that would make a method a no-op within the run, from `Objective.preflight()`), the
corruptions' files and frost photographs, AutoAttack being installed, the weights a run starts
from. A problem is one `ClasswiseError` line, found before the work it would have spoiled.

Settings that are valid one by one but make a method do nothing in this run (DAFA's warm-up at
or past the last epoch, CFA's calibration beginning after it) are errors unless `force` (the
CLI's `--force`), which turns them into warnings."""

from __future__ import annotations

import math
from pathlib import Path

from ..errors import ClasswiseError

SEED_MAX = 2**32 - 1


def check_seed(value, flag: str = "--seed") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= SEED_MAX:
        raise ClasswiseError(f"{flag} {value}: a seed is a whole number from 0 to {SEED_MAX} (2^32 - 1)")
    return value


def check_device(device: str):
    from ..device import resolve_device

    return resolve_device(device)


def method_flag(method: str, field: str) -> str:
    """The command-line flag of a method parameter (see cli/objective_options.py)."""
    stem = method.replace("-", "_")
    name = field if field.startswith(stem) else f"{stem}_{field}"
    return "--" + name.replace("_", "-")


def _non_finite(value) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, list | tuple):
        return any(_non_finite(v) for v in value)
    if isinstance(value, dict):
        return any(_non_finite(v) for v in value.values())
    return False


def check_method_params(method: str, params: dict) -> None:
    """Numbers in a method's parameters must be finite: an infinite weight trains, then blows up."""
    for field, value in (params or {}).items():
        if _non_finite(value):
            raise ClasswiseError(f"{method_flag(method, field)} {value}: method '{method}' needs a finite number for "
                                 f"its {field}")


def objective_problems(cfg, train) -> list[str]:
    """Construct the run's objective on its training data (which refuses unknown class names or
    indices, weights of the wrong length, ...) and ask it which settings would make it a no-op."""
    from ..training.trainer import objective_for

    objective = objective_for(cfg, train)
    check = getattr(objective, "preflight", None)
    return list(check()) if check is not None else []


def check_frost_dir(frost_dir, shape=None, flag: str = "--frost-dir") -> None:
    """An explicitly named frost folder must hold the five photographs as images (large enough
    for images of `shape`); only the default search may skip frost with a note."""
    if not frost_dir:
        return
    from ..corruptions.weather import FROST_FILES, frost_textures

    path = Path(frost_dir).expanduser()
    need = f"the five frost photographs ({', '.join(FROST_FILES)})"
    if not path.exists():
        raise ClasswiseError(f"{flag} {path} does not exist; give the folder of {need}, or leave {flag} out to skip "
                             "frost")
    if not path.is_dir():
        raise ClasswiseError(f"{flag} {path} is a file, not a folder; give the folder of {need}")
    try:
        textures = frost_textures(path)
    except ClasswiseError as exc:
        raise ClasswiseError(f"{flag} {path}: {str(exc).removeprefix('frost is unavailable: ')}") from exc
    except Exception as exc:  # noqa: BLE001 - PIL raises many kinds for a file that is no image
        raise ClasswiseError(f"{flag} {path}: its photographs cannot be read as images "
                             f"({type(exc).__name__}: {exc}); it needs {need}") from exc
    if shape is not None:
        _, h, w = shape
        small = [f for f, t in zip(FROST_FILES, textures, strict=True) if t.shape[-2] < h or t.shape[-1] < w]
        if small:
            raise ClasswiseError(f"{flag} {path}: {', '.join(small)} smaller (after the 0.2 scaling) than the "
                                 f"{h}x{w} images")


def check_corruptions(names, frost_dir, *, dataset: str, data_dir, test, full_test: bool) -> None:
    """The corruptions a run or an evaluation asks for: the frost folder it names, and the
    published files it would read (each requested file's header, dtype, size and test set)."""
    if not names:
        return
    check_frost_dir(frost_dir, tuple(test.shape))
    if not full_test:
        return
    from ..data.corrupted import CorruptedFiles, find_corrupted

    files = find_corrupted(dataset, data_dir)
    if files is not None:
        held = CorruptedFiles(files)
        wanted = [n for n in names if n in set(held.names())]
        if wanted:
            held.check(test.labels.numpy(), tuple(test.shape), wanted)


def _subsets(cfg, splits) -> tuple:
    """The training data and the validation and test subsets the run takes (what `train` and
    the final evaluation will compute), so that a split that cannot be made fails now."""
    from ..data import stratified_subset

    train = splits.train
    if cfg.train_limit:
        train = stratified_subset(train, cfg.train_limit, seed=cfg.seed)
    if len(train) < 2:
        raise ClasswiseError(f"{cfg.dataset}: {len(train)} training image(s); training needs at least 2")
    if splits.val is None or len(splits.val) == 0:
        raise ClasswiseError(f"{cfg.dataset}: no validation images to check each epoch on")
    stratified_subset(splits.val, cfg.eval_subset, seed=cfg.seed)
    test_limit = getattr(cfg, "test_limit", None)
    if len(splits.test) == 0:
        raise ClasswiseError(f"{cfg.dataset}: the test set is empty")
    if test_limit:
        stratified_subset(splits.test, test_limit, seed=cfg.seed)
    return train


def preflight_run(cfg, splits, *, data_dir=None, init_weights: bool = True, what: str = "") -> list[str]:
    """Every check of one resolved run config on its data; returns the no-op problems (the
    caller decides whether they are errors)."""
    from .outdir import check_trainable

    check_seed(cfg.seed, "seed")
    check_trainable(cfg, splits)
    check_method_params(cfg.method, cfg.method_params)
    train = _subsets(cfg, splits)
    try:
        problems = [f"{what}{p}" for p in objective_problems(cfg, train)]
    except ClasswiseError as exc:  # e.g. a class name the data set does not have: say whose parameter it is
        text = str(exc)
        raise ClasswiseError(text if text.startswith(cfg.method) else f"method '{cfg.method}': {text}") from exc
    if init_weights and cfg.init_weights:
        from ..models import read_weights_file

        read_weights_file(cfg.init_weights)
    if getattr(cfg, "test_autoattack", False) is not False:
        from ..attacks.autoattack import require_autoattack

        require_autoattack()
    check_corruptions(getattr(cfg, "corruptions", None), getattr(cfg, "frost_dir", None), dataset=cfg.dataset,
                      data_dir=data_dir, test=splits.test, full_test=not getattr(cfg, "test_limit", None))
    return problems


def decide(problems: list[str], force: bool) -> list[str]:
    """No-op settings: an error naming them all (and `--force`), or with `force` the warnings."""
    if problems and not force:
        raise ClasswiseError("; ".join(problems) + " (pass --force to run anyway)")
    return [f"warning: {p} (run anyway: --force)" for p in problems]


def warn(lines: list[str]) -> None:
    from ..progress import console

    for line in lines:
        console.print(f"[yellow]{line}[/yellow]", highlight=False)
