from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..attacks import AttackSpec, attack, channels_last, eval_mode
from ..attacks.fold import folded
from ..data import to_float
from ..distributed import gather, is_main, shard, world
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
    def concat(cls, parts: list[EvalResult]) -> EvalResult:
        first = parts[0]
        return cls(first.classes, np.concatenate([p.labels for p in parts]),
                   np.concatenate([p.clean_pred for p in parts]),
                   {k: np.concatenate([p.adv_pred[k] for p in parts]) for k in first.adv_pred}, first.attacks)

    @classmethod
    def from_dict(cls, d: dict) -> EvalResult:
        return cls(d["classes"], np.asarray(d["labels"]), np.asarray(d["clean_pred"]),
                   {k: np.asarray(v) for k, v in d["adv_pred"].items()}, d.get("attacks", {}))


def _chunk_size(data, batch_size: int, budget_bytes: int = 256 * 2**20) -> int:
    """Images read and attacked together (the attack's pool refills from them): 16 batches,
    so that progress moves and the pool's draining tail is short, within a float32 budget."""
    per_image = 4 * int(np.prod(data.shape)) * 4  # x, start, best, current iterate
    return max(batch_size, min(16 * batch_size, budget_bytes // per_image))


@torch.inference_mode()
def _confirm(model, fast, out, batch_size) -> torch.Tensor:
    """Predictions on the adversarial examples. When the attack ran on a folded copy, the
    model itself re-reads the examples that fooled the copy, so that a rounding difference
    can never count an image as fooled that the model gets right."""
    pred = out.pred.clone()
    if fast is not model:
        hit = out.success.nonzero().flatten()
        for i in range(0, len(hit), 2 * batch_size):
            rows = hit[i:i + 2 * batch_size]
            pred[rows] = model(out.x_adv[rows]).argmax(1)
    return pred


def evaluate(model: nn.Module, data, attacks: list[AttackSpec] = (), *, batch_size: int = 256, device=None,
             seed: int = 0, early_stop: bool = True, show_progress: bool = True) -> EvalResult:
    """Per-sample clean and adversarial predictions over `data` (a `ClassData` in memory or a
    `FolderSource` streamed from disk), read in chunks. Each attack runs only on the images
    the model gets right: a misclassified image needs no attack (its adversarial prediction
    is its clean one). Under torchrun each rank takes an exact contiguous share of the data
    and every rank gets the whole result back."""
    if world()[1] > 1:
        part = _evaluate(model, data.subset(shard(len(data))), attacks, batch_size=batch_size, device=device,
                         seed=seed, early_stop=early_stop, show_progress=show_progress and is_main())
        return EvalResult.concat([EvalResult.from_dict(d) for d in gather(part.to_dict())])
    return _evaluate(model, data, attacks, batch_size=batch_size, device=device, seed=seed,
                     early_stop=early_stop, show_progress=show_progress)


def _evaluate(model, data, attacks, *, batch_size, device, seed, early_stop, show_progress) -> EvalResult:
    device = torch.device(device) if device is not None else next(model.parameters()).device
    n = len(data)
    labels = data.labels.numpy().copy()
    result = EvalResult(list(data.classes), labels, np.empty(n, dtype=np.int64))
    for spec in attacks:
        result.adv_pred[spec.label] = np.empty(n, dtype=np.int64)
        result.attacks[spec.label] = spec.model_dump()
    # one generator per attack, consumed in data order: results do not depend on chunking
    generators = [torch.Generator(device=device).manual_seed(seed) for _ in attacks]
    chunk = _chunk_size(data, batch_size)
    desc = None
    if show_progress:
        desc = f"{'clean + ' + ', '.join(s.label for s in attacks) if attacks else 'clean'} {data.name or 'data'}"
    with eval_mode(model), channels_last(model):
        fast = folded(model)
        for start in progress(range(0, n, chunk), desc, total_items=n, step_items=chunk):
            idx = np.arange(start, min(start + chunk, n))
            x = to_float(data.images_at(idx), device, channels_last=True)
            y = torch.as_tensor(labels[idx], device=device)
            with torch.inference_mode():
                clean = torch.cat([model(x[i:i + 2 * batch_size]).argmax(1) for i in range(0, len(x), 2 * batch_size)])
            result.clean_pred[idx] = clean.cpu().numpy()
            ok = (clean == y).nonzero().flatten()
            for spec, gen in zip(attacks, generators, strict=True):
                adv = clean.clone()
                if ok.numel():
                    xo = x[ok].contiguous(memory_format=torch.channels_last)
                    out = attack(fast, xo, y[ok], spec, early_stop=early_stop, batch_size=batch_size, generator=gen)
                    adv[ok] = _confirm(model, fast, out, batch_size)
                result.adv_pred[spec.label][idx] = adv.cpu().numpy()
    return result
