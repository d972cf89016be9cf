"""What the command line sets up for its process: the seeds, and the process group under `torchrun`.

    torchrun --nproc_per_node 2 -m helpers.tool.cli --out models/mtl ...

Each process trains on its own shard of the data (gloo on CPU, NCCL on CUDA); the loop's side of
it (shards, DistributedDataParallel, the numbers processes share) is in `helpers.training`.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch so that a re-run gives the same numbers."""
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 -- libraries such as scikit-learn may use the global generator
    torch.manual_seed(seed)


def world_size() -> int:
    """How many processes `torchrun` started (1 without it)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


@contextmanager
def process_group(requested_device: str | None) -> Iterator[tuple[int, str | None]]:
    """(rank, device for this process): under `torchrun`, inside the process group, which is left on
    exit; else (0, `requested_device`)."""
    if world_size() <= 1:
        yield 0, requested_device
        return
    use_cuda = torch.cuda.is_available() and requested_device != "cpu"
    torch.distributed.init_process_group("nccl" if use_cuda else "gloo")
    try:
        if use_cuda:
            local_rank = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local_rank)
            yield torch.distributed.get_rank(), f"cuda:{local_rank}"
        else:
            yield torch.distributed.get_rank(), "cpu"
    finally:
        torch.distributed.destroy_process_group()
