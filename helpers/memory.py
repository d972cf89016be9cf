"""Give freed memory back to the operating system between experiments.

PyTorch on CPU frees large temporary tensors (attention scores, activations) into glibc's heap,
which keeps them as fragmented free space instead of returning them: a notebook that runs many
experiments in one process then grows far past what it actually uses. Two remedies, both glibc
only and harmless no-ops elsewhere (macOS, Windows, musl):

- `release_memory` (`malloc_trim`) hands the heap's free space back, after a big step;
- `return_large_blocks_to_os` makes glibc serve every large block with its own memory mapping,
  returned the moment it is freed (glibc otherwise raises that threshold to the size of the
  largest block freed, so big activation buffers end up in the heap).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from functools import cache


@cache
def _libc():
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        return libc if libc is not None and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


M_MMAP_THRESHOLD = -3  # mallopt parameter number, from glibc's malloc.h


def return_large_blocks_to_os(threshold_mb: int = 8) -> bool:
    """Serve allocations of `threshold_mb` MB and more by mmap, so that freeing them shrinks the process.

    Each such block gets fresh pages from the kernel, which costs time: at 1 MB, which would also
    catch a training batch's smaller activations, a MiniLM training step ran 30-40% slower in our
    measurements; 8 MB costs little. Returns False where not available.
    """
    libc = _libc()
    return bool(libc is not None and libc.mallopt(M_MMAP_THRESHOLD, threshold_mb << 20))


def trim_heap() -> None:
    """Return free heap memory to the operating system (glibc only); cheap enough to call often."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


def release_memory() -> None:
    """Collect garbage, then return free heap memory to the operating system (glibc only)."""
    gc.collect()
    trim_heap()
