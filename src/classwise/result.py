"""The one typed per-class result of a study: what `results.json` holds (this module is its
documented, versioned schema, shared by the writer and every reader), what the report writes
its sentences, tables and figures from, and what the Python API hands back.

Its per-class rows follow fairlearn's `MetricFrame` disaggregated by class: one row per arm,
seed, checkpoint, metric and class with n, correct, accuracy and its Wilson interval
(`PerClassResult`, the `per_class.csv` of a study), with `by_class` (MetricFrame's `by_group`),
`worst` (`group_min`) and `gap` (`difference`). Every summary of an arm comes with its bootstrap
interval, and every comparison of two arms with the interval of the difference
(study/compare.py computes them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict

from .errors import ClasswiseError, validated

FORMAT = "classwise.study"
VERSION = 2
ROW_COLUMNS = ["model", "method", "seed", "checkpoint", "metric", "attack", "class", "n", "correct", "accuracy",
               "ci_low", "ci_high"]
Pair = tuple[float, float]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Summary(_Model):
    """One arm's accuracy for one metric (clean, or under the study's attack): overall, per class,
    and across classes (mean over classes, population std, max-min gap, worst and best class),
    each with its bootstrap interval when the study computed one."""

    overall: float | None = None
    mean: float
    std: float
    gap: float
    worst: float
    worst_class: str | None = None
    worst_tied: list[str] | None = None
    best: float | None = None
    best_class: str | None = None
    per_class: dict[str, float]
    mean_ci: Pair | None = None
    worst_ci: Pair | None = None
    std_ci: Pair | None = None
    gap_ci: Pair | None = None
    per_class_std: dict[str, float] | None = None
    per_class_ci: dict[str, Pair] | None = None
    weakest_probability: dict[str, float] | None = None

    def interval(self, stat: str) -> Pair | None:
        return getattr(self, f"{stat}_ci")


class Change(_Model):
    """A statistic of arm b against arm a: both values, b - a and its interval."""

    a: float
    b: float
    difference: float
    low: float
    high: float


class Comparison(Change):
    arm_a: str
    arm_b: str
    metric: Literal["clean", "robust"]
    stat: str
    verdict: str


class Checkpoint(_Model):
    """One seed's best worst-class checkpoint (the epoch whose worst class did best on validation)."""

    epoch: int | None
    differs: bool
    clean: Summary
    robust: Summary


class SeedRun(_Model):
    """One arm at one seed: where it lives, how it trained, its summaries and sanity checks."""

    dir: str
    epochs_run: int
    stopped: str | None
    train_seconds: float
    eval_seconds: float
    clean: Summary
    robust: Summary
    sanity: list[dict] | None = None
    best_worst: Checkpoint | None = None


class BestWorst(_Model):
    """An arm's best worst-class checkpoints over its seeds, against its last ones."""

    clean: Summary
    robust: Summary
    difference: dict[str, dict[str, Change]]
    differs: bool
    epochs: dict[str, int | None]


class Arm(_Model):
    method: str
    runs: dict[str, SeedRun]
    epochs_run: int
    stopped: str | None
    clean: Summary
    robust: Summary
    best_worst: BestWorst | None = None

    def summary(self, metric: str) -> Summary:
        return self.clean if metric == "clean" else self.robust


class StudyResult(_Model):
    """What a study found, as `results.json` stores it (format `classwise.study`, version 2)."""

    format: Literal["classwise.study"] = FORMAT
    version: Literal[2] = VERSION
    dataset: str
    arch: str
    eps: float
    norm: str
    preset: str
    classes: list[str]
    arms: list[str]
    seeds: list[int]
    reference: str | None
    init_from: dict[str, str]
    resamples: int
    confidence: float
    attack: str
    attack_spec: dict
    n_test: int
    models: dict[str, Arm]
    against_reference: dict[str, dict[str, Change]]
    comparisons: list[Comparison]
    mcnemar: list[dict]
    corruptions: dict | None = None
    statistics_seconds: float
    seconds: float
    answers: list[str]
    explain: list[str]

    def comparison(self, a: str, b: str, metric: str, stat: str) -> Comparison | None:
        return next((c for c in self.comparisons if (c.arm_a, c.arm_b, c.metric, c.stat) == (a, b, metric, stat)),
                    None)

    def save(self, path: Path) -> None:
        """results.json: the fields the study set (a summary without an interval has no `_ci` key)."""
        from .io import atomic_write_text

        atomic_write_text(Path(path), self.model_dump_json(indent=1, exclude_unset=True))


def load_study_result(path) -> StudyResult:
    """A study's results.json, checked against its schema; one line naming the file when it is
    not one (an older classwise's has no format version: `--resume` rewrites it)."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    try:
        raw = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ClasswiseError(f"{path}: not a readable results.json ({exc})") from exc
    if isinstance(raw, dict) and "format" not in raw and "models" in raw:
        raise ClasswiseError(f"{path} was written by an older classwise (no format version); rerun the study's command "
                             f"with --resume to rewrite it from the stored evaluations (nothing is trained again)")
    return validated(StudyResult, raw, str(path), "a classwise study result")


class PerClassResult:
    """Per-class accuracy rows (the columns of `ROW_COLUMNS`), disaggregated by class as
    fairlearn's MetricFrame is by group. `model` is the arm, `metric` clean or robust, `attack`
    the key of the evaluation the row comes from ("none" for clean)."""

    def __init__(self, rows: pd.DataFrame):
        missing = [c for c in ROW_COLUMNS if c not in rows.columns]
        if missing:
            raise ClasswiseError(f"per-class rows lack the column(s) {', '.join(missing)}")
        self.rows = rows[ROW_COLUMNS].reset_index(drop=True)

    @classmethod
    def from_evaluation(cls, res, arm: str, seed: int, checkpoint: str, keys: dict[str, str]) -> PerClassResult:
        """Rows of one `EvalResult`; `keys` maps a metric to the result key it reads (clean: "clean")."""
        frames = []
        for metric, key in keys.items():
            t = res.per_class(key)
            frames.append(t.assign(model=arm, method=arm, seed=seed, checkpoint=checkpoint, metric=metric,
                                   attack="none" if key == "clean" else key))
        return cls(pd.concat(frames, ignore_index=True))

    @classmethod
    def concat(cls, parts: list[PerClassResult]) -> PerClassResult:
        return cls(pd.concat([p.rows for p in parts], ignore_index=True))

    def select(self, *, metric: str | None = None, checkpoint: str | None = None, arm: str | None = None,
               seed: int | None = None) -> pd.DataFrame:
        r = self.rows
        for column, value in (("metric", metric), ("checkpoint", checkpoint), ("model", arm), ("seed", seed)):
            if value is not None:
                r = r[r[column] == value]
        return r

    def by_class(self, arm: str, metric: str, checkpoint: str = "last") -> pd.Series:
        """Accuracy per class (the mean over the seeds), in class order."""
        sel = self.select(metric=metric, checkpoint=checkpoint, arm=arm)
        return sel.groupby("class", sort=False)["accuracy"].mean()

    def worst(self, arm: str, metric: str, checkpoint: str = "last") -> tuple[str, float]:
        acc = self.by_class(arm, metric, checkpoint)
        return str(acc.idxmin()), float(acc.min())

    def gap(self, arm: str, metric: str, checkpoint: str = "last") -> float:
        acc = self.by_class(arm, metric, checkpoint)
        return float(acc.max() - acc.min())

    def wide(self, checkpoint: str = "last") -> pd.DataFrame:
        """class x "arm metric": accuracy, the mean over the seeds."""
        sel = self.select(checkpoint=checkpoint)
        wide = sel.pivot_table(index="class", columns=["model", "metric"], values="accuracy", sort=False)
        wide.columns = [f"{m} {k}" for m, k in wide.columns]
        return wide.reset_index()

    def to_csv(self) -> str:
        return self.rows.to_csv(index=False)
