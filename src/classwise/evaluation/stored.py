"""`eval.json`, an evaluation's per-sample record, as one schema shared by the code that writes
it (`EvalResult.to_dict`) and the code that reads it back (`EvalResult.from_dict`, `load_eval`
in evaluate.py):
a file that does not match is refused on read with one line naming the file and what is wrong
(a `CorruptDataError`), never a traceback from deep inside an analysis."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..errors import CorruptDataError, validated

_SUM_SHAPES = {"logits": "CxC", "probs": "CxC", "loss": "C", "kl": "C", "features": "CxD"}


class EvalRecord(BaseModel):
    """Per-sample outcomes of one evaluation (see `EvalResult`): class names, every image's
    label and clean prediction, its prediction under each attack, the attacks' specs and notes,
    and the per-true-class sums of logits, softmax, loss and features. Labels and predictions
    are class indices (integers, not floats) below the number of classes, one per image."""

    model_config = ConfigDict(extra="ignore", strict=True)

    classes: list[str] = Field(min_length=1)
    labels: list[int]
    clean_pred: list[int]
    adv_pred: dict[str, list[int]] = Field(default_factory=dict)
    attacks: dict[str, dict[str, Any]] = Field(default_factory=dict)
    notes: dict[str, list[str]] = Field(default_factory=dict)
    class_sums: dict[str, dict[str, list]] = Field(default_factory=dict)

    def problems(self) -> str | None:
        """What the types alone do not say: lengths, class ranges, the sums' shapes."""
        c, n = len(self.classes), len(self.labels)
        rows = {"labels": self.labels, "clean_pred": self.clean_pred,
                **{f"adv_pred.{k}": v for k, v in self.adv_pred.items()}}
        for name, values in rows.items():
            if len(values) != n:
                return f"{name} holds {len(values)} entries for {n} labels (one per image)"
            if values:
                arr = np.asarray(values)
                bad = np.flatnonzero((arr < 0) | (arr >= c))
                if len(bad):
                    return (f"{name}[{bad[0]}] is {arr[bad[0]]}, not a class index (the {c} classes are 0..{c - 1}; "
                            f"{len(bad)} such entr{'y' if len(bad) == 1 else 'ies'})")
        for key, sums in self.class_sums.items():
            for what, values in sums.items():
                try:
                    arr = np.asarray(values, dtype=np.float64)
                except (ValueError, TypeError):
                    return f"class_sums.{key}.{what} is not a numeric array"
                want = _SUM_SHAPES.get(what)
                ok = (arr.ndim == 2 and arr.shape == (c, c)) if want == "CxC" else \
                     (arr.ndim == 1 and arr.shape == (c,)) if want == "C" else \
                     (arr.ndim == 2 and arr.shape[0] == c) if want == "CxD" else arr.ndim >= 1
                if not ok:
                    return f"class_sums.{key}.{what} has shape {arr.shape}, expected {want} with C = {c} classes"
        return None


def check_eval_record(d, where: str = "evaluation record") -> EvalRecord:
    """`d` (a parsed eval.json) as an `EvalRecord`, or a `CorruptDataError` saying what is wrong."""
    record = validated(EvalRecord, d, where, "an evaluation record")
    problem = record.problems()
    if problem:
        raise CorruptDataError(f"{where}: {problem}")
    return record
