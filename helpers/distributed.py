"""Distributed data-parallel training: ranks, data shards, DistributedDataParallel, and the few
numbers the processes share.

Under `torch.distributed` (e.g. `torchrun`), each process trains on a disjoint shard of every
task, DistributedDataParallel averages the gradients, and rank 0 evaluates for all of them.
Outside it (one process) every function here is a no-op or the identity.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from helpers.encoder import check_int
from helpers.task_data import TaskData


def rank_and_size() -> tuple[int, int]:
    """(rank, number of processes) under `torch.distributed`, else (0, 1)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def shard(data: Mapping[str, TaskData], rank: int, world_size: int) -> dict[str, TaskData]:
    """Every `world_size`-th example of each task, starting at `rank`: disjoint shards that cover the data."""
    check_int("world_size", world_size, 1)
    check_int("rank", rank, 0, world_size - 1)
    return {task: examples.subset(range(rank, len(examples), world_size)) for task, examples in data.items()}


def check_shardable(train: Mapping[str, TaskData], world_size: int) -> None:
    """Raise the same ValueError on every process when the data differ or a shard would be empty."""
    if world_size == 1:
        return
    sizes = {task: len(examples) for task, examples in train.items()}
    everyone = [None] * world_size
    torch.distributed.all_gather_object(everyone, sizes)
    if any(other != everyone[0] for other in everyone):
        raise ValueError(
            f"the processes were given different training data (task sizes per process: {everyone})"
        )
    short = {task: size for task, size in everyone[0].items() if size < world_size}
    if short:
        raise ValueError(
            f"with {world_size} processes every task needs at least {world_size} training examples (one "
            f"per process), but {short} has fewer; add data, leave the task out or use fewer processes"
        )


def wrap(module: nn.Module, world_size: int, device: torch.device) -> nn.Module:
    """`module` under DistributedDataParallel when there are several processes, else `module` itself."""
    if world_size == 1:
        return module
    device_ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=device_ids, find_unused_parameters=True)


def mean_over_processes(value: float, world_size: int, device: torch.device | None = None) -> float:
    """The mean of `value` over all processes (every process must call it); `value` itself in one."""
    if world_size == 1:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    torch.distributed.all_reduce(tensor)
    return float(tensor.item()) / world_size


def from_rank_zero(value: float, world_size: int, device: torch.device | None = None) -> float:
    """Rank 0's `value`, on every process (every process must call it); `value` itself in one."""
    if world_size == 1:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    torch.distributed.broadcast(tensor, src=0)
    return float(tensor.item())
