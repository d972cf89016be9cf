"""Argument checks shared by the helpers: whole numbers, finite numbers and booleans, each in range.

Messages name the argument, the value and the allowed range. `helpers.encoder` re-exports them.
"""

from __future__ import annotations

import math
import numbers

import numpy as np


def check_int(name: str, value, low: int | None = None, high: int | None = None) -> int:
    """Return `value` as an int; raise TypeError unless it is an integer (not a bool), ValueError
    unless `low <= value <= high`. Messages name the argument, the value and the allowed range."""
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
    """Return `value` as a finite float within [low, high] (an open end with `low_open`/`high_open`);
    raise TypeError for a non-number (or a bool), ValueError for NaN, infinity or a value out of range."""
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
    """Return `value` if it is a bool (numpy's too); raise TypeError naming the argument otherwise."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} ({value!r})")
    return bool(value)
