"""Process-group set-up for torchrun (one or several nodes), the legacy
torch.distributed.launch, or a single process."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Processes:
    rank: int
    local_rank: int
    world_size: int
    local_world_size: int  # processes on this machine
    device: torch.device
    backend: str | None  # the process group's (nccl, gloo), None without one

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init(device_name: str | None = None, local_rank_arg: int | None = None) -> Processes:
    """Join the process group the launcher describes (NCCL on CUDA, gloo on CPU), also a
    one-process group under torchrun; each process uses ``cuda:LOCAL_RANK`` or the CPU."""
    local_rank = int(os.environ.get("LOCAL_RANK", local_rank_arg if local_rank_arg is not None else 0))
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    local_world_size = int(os.environ.get("LOCAL_WORLD_SIZE", world_size))
    name = device_name or ("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device("cuda", local_rank) if name == "cuda" else torch.device(name)
    use_cuda = device.type == "cuda"
    if use_cuda:
        torch.cuda.set_device(device)
    launched = world_size > 1 or "MASTER_ADDR" in os.environ  # torchrun sets it, also for one process
    if launched and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    grouped = dist.is_initialized()
    return Processes(
        dist.get_rank() if grouped else 0,
        local_rank,
        world_size,
        local_world_size,
        device,
        dist.get_backend() if grouped else None,
    )


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
