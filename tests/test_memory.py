"""release_memory gives freed heap memory back (on glibc) and never fails elsewhere."""

import psutil
import torch

from helpers.memory import release_memory


def test_release_memory_runs_and_does_not_grow_memory():
    process = psutil.Process()
    blocks = [torch.ones(256, 1024) for _ in range(200)]  # ~200 MB in 1 MB pieces
    del blocks
    release_memory()
    after = process.memory_info().rss
    release_memory()
    assert process.memory_info().rss <= after + 16 * 2**20
