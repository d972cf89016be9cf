"""Give freed memory back to the operating system between experiments.

PyTorch on CPU frees large temporary tensors (attention scores, activations) into glibc's heap,
which keeps them as fragmented free space instead of returning them: a notebook that runs many
experiments in one process then grows far past what it actually uses. `malloc_trim` hands the
free space back. Elsewhere (macOS, Windows, musl) this is a harmless no-op.
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


def release_memory() -> None:
    """Collect garbage and return free heap memory to the operating system (glibc only)."""
    gc.collect()
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
