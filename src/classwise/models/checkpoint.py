"""Loading weights files safely (`weights_only=True`) with one clear line when refused."""

from __future__ import annotations

import zipfile
from pathlib import Path

import torch

from ..errors import ClasswiseError


def read_weights_file(path) -> object:
    path = Path(path)
    if not path.is_file():
        raise ClasswiseError(f"checkpoint {path} does not exist")
    head = path.read_bytes()[:64].lstrip().lower()
    if head.startswith((b"<!doctype", b"<html", b"<?xml")):
        raise ClasswiseError(f"checkpoint {path} is an HTML/XML page, not a weights file "
                             "(a download that returned a web page?)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except zipfile.BadZipFile as exc:
        raise ClasswiseError(f"checkpoint {path} is truncated or corrupt ({exc})") from exc
    except Exception as exc:  # noqa: BLE001 - torch raises many types; the user needs one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "weights_only" in str(exc) or "Unsupported global" in str(exc):
            raise ClasswiseError(f"checkpoint {path} refused: it holds Python objects that "
                                 "would run code when unpickled (only tensors and plain "
                                 "containers are loaded)") from exc
        raise ClasswiseError(f"checkpoint {path} cannot be read: {first}") from exc


def extract_state_dict(obj, path="checkpoint") -> dict[str, torch.Tensor]:
    """Find the state dict (top level or under `state_dict` / `model` / `model_state_dict`)
    and strip DataParallel's `module.` prefixes."""
    for key in ("state_dict", "model_state_dict", "model", "net"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ClasswiseError(f"{path}: no state dict of tensors found")
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in obj.items()}
