"""Study configs as TOML: a base run plus `[grid]` axes over any run field. Every run gets a
deterministic id from its resolved config, so a sweep knows what it has already done."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from pathlib import Path

import tomllib
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..config.run import RunConfig
from ..errors import ClasswiseError, InvalidSettingsError, settings_message


class GridConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""

    @field_validator("name")
    @classmethod
    def _folder_name(cls, name: str) -> str:
        # the study folder is runs/<name>: a name must not lead anywhere else
        if not _SAFE_NAME.fullmatch(name):
            raise ValueError(f"'{name}' is not a plain folder name; use letters, digits, '.', '_' and '-' "
                             "(no '/', no leading '.'), e.g. 'digits-grid'")
        return name
    run: RunConfig = Field(default_factory=RunConfig)
    grid: dict[str, list] = Field(default_factory=dict)

    def runs(self) -> list[RunConfig]:
        """The grid's runs in a fixed order (axes in file order, values in list order). An axis
        named `a+b` varies fields a and b together: its values are [a, b] pairs; the axis `rows`
        takes tables of run fields, each a run's own settings (e.g. one paper's protocol)."""
        base = self.run.model_dump(exclude_unset=True)
        out = []
        for values in itertools.product(*self.grid.values()):
            fields = dict(base)
            for axis, value in zip(self.grid, values, strict=True):
                if axis == ROWS:
                    fields.update(value)
                    continue
                names = axis.split("+")
                fields.update(zip(names, value if len(names) > 1 else [value], strict=True))
            out.append(RunConfig(**fields))
        return out


ROWS = "rows"  # the grid axis whose values are whole tables of run fields
_SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
# how a run is computed, not what it computes: not part of its id
_NOT_IDENTITY = {"threads"}


def run_id(cfg: RunConfig) -> str:
    """12 hex digits of the SHA-1 of the config's canonical JSON."""
    # a field added later stays out of the id while unset, so the runs of older study.db files keep theirs
    unset = {"test_autoattack"} if cfg.test_autoattack is False else set()
    blob = json.dumps(cfg.model_dump(exclude=_NOT_IDENTITY | unset), sort_keys=True, separators=(",", ":"))
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def _explain(exc: ValidationError, where: str) -> str:
    return settings_message(exc, where)


PRESET_DIR = Path(__file__).resolve().parent.parent / "presets"


def check_run(cfg: RunConfig) -> None:
    """Names that only fail when a run starts: data set and architecture (the method and its
    parameters are checked by the config itself)."""
    from ..data import get_spec
    from ..models import check_arch

    get_spec(cfg.dataset)
    check_arch(cfg.arch)


def _axes(grid: GridConfig, run: RunConfig) -> str:
    names = [n for axis in grid.grid for n in (axis.split("+") if axis != ROWS else ["method", "arch"])]
    return ", ".join(f"{n}={getattr(run, n)!r}" for n in names) or "the base run"


def load_grid(path) -> GridConfig:
    """A TOML file, or the name of a shipped preset (e.g. `datasets-quick`)."""
    path = Path(path)
    if not path.exists() and (PRESET_DIR / f"{path.name}.toml").is_file():
        path = PRESET_DIR / f"{path.name}.toml"
    if path.is_dir():
        raise ClasswiseError(f"study config {path} is a folder; give its TOML file (e.g. {path}/study.toml)")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        shipped = ", ".join(sorted(p.stem for p in PRESET_DIR.glob("*.toml")))
        raise ClasswiseError(f"study config {path} does not exist; give a TOML file or a shipped grid ({shipped})") \
            from exc
    except UnicodeDecodeError as exc:
        raise ClasswiseError(f"{path}: not UTF-8 text (byte {exc.start}); TOML files must be UTF-8") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ClasswiseError(f"{path}: not valid TOML ({exc})") from exc
    except OSError as exc:
        raise ClasswiseError(f"study config {path} cannot be read: {exc.strerror or exc}") from exc
    raw.setdefault("name", path.stem)
    try:
        grid = GridConfig(**raw)
        for axis, values in grid.grid.items():
            names = axis.split("+") if axis != ROWS else sorted({k for v in values if isinstance(v, dict) for k in v})
            if axis == ROWS and not all(isinstance(v, dict) for v in values):
                raise ClasswiseError(f"{path}: every value of grid.{ROWS} must be a table of run fields")
            for field in names:
                if field not in RunConfig.model_fields:
                    raise ClasswiseError(f"{path}: unknown key '{field}' in grid axis '{axis}' (not a run field)")
            if not isinstance(values, list) or not values:
                raise ClasswiseError(f"{path}: grid.{axis} must be a non-empty list")
            if axis != ROWS and len(names) > 1 and not all(isinstance(v, list) and len(v) == len(names)
                                                           for v in values):
                raise ClasswiseError(f"{path}: every value of grid.{axis} must be a list of {len(names)}")
        runs = grid.runs()
    except (ValidationError, InvalidSettingsError) as exc:
        raise ClasswiseError(_explain(exc, str(path))) from exc
    except ClasswiseError as exc:  # e.g. the method registry's own refusal: say which file
        if str(exc).startswith(str(path)):
            raise
        raise ClasswiseError(f"{path}: {exc}") from exc
    for i, run in enumerate(runs):
        try:  # every run of the grid, before the first one starts (and before study.db exists)
            check_run(run)
        except ClasswiseError as exc:
            raise ClasswiseError(f"{path}: run {i + 1} of {len(runs)} ({_axes(grid, run)}): {exc}") from exc
    ids = [run_id(r) for r in runs]
    if len(set(ids)) != len(ids):
        raise ClasswiseError(f"{path}: the grid repeats a run (two axis values resolve to the same config)")
    return grid
