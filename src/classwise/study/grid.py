"""Study configs as TOML: a base run plus `[grid]` axes over any run field. Every run gets a
deterministic id from its resolved config, so a sweep knows what it has already done."""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path
from typing import Any

import tomllib
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..config import TrainConfig
from ..errors import ClasswiseError


class RunConfig(TrainConfig):
    """One run of a grid: training plus the final per-class evaluation on the test set."""

    test_steps: int = Field(default=20, ge=1, description="PGD steps of the final evaluation")
    test_restarts: int = Field(default=1, ge=1)
    test_limit: int | None = Field(default=None, ge=10, description="stratified test subset")
    # AutoAttack per class in the final evaluation, next to PGD: true (the standard version), a
    # version name (standard, plus, rand), or a table of AutoAttackSpec fields for a custom or
    # reduced budget, e.g. {version = "custom", attacks = ["apgd-ce", "apgd-t"], iterations = 20}
    test_autoattack: bool | str | dict[str, Any] = Field(default=False, description="AutoAttack in the final "
                                                         "evaluation: true, a version, or AutoAttackSpec fields")

    @field_validator("test_autoattack")
    @classmethod
    def _autoattack(cls, value):
        autoattack_spec(value, eps=0.0, norm="linf")  # refuse a bad version or field before any run starts
        return value

    def test_autoattack_spec(self):
        """The final evaluation's AutoAttack (at the run's eps and norm), or None."""
        return autoattack_spec(self.test_autoattack, eps=self.eps, norm=self.norm)


def autoattack_spec(value, *, eps, norm):
    from ..attacks.autoattack import AutoAttackSpec  # imports torch: only when a run asks for it

    if value is False:
        return None
    fields = {} if value is True else {"version": value} if isinstance(value, str) else dict(value)
    for key in ("eps", "norm"):
        if key in fields:
            raise ValueError(f"test_autoattack takes the run's {key}; drop '{key}' from it")
    return AutoAttackSpec(eps=eps, norm=norm, **fields)


class GridConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    run: RunConfig = Field(default_factory=RunConfig)
    grid: dict[str, list] = Field(default_factory=dict)

    def runs(self) -> list[RunConfig]:
        """The grid's runs in a fixed order (axes in file order, values in list order). An axis
        named `a+b` varies fields a and b together: its values are [a, b] pairs."""
        base = self.run.model_dump(exclude_unset=True)
        out = []
        for values in itertools.product(*self.grid.values()):
            fields = dict(base)
            for axis, value in zip(self.grid, values, strict=True):
                names = axis.split("+")
                fields.update(zip(names, value if len(names) > 1 else [value], strict=True))
            out.append(RunConfig(**fields))
        return out


def run_id(cfg: RunConfig) -> str:
    """12 hex digits of the SHA-1 of the config's canonical JSON."""
    # a field added later stays out of the id while unset, so the runs of older study.db files keep theirs
    unset = {"test_autoattack"} if cfg.test_autoattack is False else set()
    blob = json.dumps(cfg.model_dump(exclude=unset), sort_keys=True, separators=(",", ":"))
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def _explain(exc: ValidationError, where: str) -> str:
    parts = []
    for e in exc.errors():
        loc = ".".join(str(p) for p in e["loc"])
        parts.append(f"unknown key '{loc}'" if e["type"] == "extra_forbidden" else f"{loc}: {e['msg']}")
    return f"{where}: " + "; ".join(parts)


PRESET_DIR = Path(__file__).resolve().parent.parent / "presets"


def load_grid(path) -> GridConfig:
    """A TOML file, or the name of a shipped preset (e.g. `datasets-quick`)."""
    path = Path(path)
    if not path.exists() and (PRESET_DIR / f"{path.name}.toml").is_file():
        path = PRESET_DIR / f"{path.name}.toml"
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ClasswiseError(f"study config {path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ClasswiseError(f"{path}: not valid TOML ({exc})") from exc
    raw.setdefault("name", path.stem)
    try:
        grid = GridConfig(**raw)
        for axis, values in grid.grid.items():
            names = axis.split("+")
            for field in names:
                if field not in RunConfig.model_fields:
                    raise ClasswiseError(f"{path}: unknown key '{field}' in grid axis '{axis}' (not a run field)")
            if not isinstance(values, list) or not values:
                raise ClasswiseError(f"{path}: grid.{axis} must be a non-empty list")
            if len(names) > 1 and not all(isinstance(v, list) and len(v) == len(names) for v in values):
                raise ClasswiseError(f"{path}: every value of grid.{axis} must be a list of {len(names)}")
        runs = grid.runs()
    except ValidationError as exc:
        raise ClasswiseError(_explain(exc, str(path))) from exc
    ids = [run_id(r) for r in runs]
    if len(set(ids)) != len(ids):
        raise ClasswiseError(f"{path}: the grid repeats a run (two axis values resolve to the same config)")
    return grid
