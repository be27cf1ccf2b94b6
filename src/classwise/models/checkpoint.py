"""Loading weights files safely (`weights_only=True`) with one clear line when refused, in the
formats people have: classwise's own, a plain / torchvision state dict (DataParallel's
`module.` stripped, nested under `state_dict` / `model` found), a MadryLab `robustness`
checkpoint, and a RobustBench state dict."""

from __future__ import annotations

import zipfile
from pathlib import Path

import torch
from torch import nn

from ..errors import ClasswiseError


def read_weights_file(path) -> object:
    path = Path(path)
    if not path.is_file():
        raise ClasswiseError(f"checkpoint {path} does not exist")
    head = path.read_bytes()[:256].lstrip().lower()
    if head.startswith((b"<!doctype", b"<html", b"<?xml", b"<head", b"<body")):
        raise ClasswiseError(f"checkpoint {path} is an HTML/XML page, not a weights file "
                             "(a download that returned a web page?)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except zipfile.BadZipFile as exc:
        raise ClasswiseError(f"checkpoint {path} is truncated or corrupt ({exc})") from exc
    except Exception as exc:  # noqa: BLE001 - torch raises many types; the user needs one line
        text = str(exc)
        if "weights_only" in text or "Unsupported global" in text or "Unsupported operand" in text:
            raise ClasswiseError(f"checkpoint {path} refused: it holds Python objects that would run "
                                 "code when unpickled (only tensors and plain containers are loaded)") from exc
        first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
        raise ClasswiseError(f"checkpoint {path} cannot be read (truncated or corrupt?): {first}") from exc


def _strip(state: dict, prefix: str) -> dict:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def _tensors_only(obj, path) -> dict[str, torch.Tensor]:
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ClasswiseError(f"{path}: no state dict of tensors found")
    return obj


def extract_state_dict(obj, path="checkpoint") -> dict[str, torch.Tensor]:
    """The plain state dict: top level or under `state_dict` / `model_state_dict` / `model` /
    `net`, DataParallel's `module.` prefixes stripped."""
    for key in ("state_dict", "model_state_dict", "model", "net"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    obj = _tensors_only(obj, path)
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in obj.items()}


def parse_checkpoint(obj, path="checkpoint") -> tuple[str, dict, tuple | None]:
    """(format, state dict of the bare network, (mean, std) if the file carries a normalizer)."""
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict) and any(
            k.startswith(("module.model.", "model.")) for k in obj["model"]) and any(
            "normalizer.new_mean" in k for k in obj["model"]):
        state = obj["model"]  # MadryLab robustness: AttackerModel(model, normalizer, attacker)
        pre = "module." if any(k.startswith("module.") for k in state) else ""
        net = _strip(state, pre + "model.")
        norm = tuple(state[pre + f"normalizer.new_{k}"].flatten().tolist() for k in ("mean", "std"))
        return "robustness", net, norm
    state = extract_state_dict(obj, path)
    if "normalize.mean" in state and any(k.startswith("model.") for k in state):
        # RobustBench: nn.Sequential(normalize=ImageNormalizer(mean, std), model=net)
        return "robustbench", _strip(state, "model."), (state["normalize.mean"].flatten().tolist(),
                                                        state["normalize.std"].flatten().tolist())
    if any(k.startswith("net.") for k in state) and "mean" in state and "std" in state:
        return "classwise", _strip(state, "net."), (state["mean"].flatten().tolist(), state["std"].flatten().tolist())
    return "state_dict", state, None


def load_weights(model: nn.Module, path, obj=None) -> str:
    """Load a weights file (or its already-read contents `obj`) into `model`, a `Normalized`
    network, and return its format. A file that carries its own normalizer (robustness,
    RobustBench, classwise) sets the model's."""
    fmt, state, norm = parse_checkpoint(read_weights_file(path) if obj is None else obj, path)
    net = model.net if hasattr(model, "net") else model
    missing, unexpected = net.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ClasswiseError(f"{path} ({fmt}) does not fit the architecture: {len(missing)} missing keys "
                             f"(e.g. {missing[:2]}), {len(unexpected)} unexpected (e.g. {unexpected[:2]})")
    if norm is not None and hasattr(model, "mean"):
        model.mean.copy_(torch.tensor(norm[0]).view_as(model.mean))
        model.std.copy_(torch.tensor(norm[1]).view_as(model.std))
    return fmt
