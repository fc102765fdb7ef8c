"""Several processes (GPUs or machines) through torchrun and DistributedDataParallel.

`torchrun --nproc_per_node N -m sincut train A/ B/ --out RUN` starts N processes; each reads its rank
from the environment torchrun sets. Only rank 0 writes the run directory and shows progress.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.size > 1


def init_from_env(device: torch.device) -> tuple[World, torch.device]:
    """Join the process group torchrun describes (WORLD_SIZE > 1); otherwise a world of one.
    NCCL on CUDA (one GPU per local rank), gloo on the CPU."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World(), device
    world = World(int(os.environ["RANK"]), size, int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return world, device


def wrap(module: nn.Module, world: World, device: torch.device) -> nn.Module:
    """DistributedDataParallel when there are several processes; the module itself otherwise."""
    if not world.active:
        return module
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=ids, broadcast_buffers=False)


def shutdown(world: World) -> None:
    """Leave the process group; no barrier, so a rank that failed does not hang the others' exit."""
    if world.active and dist.is_initialized():
        dist.destroy_process_group()
