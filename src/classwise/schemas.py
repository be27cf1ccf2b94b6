"""The stored formats, each as one schema shared by the code that writes it and the code that
reads it back: a file that does not match is refused on read with one line naming the file and
what is wrong (a `CorruptDataError`), never a traceback from deep inside an analysis.

- `eval.json` (`EvalRecord`): `EvalResult.to_dict` writes it, `EvalResult.from_dict` checks
  every record against it (`check_eval_record`); `load_eval(path)` reads a file.
- a constructed data set's `meta.json` (`FeaturesMeta`) and its `chunks/NNNNN.pt`
  (`check_chunk`), written by `classwise features build` (analysis/features.py,
  data/constructed.py).
- the published corrupted test sets' `.npy` files are checked where they are read
  (data/corrupted.py: header, dtype and size before they are memory-mapped)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import ClasswiseError, CorruptDataError


def _first_error(exc: ValidationError) -> str:
    """pydantic's first error as `where: what (got ...)`, short: a stored file's fields can be
    long lists, and one clear fault is what the user needs."""
    e = exc.errors()[0]
    loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e["loc"]).lstrip(".") or "the record"
    given = e.get("input")
    shown = "" if isinstance(given, dict | list) else f" (got {given!r:.40})"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{loc}: {e['msg']}{shown}{more}"


# ---------------------------------------------------------------------------- eval.json

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
    if not isinstance(d, dict):
        raise CorruptDataError(f"{where}: expected a JSON object of per-sample results, got a {type(d).__name__}")
    try:
        record = EvalRecord.model_validate(d)
    except ValidationError as exc:
        raise CorruptDataError(f"{where}: {_first_error(exc)}") from None
    problem = record.problems()
    if problem:
        raise CorruptDataError(f"{where}: {problem}")
    return record


def read_json(path, what: str = "file", hint: str = ""):
    """A JSON file's value, or one line saying why it cannot be read."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ClasswiseError(f"{path} does not exist{hint}") from exc
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).split("\n")[0]
        raise CorruptDataError(f"{path} is not a readable {what} ({why}){hint}") from None


def load_eval(path, hint: str = ""):
    """The `EvalResult` stored in an eval.json, checked (`hint`: what to do about a bad one)."""
    from .evaluate import EvalResult

    d = read_json(path, "evaluation record (eval.json)", hint)
    try:
        check_eval_record(d, str(path))
    except CorruptDataError as exc:
        raise CorruptDataError(f"{exc}{hint}") from None
    return EvalResult.from_dict(d)


# ------------------------------------------------------------------ constructed data sets

class FeatureSource(BaseModel):
    model_config = ConfigDict(extra="allow")
    dataset: str
    checkpoint: str | None = None
    data_dir: str | None = None


class FeaturesMeta(BaseModel):
    """`meta.json` of a constructed data set (see analysis/features.py)."""

    model_config = ConfigDict(extra="allow")

    kind: str
    source: FeatureSource
    params: dict[str, Any]
    seed: int
    n: int = Field(ge=1)
    chunk: int = Field(ge=1)
    n_chunks: int = Field(ge=1)
    classes: list[str] = Field(min_length=1)
    shape: list[int] = Field(min_length=3, max_length=3)
    complete: bool = False


def check_features_meta(d, where) -> dict:
    from .analysis.features import KINDS

    if not isinstance(d, dict):
        raise CorruptDataError(f"{where}: expected a JSON object, got a {type(d).__name__}")
    try:
        meta = FeaturesMeta.model_validate(d)
    except ValidationError as exc:
        raise CorruptDataError(f"{where}: {_first_error(exc)}; not a constructed data set's meta.json") from None
    if meta.kind not in KINDS:
        raise CorruptDataError(f"{where}: kind '{meta.kind}' is none of {', '.join(KINDS)}")
    if meta.n_chunks != -(-meta.n // meta.chunk):
        raise CorruptDataError(f"{where}: {meta.n_chunks} chunks do not hold {meta.n} images of {meta.chunk}")
    return d


def check_chunk(obj, path, meta: dict, i: int) -> dict:
    """A loaded chunk: float32 images in [0, 1] of the data set's shape, one int64 label (a
    class index) and one source index per image, as many images as chunk `i` holds."""
    import torch

    n = min(meta["chunk"], meta["n"] - i * meta["chunk"])
    shape = tuple(meta["shape"])

    def bad(what):
        return CorruptDataError(f"{path}: {what}; delete it and rerun `classwise features build` with the same "
                                "--out to make it again")

    if not isinstance(obj, dict) or not all(torch.is_tensor(obj.get(k)) for k in ("images", "labels", "index")):
        raise bad("not a chunk of a constructed data set (expected tensors images, labels, index)")
    images, labels, index = obj["images"], obj["labels"], obj["index"]
    if images.dtype != torch.float32 or tuple(images.shape) != (n, *shape):
        raise bad(f"images are {images.dtype} {tuple(images.shape)}, expected float32 {(n, *shape)}")
    if images.numel() and not (float(images.min()) >= 0 and float(images.max()) <= 1):
        raise bad("images outside [0, 1] (or NaN)")
    for name, t in (("labels", labels), ("index", index)):
        if t.dtype != torch.int64 or tuple(t.shape) != (n,):
            raise bad(f"{name} are {t.dtype} {tuple(t.shape)}, expected int64 ({n},)")
    c = len(meta["classes"])
    if n and (int(labels.min()) < 0 or int(labels.max()) >= c):
        raise bad(f"labels outside the {c} classes")
    key = "relative_distance" if meta["kind"] in ("robust", "non-robust") else "reached_target"
    if not torch.is_tensor(obj.get(key)) or tuple(obj[key].shape) != (n,):
        raise bad(f"no per-image {key} ({n},)")
    return obj
