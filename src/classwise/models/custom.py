"""Your own model: `package.module:factory` (or `path/to/file.py:factory`) builds any
`nn.Module` that maps images to logits; `wrap_normalization` puts a mean/std in front of a
model that expects normalized input, so that the attacks still work on [0, 1] images and
eps stays in pixel units; `load_custom_weights` reads a checkpoint into it (DataParallel's
`module.` stripped, nested `state_dict` / `model` found)."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from ..errors import ClasswiseError
from .checkpoint import extract_state_dict, load_state, read_weights_file
from .registry import Normalized

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
CIFAR10 = ((0.4914, 0.4822, 0.4465), (0.2471, 0.2435, 0.2616))
NAMED_STATS = {"imagenet": IMAGENET, "cifar10": CIFAR10}


def _module(name: str):
    if name.endswith(".py") or "/" in name or "\\" in name:
        path = Path(name).expanduser().resolve()
        if not path.is_file():
            raise ClasswiseError(f"--model: no file {path}")
        spec = importlib.util.spec_from_file_location(f"classwise_user_{path.stem}", path)
        if spec is None:
            raise ClasswiseError(f"--model: {path} is not a Python file; give path/to/file.py:factory")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:  # noqa: BLE001 - the user's code: say where it broke, in one line
            sys.modules.pop(spec.name, None)
            raise ClasswiseError(f"--model: running {path} failed: {_first_line(exc)}; fix the file") from exc
        return module
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))  # as `python -m` would: modules next to where you run
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        raise ClasswiseError(f"--model: cannot import module '{name}' ({exc}); run from the folder that holds it, "
                             "add it to PYTHONPATH, or give a file path: path/to/file.py:factory") from exc
    except Exception as exc:  # noqa: BLE001 - the user's code
        raise ClasswiseError(f"--model: importing '{name}' failed: {_first_line(exc)}; fix the module") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def import_factory(target: str):
    """`package.module:factory` or `path/to/file.py:factory` -> the callable."""
    name, sep, attr = target.rpartition(":")
    if not sep or not name or not attr:
        raise ClasswiseError(f"--model must look like package.module:factory or path/to/file.py:factory, "
                             f"got '{target}'")
    obj = _module(name)
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ClasswiseError(f"--model: '{name}' has no attribute '{attr}'")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ClasswiseError(f"--model: '{target}' is not callable")
    return obj


def build_custom_model(target: str, num_classes: int | None = None) -> nn.Module:
    """Call the factory, passing `num_classes` if it takes that argument."""
    factory = import_factory(target)
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        params = {}
    takes = "num_classes" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
    try:
        model = factory(num_classes=num_classes) if takes and num_classes is not None else factory()
    except Exception as exc:  # noqa: BLE001 - the user's code
        raise ClasswiseError(f"--model: calling '{target}' failed: {_first_line(exc)}; fix the factory") from exc
    if not isinstance(model, nn.Module):
        raise ClasswiseError(f"--model: '{target}' returned {type(model).__name__}, not a torch.nn.Module; "
                             "the factory must return the model")
    return model


def check_output_width(model: nn.Module, shape, num_classes: int, name: str = "--model") -> None:
    """One forward pass of a blank image: the model must take the data's images and give one
    logit per class (a model built for another class count would be scored against wrong labels)."""
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros(1, *shape))
    except Exception as exc:  # noqa: BLE001 - the user's model
        raise ClasswiseError(f"{name} cannot take this data set's images {tuple(shape)}: {_first_line(exc)}") from exc
    finally:
        model.train(was)
    if not isinstance(out, torch.Tensor) or out.shape != (1, num_classes):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ClasswiseError(f"{name} gives outputs of shape {got} for one image, but the data set has "
                             f"{num_classes} classes: it must return (batch, {num_classes}) logits")


def parse_values(text: str, channels: int) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise ClasswiseError(f"--mean/--std take numbers like 0.485,0.456,0.406, got '{text}'") from exc
    if len(values) == 1:
        values *= channels
    if len(values) != channels:
        raise ClasswiseError(f"--mean/--std need {channels} values (one per channel), got {len(values)}: '{text}'")
    return values


def _stats(value: str, which: int, channels: int) -> list[float]:
    name = value.lower()
    if name in NAMED_STATS:
        if channels != 3:
            raise ClasswiseError(f"the {name} statistics are for 3 channels; the data has {channels}")
        return list(NAMED_STATS[name][which])
    return parse_values(value, channels)


def normalization(mean: str | None, std: str | None, channels: int) -> tuple[list[float], list[float]] | None:
    """(mean, std) from the --mean/--std options, or None when neither is given. A name
    (`imagenet`, `cifar10`) given for one of them also sets the other."""
    if mean is None and std is None:
        return None
    if mean is None or std is None:
        given = mean or std
        if given.lower() not in NAMED_STATS:
            raise ClasswiseError("give both --mean and --std (or a name for both: --mean imagenet)")
        mean, std = mean or given, std or given
    m, s = _stats(mean, 0, channels), _stats(std, 1, channels)
    if any(v <= 0 for v in s):
        raise ClasswiseError(f"--std values must be > 0, got {s}")
    return m, s


def wrap_normalization(model: nn.Module, mean: Sequence[float], std: Sequence[float]) -> nn.Module:
    """`model` behind (x - mean) / std: the result takes [0, 1] images."""
    return Normalized(model, mean, std)


def load_custom_weights(model: nn.Module, path) -> None:
    """Load a checkpoint into `model` as `model.load_state_dict` would (strict; BatchNorm fills
    the `num_batches_tracked` an old file lacks), with one clear line when it does not fit."""
    load_state(model, extract_state_dict(read_weights_file(path), path), path, what="the model")
