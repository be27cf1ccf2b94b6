"""`EvalResult`: an evaluation's per-sample outcomes, from which every per-class view is
computed, and `load_eval` to read one back from its eval.json."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import CorruptDataError
from ..io import read_json
from ..metrics import confusion_matrix, disparity, per_class_table
from .stored import check_eval_record


@dataclass
class EvalResult:
    """Per-sample outcomes; every per-class view is computed from these."""

    classes: list[str]
    labels: np.ndarray
    clean_pred: np.ndarray
    adv_pred: dict[str, np.ndarray] = field(default_factory=dict)  # attack label -> predictions
    attacks: dict[str, dict] = field(default_factory=dict)  # attack label -> its spec
    notes: dict[str, list[str]] = field(default_factory=dict)  # attack label -> warnings it raised
    # per true class, collected in the evaluation pass for the analyses that need more than
    # predictions (similarity, flows of probability mass, per-class loss): key -> {"logits":
    # C x C sums of logit vectors, "probs": C x C sums of softmax vectors, "loss": C sums of
    # cross-entropy, "kl": C sums of KL(clean || adversarial) (attacks only), "features": C x D
    # sums of the input of the model's last nn.Linear (its penultimate features; absent when it has
    # none)}; for "clean" and every untargeted gradient attack
    class_sums: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    @property
    def keys(self) -> list[str]:
        return ["clean", *self.adv_pred]

    def kind(self, key: str) -> str:
        """untargeted (PGD, FGSM, AutoAttack), victim, into, corruption or curve (one point of an eps curve)."""
        meta = self.attacks.get(key, {})
        return "curve" if "curve" in meta else meta.get("threat", "untargeted")

    @property
    def robust_keys(self) -> list[str]:
        """The untargeted attacks: the ones whose per-class accuracy is a robust accuracy."""
        return [k for k in self.adv_pred if self.kind(k) == "untargeted"]

    def preds(self, key: str = "clean") -> np.ndarray:
        return self.clean_pred if key == "clean" else self.adv_pred[key]

    def per_class(self, key: str = "clean") -> pd.DataFrame:
        return per_class_table(self.labels, self.preds(key), self.classes)

    def confusion(self, key: str = "clean") -> np.ndarray:
        return confusion_matrix(self.labels, self.preds(key), len(self.classes))

    def accuracy(self, key: str = "clean") -> float:
        return float((self.preds(key) == self.labels).mean())

    def summary(self, key: str = "clean") -> dict:
        table = self.per_class(key)
        return {"overall": self.accuracy(key), **disparity(table["accuracy"], self.classes)}

    def class_mean(self, key: str = "clean", what: str = "logits") -> np.ndarray:
        """Per-class mean of a collected sum (rows: true classes; NaN for a class with no image)."""
        counts = np.bincount(self.labels, minlength=len(self.classes)).astype(float)
        sums = self.class_sums[key][what]
        with np.errstate(invalid="ignore", divide="ignore"):
            return sums / (counts[:, None] if sums.ndim == 2 else counts)

    def to_dict(self) -> dict:
        """Plain values for JSON: per-sample records included."""
        return {"classes": self.classes, "labels": self.labels.tolist(),
                "clean_pred": self.clean_pred.tolist(),
                "adv_pred": {k: v.tolist() for k, v in self.adv_pred.items()},
                "attacks": self.attacks, "notes": self.notes,
                "class_sums": {k: {w: a.tolist() for w, a in d.items()} for k, d in self.class_sums.items()}}

    @classmethod
    def concat(cls, parts: list[EvalResult]) -> EvalResult:
        first = parts[0]
        notes = {k: list(dict.fromkeys(m for p in parts for m in p.notes.get(k, [])))
                 for k in dict.fromkeys(k for p in parts for k in p.notes)}
        sums = {k: {w: sum(p.class_sums[k][w] for p in parts) for w in d} for k, d in first.class_sums.items()}
        return cls(first.classes, np.concatenate([p.labels for p in parts]),
                   np.concatenate([p.clean_pred for p in parts]),
                   {k: np.concatenate([p.adv_pred[k] for p in parts]) for k in first.adv_pred}, first.attacks, notes,
                   sums)

    @classmethod
    def from_dict(cls, d: dict) -> EvalResult:
        check_eval_record(d)  # the stored format's schema: a bad record is one line, not a traceback
        sums = {k: {w: np.asarray(a, dtype=np.float64) for w, a in v.items()}
                for k, v in d.get("class_sums", {}).items()}
        return cls(d["classes"], np.asarray(d["labels"]), np.asarray(d["clean_pred"]),
                   {k: np.asarray(v) for k, v in d["adv_pred"].items()}, d.get("attacks", {}), d.get("notes", {}), sums)


def load_eval(path, hint: str = "") -> EvalResult:
    """The `EvalResult` stored in an eval.json, checked (`hint`: what to do about a bad one)."""
    d = read_json(path, "evaluation record (eval.json)", hint)
    try:
        check_eval_record(d, str(path))
    except CorruptDataError as exc:
        raise CorruptDataError(f"{exc}{hint}") from None
    return EvalResult.from_dict(d)

