"""What one evaluation pass collects besides predictions: per-class sums of logits, softmax,
loss and penultimate features, and the model's reading of clean and adversarial images."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..models.heads import CosineHead


class _ClassSums:
    """Running per-true-class sums of logits, softmax and cross-entropy (under attack also the
    KL divergence from the clean prediction, "kl"), in float64 on the CPU (exact enough for
    10^6 images)."""

    def __init__(self, num_classes: int):
        c = num_classes
        self.sums = {"logits": torch.zeros(c, c, dtype=torch.float64), "probs": torch.zeros(c, c, dtype=torch.float64),
                     "loss": torch.zeros(c, dtype=torch.float64)}

    def add(self, logits: torch.Tensor, y: torch.Tensor, features: torch.Tensor | None = None,
            reference: torch.Tensor | None = None) -> None:
        # on the CPU first (MPS has no float64), then every sum computed in float64
        logits, y = logits.detach().cpu().double(), y.cpu()
        self.sums["logits"].index_add_(0, y, logits)
        self.sums["probs"].index_add_(0, y, logits.softmax(1))
        self.sums["loss"].index_add_(0, y, F.cross_entropy(logits, y, reduction="none"))
        if reference is not None:  # KL(clean || adversarial) per image, TRADES's boundary term (WAT's cost)
            ref = reference.detach().cpu().double()
            kl = F.kl_div(logits.log_softmax(1), ref.softmax(1), reduction="none").sum(1)
            self.sums.setdefault("kl", torch.zeros(len(self.sums["loss"]), dtype=torch.float64))
            self.sums["kl"].index_add_(0, y, kl)
        if features is not None:
            if "features" not in self.sums:
                self.sums["features"] = torch.zeros(len(self.sums["loss"]), features.shape[1], dtype=torch.float64)
            self.sums["features"].index_add_(0, y, features.cpu().double())

    def numpy(self) -> dict[str, np.ndarray]:
        return {k: v.numpy() for k, v in self.sums.items()}


class _Penultimate:
    """The input of the model's output layer (its last nn.Linear or cosine head: its penultimate
    features), recorded by a forward hook only inside `capture()`: during attacks the hook
    returns at once."""

    def __init__(self, model: nn.Module):
        linears = [m for m in model.modules() if isinstance(m, nn.Linear | CosineHead)]
        self.parts: list[torch.Tensor] = []
        self.active = False
        self.handle = linears[-1].register_forward_hook(self._hook) if linears else None

    def _hook(self, _module, inputs, _output):
        if self.active:
            self.parts.append(inputs[0].detach().flatten(1).float())

    @contextmanager
    def capture(self):
        self.parts, self.active = [], True
        try:
            yield
        finally:
            self.active = False

    def take(self, n: int) -> torch.Tensor | None:
        """The features of the last `capture()`, or None if the layer did not see one row per image."""
        parts, self.parts = self.parts, []
        out = torch.cat(parts) if parts else None
        return out if out is not None and out.shape[0] == n else None

    def close(self) -> None:
        if self.handle is not None:
            self.handle.remove()


@contextmanager
def _nothing():
    yield


@torch.inference_mode()
def _logits(model, x, batch_size) -> torch.Tensor:
    return torch.cat([model(x[i:i + 2 * batch_size]) for i in range(0, len(x), 2 * batch_size)])


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
