"""Constructed data sets in a folder (Ilyas et al. 2019's D_R, D_NR, D_det, D_rand; see
analysis/features.py), read as `features:DIR` by every command that takes a data set.

Layout of DIR: `meta.json` (kind, source model and data set, parameters, classes, how many
images, whether it is complete) and `chunks/NNNNN.pt` (float32 images in [0, 1], int64 labels,
the source images' indices), each written atomically when its images are done, so a killed
construction resumes at the first missing chunk. The training split is the constructed images
as float32 (never quantised to 1/255); the test split is the source data set's own test set."""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import ClasswiseError
from ..io import atomic_torch_save, atomic_write_json
from .core import ClassData
from .registry import DatasetSpec, get_spec, load_raw, register_family

META = "meta.json"
CHUNKS = "chunks"


def read_meta(folder) -> dict:
    path = Path(folder) / META
    if not path.is_file():
        raise ClasswiseError(f"{folder} holds no constructed data set (no {META}); build one with "
                             "`classwise features build --kind robust --from CHECKPOINT --out DIR`")
    from ..schemas import check_features_meta, read_json

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
    against the data set's meta (schemas.check_chunk): one line naming the file if it is bad."""
    from ..models import read_weights_file
    from ..schemas import check_chunk

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
