"""Process-group set-up for torchrun, the legacy launcher, or a single process."""
from __future__ import annotations

import os

import torch
import torch.distributed as dist


def init(local_rank_arg: int | None, device_name: str | None) -> tuple[int, int, int, torch.device]:
    """Returns (rank, local_rank, world_size, device). NCCL on CUDA, gloo on CPU."""
    local_rank = int(os.environ.get("LOCAL_RANK", local_rank_arg if local_rank_arg is not None else 0))
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    use_cuda = (device_name or ("cuda" if torch.cuda.is_available() else "cpu")) == "cuda"
    if use_cuda:
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    rank = dist.get_rank() if dist.is_initialized() else 0
    return rank, local_rank, world_size, device


def is_main(rank: int) -> bool:
    return rank == 0


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def all_gather_object(obj):
    if not dist.is_initialized():
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def cleanup() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
