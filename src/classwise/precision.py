"""Mixed precision and compilation of the hot loops, as GPU users expect them: the training step
and the attacks' forward passes under autocast (`bf16`, or `fp16` with a gradient scaler), and
`torch.compile` of the model those steps run.

What never runs at the lower precision: a prediction that decides an image's fate in a robust
accuracy. An attack searches under autocast, then its examples are read again in fp32 (the
verdict), AutoAttack runs in fp32 throughout, and the sanity checks compare a subset's robust
accuracy at both precisions (rounding can mask gradients). fp32, the default, adds nothing to the
code path: the same operations as before these settings existed."""

from __future__ import annotations

from contextlib import contextmanager, nullcontext

import torch
from torch import nn

from .errors import ClasswiseError

PRECISIONS = ("fp32", "bf16", "fp16")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ClasswiseError(f"unknown precision '{precision}'; choose one of: {', '.join(PRECISIONS)}")
    return precision


def _device_type(device) -> str:
    return torch.device(device).type if not isinstance(device, torch.device) else device.type


def autocast(precision: str, device):
    """Autocast to the precision's dtype on `device`'s type; fp32: no context at all."""
    if check_precision(precision) == "fp32":
        return nullcontext()
    return torch.autocast(_device_type(device), dtype=DTYPES[precision])


def lowered(device) -> str | None:
    """The precision autocast runs at on `device` right now, or None outside autocast."""
    kind = _device_type(device)
    if kind not in ("cpu", "cuda", "mps", "xpu") or not torch.is_autocast_enabled(kind):
        return None
    dtype = torch.get_autocast_dtype(kind)
    return next((k for k, v in DTYPES.items() if v == dtype), str(dtype))


@contextmanager
def full_precision(device):
    """fp32 inside, whatever autocast the caller runs under."""
    kind = _device_type(device)
    if kind not in ("cpu", "cuda", "mps", "xpu") or not torch.is_autocast_enabled(kind):
        yield
        return
    with torch.autocast(kind, enabled=False):
        yield


def grad_scaler(precision: str, device) -> torch.amp.GradScaler | None:
    """fp16 needs its loss scaled (its range ends at 65504: small gradients underflow); bf16 has
    fp32's range and needs none. None where there is nothing to scale."""
    if check_precision(precision) != "fp16":
        return None
    return torch.amp.GradScaler(_device_type(device))


def is_compiled(model: nn.Module) -> bool:
    """Whether `model` is, or holds, a `torch.compile`d module."""
    return any(type(m).__name__ == "OptimizedModule" for m in model.modules())


def original(model: nn.Module) -> nn.Module:
    """The module `torch.compile` wrapped (its weights and state dict), or `model` itself."""
    return getattr(model, "_orig_mod", model)


def compiled(model: nn.Module) -> nn.Module:
    """`torch.compile(model)`, or a one-line error where the compiler cannot run (Windows without
    a C++ compiler, a torch without inductor)."""
    try:
        import torch._inductor  # noqa: F401 - the default backend
    except Exception as exc:  # noqa: BLE001 - any import failure means: no compiler here
        raise ClasswiseError(f"--compile: torch.compile's inductor backend is not available here ({exc}); "
                             "run without --compile") from exc
    return torch.compile(model)


def describe(precision: str, compile: bool = False) -> str:
    """One line for logs and reports: what ran at which precision."""
    parts = []
    if precision != "fp32":
        parts.append(f"training step and attack forward passes under {precision} autocast"
                     + (" with a gradient scaler" if precision == "fp16" else "")
                     + "; attack verdicts and AutoAttack in fp32")
    if compile:
        parts.append("model compiled with torch.compile")
    return "; ".join(parts) or "fp32, eager"
