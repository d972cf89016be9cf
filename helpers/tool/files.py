"""Files written safely: where a new path would be created, a file written whole or not at all,
strict JSON (what the command line, the model saver, the embedding cache and checkpoints write)."""

from __future__ import annotations

import json
import math
import os
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import numpy as np


def existing_ancestor(path: str | Path) -> Path:
    """The nearest of `path`'s parent folders that exists (where creating `path` would start)."""
    existing = Path(path).parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    return existing


@contextmanager
def atomic_write(path: str | Path) -> Iterator[BinaryIO]:
    """A binary file handle whose contents replace `path` only once the block ends without error.

    The data goes to a hidden sibling file, is flushed to disk, then renamed over `path`: a reader
    (or a crash) sees the old file or the complete new one, never part of one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.partial")
    try:
        with open(partial, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def strict_json(value, indent: int | None = None) -> str:
    """`value` as strict JSON text (RFC 8259): NaN and infinite floats, which `json.dumps` would
    write as the invalid tokens `NaN`/`Infinity`, become null; numpy scalars become numbers."""

    def clean(item):
        if isinstance(item, float | np.floating):
            return float(item) if math.isfinite(item) else None
        if isinstance(item, np.integer | np.bool_):
            return item.item()
        if isinstance(item, Mapping):
            return {key: clean(inner) for key, inner in item.items()}
        if isinstance(item, list | tuple):
            return [clean(inner) for inner in item]
        return item

    return json.dumps(clean(value), indent=indent, allow_nan=False)
