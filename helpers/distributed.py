"""Several processes (DistributedDataParallel, e.g. under `torchrun`): who this process is, its
shard of the data, the training step whose gradients are averaged, values shared between processes.
In one process each is a no-op, so the loop calls them in `if ddp:` blocks only where it must.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from helpers.model import MultiTaskModel
from helpers.task_data import TaskData


def rank_and_size() -> tuple[int, int]:
    """(rank, number of processes) under `torch.distributed` (e.g. `torchrun`), else (0, 1)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def shard(data: Mapping[str, Any], rank: int, world_size: int) -> Mapping[str, Any]:
    """Every `world_size`-th example of each task (`TaskData` or a cache), starting at `rank`:
    disjoint shards that cover the data; `data` itself in one process."""
    if world_size == 1:
        return data
    return {task: examples.subset(range(rank, len(examples), world_size)) for task, examples in data.items()}


def check_shardable(train: Mapping[str, TaskData], world_size: int) -> None:
    """The same ValueError on every process when the processes' data differ or a shard would be empty."""
    sizes = {task: len(examples) for task, examples in train.items()}
    everyone = [None] * world_size
    torch.distributed.all_gather_object(everyone, sizes)
    if any(other != everyone[0] for other in everyone):
        raise ValueError(f"the processes were given different training data (sizes per process: {everyone})")
    short = {task: size for task, size in everyone[0].items() if size < world_size}
    if short:
        raise ValueError(
            f"with {world_size} processes every task needs at least {world_size} training examples (one "
            f"per process), but {short} has fewer; add data, leave the task out or use fewer processes"
        )


class _StepModule(nn.Module):
    """A training step `step(model, combiner, embeddings, labels, weights)` as a module holding the
    model and the combiner, which is what DistributedDataParallel wraps."""

    def __init__(self, step: Callable, model: MultiTaskModel, combiner: nn.Module, weights):
        super().__init__()
        self.step, self.model, self.combiner, self.weights = step, model, combiner, weights

    def forward(self, embeddings: torch.Tensor, labels: Mapping[str, torch.Tensor]):
        return self.step(self.model, self.combiner, embeddings, labels, self.weights)


def distributed_step(step: Callable, model: MultiTaskModel, combiner: nn.Module, weights) -> nn.Module:
    """The training step `step` under DistributedDataParallel: gradients averaged over the processes."""
    device_ids = [model.device.index] if model.device.type == "cuda" else None
    wrapped = _StepModule(step, model, combiner, weights)
    return nn.parallel.DistributedDataParallel(wrapped, device_ids=device_ids, find_unused_parameters=True)


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
