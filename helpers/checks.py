"""Checks every module shares: arguments (whole numbers, finite numbers, flags, texts) and a
file's SHA-256.

Messages name the argument, the value and the allowed range. Standard library and numpy only, so
that `helpers.data` and the build script can use it without importing torch.
"""

from __future__ import annotations

import hashlib
import math
import numbers
from collections.abc import Iterable, Mapping, Set
from pathlib import Path

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
