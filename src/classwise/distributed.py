"""torchrun support: one process per device, DistributedDataParallel for training, exact
index splits (no padded duplicates) for evaluation, and only rank 0 writes."""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.distributed as dist


def world() -> tuple[int, int]:
    """(rank, world size), 0 and 1 outside torchrun."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    return world()[0] == 0


def init_from_env(device: torch.device) -> torch.device:
    """Join the process group torchrun describes in the environment (gloo on CPU, nccl on
    CUDA) and return this rank's device; a no-op outside torchrun."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return device
    if device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def shard(n: int) -> np.ndarray:
    """This rank's contiguous, exact share of range(n): every index on exactly one rank."""
    rank, size = world()
    return np.array_split(np.arange(n), size)[rank]


def gather(obj) -> list:
    """Every rank's `obj`, in rank order, on every rank."""
    rank, size = world()
    if size == 1:
        return [obj]
    out = [None] * size
    dist.all_gather_object(out, obj)
    return out


def barrier() -> None:
    if world()[1] > 1:
        dist.barrier()
