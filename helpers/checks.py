"""Checks every module shares: arguments (whole numbers, finite numbers, flags, texts) and files
(SHA-256, the folder a new path would be created in, a file written whole or not at all, strict JSON).

Messages name the argument, the value and the allowed range. Standard library and numpy only, so
that `helpers.data` and the build script can use it without importing torch.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
import secrets
from collections.abc import Iterable, Iterator, Mapping, Set
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import numpy as np


def check_int(name: str, value, low: int | None = None, high: int | None = None) -> int:
    """`value` as an int; TypeError unless it is an integer (not a bool), ValueError unless
    `low <= value <= high`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} ({value!r})")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        if high is None:
            allowed = f"at least {low}"
        else:
            allowed = f"at most {high}" if low is None else f"between {low} and {high}"
        raise ValueError(f"{name} must be {allowed}, got {value}")
    return value


def check_number(
    name: str,
    value,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """`value` as a finite float within [low, high] (an open end with `low_open`/`high_open`);
    TypeError for a non-number (or a bool), ValueError for NaN, infinity or a value out of range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} ({value!r})")
    value = float(value)
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if not math.isfinite(value) or too_low or too_high:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        allowed = f"{left}{'-inf' if low is None else low}, {'inf' if high is None else high}{right}"
        raise ValueError(f"{name} must be a finite number in {allowed}, got {value}")
    return value


def check_bool(name: str, value) -> bool:
    """`value` if it is a bool (numpy's too); TypeError naming the argument otherwise."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} ({value!r})")
    return bool(value)


def check_texts(texts: str | Iterable[str]) -> list[str]:
    """`texts` as a list of strings; a single string counts as one sentence.

    TypeError for None, bytes, a mapping, a set, a DataFrame or a non-iterable, naming the first
    position that holds something other than a string.
    """
    if isinstance(texts, str):
        return [texts]
    if isinstance(texts, Set) or hasattr(texts, "columns"):  # unordered, or column names
        raise TypeError(
            f"texts must be ordered (a list), got {type(texts).__name__}; "
            "for a DataFrame pass a column: df['text']"
        )
    if texts is None or isinstance(texts, bytes | bytearray | Mapping) or not isinstance(texts, Iterable):
        raise TypeError(f"expected a string or a sequence of strings, got {type(texts).__name__}")
    texts = list(texts)
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"item {index} is {type(text).__name__} ({text!r}), expected str")
    return texts


def sha256_file(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """The hex SHA-256 of a file, read in chunks so large files need little memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


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
