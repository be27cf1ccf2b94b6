from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..attacks import AttackSpec, attack, channels_last, eval_mode
from ..data import ClassData, to_float
from ..metrics import confusion_matrix, disparity, per_class_table
from ..progress import progress


@dataclass
class EvalResult:
    """Per-sample outcomes; every per-class view is computed from these."""

    classes: list[str]
    labels: np.ndarray
    clean_pred: np.ndarray
    adv_pred: dict[str, np.ndarray] = field(default_factory=dict)  # attack label -> predictions
    attacks: dict[str, dict] = field(default_factory=dict)  # attack label -> its spec

    @property
    def keys(self) -> list[str]:
        return ["clean", *self.adv_pred]

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

    def to_dict(self) -> dict:
        """Plain values for JSON: per-sample records included."""
        return {"classes": self.classes, "labels": self.labels.tolist(),
                "clean_pred": self.clean_pred.tolist(),
                "adv_pred": {k: v.tolist() for k, v in self.adv_pred.items()},
                "attacks": self.attacks}

    @classmethod
    def from_dict(cls, d: dict) -> EvalResult:
        return cls(d["classes"], np.asarray(d["labels"]), np.asarray(d["clean_pred"]),
                   {k: np.asarray(v) for k, v in d["adv_pred"].items()}, d.get("attacks", {}))


@torch.no_grad()
def predict(model: nn.Module, data: ClassData, batch_size: int = 512, device=None,
            desc: str | None = None) -> np.ndarray:
    device = device or next(model.parameters()).device
    out = []
    with eval_mode(model), channels_last(model), torch.inference_mode():
        for start in progress(range(0, len(data), batch_size), desc=desc, total_items=len(data),
                              step_items=batch_size):
            x = to_float(data.images[start:start + batch_size], device, channels_last=True)
            out.append(model(x).argmax(1).cpu())
    return torch.cat(out).numpy() if out else np.zeros(0, dtype=np.int64)


def _chunk_size(data: ClassData, batch_size: int, budget_bytes: int = 256 * 2**20) -> int:
    """Points handed to one attack call (its pool refills from them): 16 batches, so that
    progress moves and the pool's draining tail is short, within a float32 memory budget."""
    per_image = 4 * int(np.prod(data.shape)) * 4  # x, start, best, current iterate
    return max(batch_size, min(16 * batch_size, budget_bytes // per_image))


def evaluate(model: nn.Module, data: ClassData, attacks: list[AttackSpec] = (), *,
             batch_size: int = 256, device=None, seed: int = 0, early_stop: bool = True,
             show_progress: bool = True) -> EvalResult:
    """Clean predictions for every image; each attack runs only on the images the model gets
    right, since a misclassified image needs no attack (its adversarial prediction is its
    clean one)."""
    device = torch.device(device) if device is not None else next(model.parameters()).device
    name = data.name or "data"
    with channels_last(model):
        clean = predict(model, data, batch_size * 2, device, f"clean {name}" if show_progress else None)
        result = EvalResult(list(data.classes), data.labels.numpy().copy(), clean)
        correct = np.flatnonzero(clean == result.labels)
        chunk = _chunk_size(data, batch_size)
        for spec in attacks:
            _attack_all(model, data, spec, correct, result, chunk, batch_size, device, seed, early_stop,
                        f"{spec.label} {name}" if show_progress else None)
    return result


def _attack_all(model, data, spec, correct, result, chunk, batch_size, device, seed, early_stop, desc):
    generator = torch.Generator(device=device).manual_seed(seed)
    adv = result.clean_pred.copy()
    for start in progress(range(0, len(correct), chunk), desc=desc, total_items=len(correct), step_items=chunk):
        idx = correct[start:start + chunk]
        x = to_float(data.images[idx], device, channels_last=True)
        y = data.labels[idx].to(device)
        out = attack(model, x, y, spec, early_stop=early_stop, batch_size=batch_size, generator=generator)
        adv[idx] = out.pred.cpu().numpy()
    result.adv_pred[spec.label] = adv
    result.attacks[spec.label] = spec.model_dump()
