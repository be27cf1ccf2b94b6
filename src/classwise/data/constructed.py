"""Constructed data sets in a folder (Ilyas et al. 2019's D_R, D_NR, D_det, D_rand; see
analysis/features.py), read as `features:DIR` by every command that takes a data set.

Layout of DIR: `meta.json` (kind, source model and data set, parameters, classes, how many
images, whether it is complete) and `chunks/NNNNN.pt` (float32 images in [0, 1], int64 labels,
the source images' indices), each written atomically when its images are done, so a killed
construction resumes at the first missing chunk. The training split is the constructed images
as float32 (never quantised to 1/255); the test split is the source data set's own test set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field

from ..errors import ClasswiseError, CorruptDataError, validated
from ..io import atomic_torch_save, atomic_write_json, read_json
from .core import ClassData
from .registry import DatasetSpec, get_spec, load_raw, register_family

META = "meta.json"
KINDS = ("robust", "non-robust", "det", "rand")  # Ilyas et al.'s constructed data sets
CHUNKS = "chunks"


def read_meta(folder) -> dict:
    path = Path(folder) / META
    if not path.is_file():
        raise ClasswiseError(f"{folder} holds no constructed data set (no {META}); build one with "
                             "`classwise features build --kind robust --from CHECKPOINT --out DIR`")
    return check_features_meta(read_json(path, "constructed data set's meta.json"), path)


def write_meta(folder, meta: dict) -> None:
    atomic_write_json(Path(folder) / META, meta)


def chunk_path(folder, i: int) -> Path:
    return Path(folder) / CHUNKS / f"{i:05d}.pt"


def write_chunk(folder, i: int, images: torch.Tensor, labels: torch.Tensor, index: torch.Tensor, **extra) -> None:
    atomic_torch_save(chunk_path(folder, i), {"images": images.float().cpu().contiguous(),
                                              "labels": labels.long().cpu(), "index": index.long().cpu(), **extra})


def load_chunk(folder, i: int, meta: dict) -> dict:
    """Chunk `i`, read as tensors only (a pickle that would run code is refused) and checked
    against the data set's meta (`check_chunk`): one line naming the file if it is bad."""
    from ..models import read_weights_file

    path = chunk_path(folder, i)
    try:
        obj = read_weights_file(path)
    except ClasswiseError as exc:
        text = str(exc).removeprefix(f"checkpoint {path} ")
        raise ClasswiseError(f"{path} (a chunk of a constructed data set) {text}") from None
    return check_chunk(obj, path, meta, i)


def done_chunks(folder, n_chunks: int) -> list[int]:
    return [i for i in range(n_chunks) if chunk_path(folder, i).is_file()]


def read_constructed(folder) -> ClassData:
    """The constructed images of DIR (complete or not) as a float32 `ClassData`."""
    meta = read_meta(folder)
    parts = [load_chunk(folder, i, meta) for i in done_chunks(folder, meta["n_chunks"])]
    if not parts:
        raise ClasswiseError(f"{folder}: no chunk of the {meta['kind']} data set is built yet")
    return ClassData(torch.cat([p["images"] for p in parts]), torch.cat([p["labels"] for p in parts]),
                     list(meta["classes"]), name=f"features-{meta['kind']}",
                     meta={"source": str(folder), "kind": meta["kind"]})


def _spec(arg: str) -> DatasetSpec:
    folder = Path(arg).expanduser()
    meta = read_meta(folder)
    source = get_spec(meta["source"]["dataset"])

    def read(_unused):
        if not meta.get("complete"):
            raise ClasswiseError(f"{folder}: the {meta['kind']} data set is not complete "
                                 f"({len(done_chunks(folder, meta['n_chunks']))}/{meta['n_chunks']} chunks); "
                                 "rerun `classwise features build` with the same --out to finish it")
        train = read_constructed(folder)
        test = load_raw(meta["source"]["dataset"], meta["source"].get("data_dir"))[1]
        return train, test

    return DatasetSpec(name=f"features:{arg}", description=f"constructed {meta['kind']} data set from "
                       f"{meta['source'].get('checkpoint')}", subdirs=(), system_dirs=(), is_present=lambda d: True,
                       read=read, how_to_get="classwise features build --out DIR", hflip=source.hflip,
                       grey=source.grey, builtin=True)


register_family("features", _spec)


# ---- the stored format: meta.json and the chunks, checked when read

class FeatureSource(BaseModel):
    model_config = ConfigDict(extra="allow")
    dataset: str
    checkpoint: str | None = None
    data_dir: str | None = None


class FeaturesMeta(BaseModel):
    """`meta.json` of a constructed data set (see analysis/features.py)."""

    model_config = ConfigDict(extra="allow")

    kind: str
    source: FeatureSource
    params: dict[str, Any]
    seed: int
    n: int = Field(ge=1)
    chunk: int = Field(ge=1)
    n_chunks: int = Field(ge=1)
    classes: list[str] = Field(min_length=1)
    shape: list[int] = Field(min_length=3, max_length=3)
    complete: bool = False


def check_features_meta(d, where) -> dict:
    meta = validated(FeaturesMeta, d, where, "a constructed data set's meta.json")
    if meta.kind not in KINDS:
        raise CorruptDataError(f"{where}: kind '{meta.kind}' is none of {', '.join(KINDS)}")
    if meta.n_chunks != -(-meta.n // meta.chunk):
        raise CorruptDataError(f"{where}: {meta.n_chunks} chunks do not hold {meta.n} images of {meta.chunk}")
    return d


def check_chunk(obj, path, meta: dict, i: int) -> dict:
    """A loaded chunk: float32 images in [0, 1] of the data set's shape, one int64 label (a
    class index) and one source index per image, as many images as chunk `i` holds."""
    n = min(meta["chunk"], meta["n"] - i * meta["chunk"])
    shape = tuple(meta["shape"])

    def bad(what):
        return CorruptDataError(f"{path}: {what}; delete it and rerun `classwise features build` with the same "
                                "--out to make it again")

    if not isinstance(obj, dict) or not all(torch.is_tensor(obj.get(k)) for k in ("images", "labels", "index")):
        raise bad("not a chunk of a constructed data set (expected tensors images, labels, index)")
    images, labels, index = obj["images"], obj["labels"], obj["index"]
    if images.dtype != torch.float32 or tuple(images.shape) != (n, *shape):
        raise bad(f"images are {images.dtype} {tuple(images.shape)}, expected float32 {(n, *shape)}")
    if images.numel() and not (float(images.min()) >= 0 and float(images.max()) <= 1):
        raise bad("images outside [0, 1] (or NaN)")
    for name, t in (("labels", labels), ("index", index)):
        if t.dtype != torch.int64 or tuple(t.shape) != (n,):
            raise bad(f"{name} are {t.dtype} {tuple(t.shape)}, expected int64 ({n},)")
    c = len(meta["classes"])
    if n and (int(labels.min()) < 0 or int(labels.max()) >= c):
        raise bad(f"labels outside the {c} classes")
    key = "relative_distance" if meta["kind"] in ("robust", "non-robust") else "reached_target"
    if not torch.is_tensor(obj.get(key)) or tuple(obj[key].shape) != (n,):
        raise bad(f"no per-image {key} ({n},)")
    return obj
