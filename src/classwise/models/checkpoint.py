"""Loading weights files safely (`weights_only=True`) with one clear line when refused, in the
formats people have: classwise's own, a plain / torchvision state dict (DataParallel's
`module.` stripped, nested under `state_dict` / `model` found), a MadryLab `robustness`
checkpoint, and a RobustBench state dict. A state dict loads exactly when PyTorch's own
`load_state_dict` accepts it (an old file without BatchNorm's `num_batches_tracked` does:
BatchNorm fills that buffer itself); a real mismatch is one line naming the layer."""

from __future__ import annotations

import io
import pickletools
import re
import warnings
import zipfile
from pathlib import Path

import torch
from torch import nn

from ..errors import WeightsError

# modules a PyTorch checkpoint's pickle refers to; anything else would be called on unpickling
_SAFE_MODULES = ("torch", "collections", "_codecs")


def _pickle_bytes(raw: bytes) -> bytes:
    """The pickle inside a torch zip archive (`*/data.pkl`), else the bytes themselves."""
    if raw[:2] == b"PK":
        try:
            with zipfile.ZipFile(io.BytesIO(raw)) as zf:
                name = next((n for n in zf.namelist() if n.endswith("data.pkl")), None)
                return zf.read(name) if name else b""
        except (zipfile.BadZipFile, OSError, KeyError, EOFError):
            return b""
    return raw


def _foreign_global(raw: bytes) -> str | None:
    """The first `module.name` the pickle would import from outside torch, if any."""
    strings: list[str] = []
    try:
        for op, arg, _ in pickletools.genops(_pickle_bytes(raw)):
            if op.name == "GLOBAL":
                module, _, name = str(arg).partition(" ")
            elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                module, name = strings[-2], strings[-1]
            else:
                if isinstance(arg, str):
                    strings.append(arg)
                continue
            if module.split(".")[0] not in _SAFE_MODULES:
                return f"{module}.{name}"
    except Exception:  # noqa: BLE001 - a broken pickle: the caller reports it as such
        return None
    return None


def read_weights_file(path) -> object:
    path = Path(path)
    if path.is_dir():
        raise WeightsError(f"checkpoint {path} is a folder; give the weights file inside it (e.g. {path}/model.pt)")
    if not path.is_file():
        raise WeightsError(f"checkpoint {path} does not exist; check the path")
    raw = path.read_bytes()
    if not raw:
        raise WeightsError(f"checkpoint {path} is empty (an interrupted download or copy?); get the file again")
    head = raw[:256].lstrip().lower()
    if head.startswith((b"<!doctype", b"<html", b"<?xml", b"<head", b"<body")):
        raise WeightsError(f"checkpoint {path} is an HTML/XML page, not a weights file "
                           "(a download that returned a web page?)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about pickle protocols before it refuses
            return torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types; the user needs one line
        text = str(exc)
        named = re.search(r"Unsupported global: GLOBAL (\S+)", text)
        foreign = named.group(1) if named else _foreign_global(raw)
        if foreign:
            raise WeightsError(f"checkpoint {path} refused: it holds Python objects ({foreign}) that would run "
                               "code when unpickled; only tensors and plain containers are loaded — save the "
                               "state_dict instead") from exc
        if raw[:2] == b"PK":
            raise WeightsError(f"checkpoint {path} is truncated or corrupt (a broken zip archive); "
                               "get the file again") from exc
        if raw[:1] == b"\x80":
            raise WeightsError(f"checkpoint {path} is truncated or corrupt (a pickle that ends early or "
                               "breaks off); get the file again") from exc
        raise WeightsError(f"checkpoint {path} is not a PyTorch weights file (neither a torch.save zip "
                           "archive nor a pickle); check that you gave the right file") from exc


def _strip(state: dict, prefix: str) -> dict:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def _tensors_only(obj, path) -> dict[str, torch.Tensor]:
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{path}: no state dict of tensors found (looked at the top level and under "
                           "state_dict / model_state_dict / model / net)")
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


def load_state(net: nn.Module, state: dict[str, torch.Tensor], path, what: str = "the model") -> None:
    """`net.load_state_dict(state)` with PyTorch's own rules for what fits, refusing with one
    line: a layer of another shape (e.g. a head for another class count), keys missing or
    unexpected, or weights that are not finite."""
    own = net.state_dict()
    shapes = [f"'{k}' is {tuple(v.shape)} in the file but {tuple(own[k].shape)} in {what}"
              for k, v in state.items() if k in own and v.shape != own[k].shape]
    if shapes:
        raise WeightsError(f"{path} does not fit {what}: {shapes[0]}"
                           + (f" (and {len(shapes) - 1} more layers)" if len(shapes) > 1 else "")
                           + "; was it trained for another number of classes, input size or architecture?")
    bad = next((k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()), None)
    if bad is not None:
        kind = "NaN" if torch.isnan(state[bad]).any() else "infinite"
        raise WeightsError(f"{path}: '{bad}' holds {kind} values; the weights are broken (a diverged run?), "
                           "use another checkpoint")
    missing, unexpected = net.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise WeightsError(f"{path} does not fit {what}: {len(missing)} missing keys (e.g. {missing[:2]}), "
                           f"{len(unexpected)} unexpected (e.g. {unexpected[:2]}); is it the right architecture?")


def load_weights(model: nn.Module, path, obj=None) -> str:
    """Load a weights file (or its already-read contents `obj`) into `model`, a `Normalized`
    network, and return its format. A file that carries its own normalizer (robustness,
    RobustBench, classwise) sets the model's."""
    fmt, state, norm = parse_checkpoint(read_weights_file(path) if obj is None else obj, path)
    net = model.net if hasattr(model, "net") else model
    load_state(net, state, f"{path} ({fmt} format)", what="the architecture")
    if norm is not None and hasattr(model, "mean"):
        model.mean.copy_(torch.tensor(norm[0]).view_as(model.mean))
        model.std.copy_(torch.tensor(norm[1]).view_as(model.std))
    return fmt
