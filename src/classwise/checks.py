"""What the Python API checks of the model and the data it is given before any work, with the
CLI's words: a `ClasswiseError` (one line) where torch would raise from deep inside a pass —
labels that are not class indices (negative, fractional, beyond the model's outputs), an empty
data set, a model whose weights are on the `meta` device or on another device than asked for,
a device that is not there (CUDA without a GPU)."""

from __future__ import annotations

import torch

from .errors import ClasswiseError


def _same_device(a: torch.device, b: torch.device) -> bool:
    return a.type == b.type and (a.index is None or b.index is None or a.index == b.index)


def model_device(model, device=None) -> torch.device:
    """The device to evaluate `model` on: `device` (which must exist and hold the model), else
    the one its weights are on (the CPU for a model without any)."""
    if not isinstance(model, torch.nn.Module):
        raise ClasswiseError("the model must be a torch.nn.Module mapping images to logits, got "
                             f"{type(model).__name__}")
    devices = {t.device for t in [*model.parameters(), *model.buffers()]}
    if any(d.type == "meta" for d in devices):
        raise ClasswiseError("the model's weights are on the 'meta' device: they hold no values yet; load them onto a "
                             "real device first (e.g. model.to_empty(device='cpu'), then model.load_state_dict(...))")
    if len(devices) > 1:
        raise ClasswiseError(f"the model's weights are spread over {', '.join(sorted(map(str, devices)))}; move it to "
                             "one device first (model.to(...))")
    have = next(iter(devices)) if devices else torch.device("cpu")
    if device is None:
        return have
    from .device import resolve_device

    try:
        want = resolve_device(str(device))
    except ClasswiseError as exc:
        raise ClasswiseError(str(exc).replace("; use --device auto", "; use device='cpu' (or 'auto')")) from None
    if devices and not _same_device(want, have):
        raise ClasswiseError(f"the model is on {have} but device='{device}' was asked for: move the model first "
                             f"(model.to('{want}')) or leave device out")
    return want


def _labels(labels) -> torch.Tensor:
    labels = torch.as_tensor(labels)
    if labels.ndim != 1:
        raise ClasswiseError("labels must be one class index per image (a 1-D tensor), got shape "
                             f"{tuple(labels.shape)}")
    if labels.dtype == torch.bool or labels.is_complex():
        raise ClasswiseError(f"labels must be class indices (integers), got {labels.dtype}")
    if labels.is_floating_point():
        bad = ~torch.isfinite(labels) | (labels != labels.round())
        if bad.any():
            first = labels[bad][0].item()
            raise ClasswiseError(f"labels must be class indices (integers), got {first} "
                                 f"({int(bad.sum())} label(s) not whole numbers)")
    labels = labels.long()
    if len(labels) and labels.min() < 0:
        raise ClasswiseError(f"labels must be class indices 0, 1, 2, ...; got {int(labels.min())} "
                             f"({int((labels < 0).sum())} negative label(s))")
    return labels


def output_width(model, sample: torch.Tensor, device) -> int:
    """The number of logits `model` gives for one image (a forward pass in eval mode, no
    gradients, the global RNG left as it was)."""
    from .attacks import eval_mode
    from .data import to_float

    try:
        with eval_mode(model), torch.inference_mode(), torch.random.fork_rng(devices=[]):
            out = model(to_float(sample[:1], device))
    except ClasswiseError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's model: what it says, on one line
        text = str(exc).strip().splitlines()
        raise ClasswiseError(f"the model cannot take these images {tuple(sample.shape[1:])}: {type(exc).__name__}"
                             f"{': ' + text[0] if text else ''}") from exc
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != 1:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ClasswiseError(f"the model gives {got} for one image; it must return (batch, classes) logits")
    return int(out.shape[1])


def checked_inputs(model, data, device, as_data):
    """(data as a `ClassData`/`FolderSource`, device) once model, device and data agree:
    `data` may be an (images, labels) pair, made a `ClassData` by `as_data(pair, num_classes)`
    with the model's outputs as its classes."""
    device = model_device(model, device)
    if isinstance(data, tuple | list):
        if len(data) != 2:
            raise ClasswiseError(f"data must be a ClassData or an (images, labels) pair, got {len(data)} items")
        images, labels = torch.as_tensor(data[0]), _labels(data[1])
        if images.ndim != 4:
            raise ClasswiseError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
        if len(images) != len(labels):
            raise ClasswiseError(f"{len(images)} images but {len(labels)} labels: one label per image")
        if len(images) == 0:
            raise ClasswiseError("no images to evaluate: the data set is empty")
        width = output_width(model, images[:1], device)
        if labels.max() >= width:
            raise ClasswiseError(f"labels go up to {int(labels.max())}, but the model gives {width} logits (classes "
                                 f"0..{width - 1}): labels outside the model's classes")
        return as_data((images, labels), width), device
    if not hasattr(data, "images_at") or not hasattr(data, "classes"):
        raise ClasswiseError(f"data must be a ClassData, a FolderSource or an (images, labels) pair, got "
                             f"{type(data).__name__}")
    if len(data) == 0:
        raise ClasswiseError(f"no images to evaluate: {getattr(data, 'name', '') or 'the data set'} is empty")
    width = output_width(model, data.images_at([0]), device)
    if width != len(data.classes):
        raise ClasswiseError(f"the model gives {width} logits but {getattr(data, 'name', '') or 'the data'} has "
                             f"{len(data.classes)} classes: it must give one logit per class")
    return data, device
