"""What the command line sets up for its process: the seeds, the process group under `torchrun`,
and the lock that lets one run at a time write a model folder.

    torchrun --nproc_per_node 2 -m helpers.tool.cli --out models/mtl ...

Each process trains on its own shard of the data (gloo on CPU, NCCL on CUDA); the loop's side of
it (shards, DistributedDataParallel, the numbers processes share) is in `helpers.training`.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None
    import msvcrt

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


class OutputLockError(RuntimeError):
    """The lock of the model folder this run would write cannot be taken."""


class RunInProgressError(OutputLockError):
    """Another run holds the lock of the model folder this run would write."""


def _try_lock(handle) -> bool:
    try:
        if fcntl is not None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
    except OSError:
        return False
    return True


@contextmanager
def exclusive_output(out: Path) -> Iterator[Path]:
    """Hold the lock `.OUT.lock` beside `out` inside the block: RunInProgressError (naming the other
    run's process id) when another run holds it, OutputLockError when it cannot be created. The
    operating system releases it when the process ends, even on a crash; the file is removed on exit."""
    lock = out.parent / f".{out.name}.lock"
    while True:
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            handle = open(lock, "a+", encoding="utf-8")  # noqa: SIM115 -- held open for the whole block
        except OSError as error:
            raise OutputLockError(
                f"cannot create the lock file {lock} beside --out: {error.strerror}"
            ) from None
        if not _try_lock(handle):
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            handle.close()
            raise RunInProgressError(
                f"another run (process {owner}) is training into {out} right now; wait for it to end, "
                "or choose another --out"
            )
        try:  # the lock is ours unless its holder removed the file between our open and our lock
            if os.stat(lock).st_ino == os.fstat(handle.fileno()).st_ino:
                break
        except FileNotFoundError:
            pass
        handle.close()
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    try:
        yield lock
    finally:
        try:
            lock.unlink(missing_ok=True)
        except OSError:  # Windows cannot remove an open file; the lock goes with the handle
            pass
        handle.close()
