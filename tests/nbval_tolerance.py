"""A pytest plugin on top of nbval: strict output comparison, with a numeric tolerance for decimals.

nbval compares every output of a re-executed notebook with the committed one, as text. That is
what we want for words, table layouts, counts and labels, but not for the last digit of a
macro-F1: another CPU, BLAS kernel or thread count changes floating-point reduction order, and
a probe's score can move by 0.002 without anything being wrong. nbval itself offers only regex
sanitising, which would have to blank numbers out entirely.

This plugin keeps nbval strict and adds one rule. Before nbval compares an output, each text
field (stream text, ``text/plain``, ``text/html``, ...) of the new output is split into numbers
and the text between them. The new text is taken as equal to the committed text when

- the text between the numbers is identical (runs of white space count as one space, so that a
  table column that is one character wider because of a minus sign still matches),
- there are as many numbers, in the same places,
- every integer is identical, and
- every decimal (a number written with a point or an exponent) is within
  ``abs_tolerance + rel_tolerance * |committed|`` of the committed one.

Anything else is left for nbval's exact comparison, which then reports the difference as usual.
The tolerances are ini options (``nbval_abs_tolerance``, ``nbval_rel_tolerance``; see
``pyproject.toml`` for the values in use and ``benchmarks/ROBUSTNESS.md`` for how they were sized).

It is loaded by the repository's top-level ``conftest.py``, so ``pytest --nbval notebooks`` uses it
with no extra flag.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pytest

# A number that is not part of a word: "top-2" holds the integer 2, "layer_3" holds no number.
NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?(?![\w])")
WHITESPACE = re.compile(r"\s+")
DEFAULT_ABS_TOLERANCE = 0.01
DEFAULT_REL_TOLERANCE = 0.0


@dataclass(frozen=True)
class Tolerance:
    """How far a decimal may move: ``|new - committed| <= absolute + relative * |committed|``."""

    absolute: float = DEFAULT_ABS_TOLERANCE
    relative: float = DEFAULT_REL_TOLERANCE

    def __post_init__(self) -> None:
        for name in ("absolute", "relative"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(f"Tolerance.{name} must be a finite number >= 0, got {value!r}")

    def allows(self, new: float, committed: float) -> bool:
        return abs(new - committed) <= self.absolute + self.relative * abs(committed)


def split_numbers(text: str) -> tuple[list[str], list[str]]:
    """Split `text` into the text between numbers (one more item than numbers) and the numbers."""
    numbers = NUMBER.findall(text)
    return NUMBER.split(text), numbers


def is_decimal(number: str) -> bool:
    return any(mark in number for mark in ".eE")


def number_pairs(new: str, committed: str) -> list[tuple[str, str]] | None:
    """The numbers of two texts, paired in order, or None where the texts differ otherwise."""
    new_text, new_numbers = split_numbers(new)
    old_text, old_numbers = split_numbers(committed)
    if len(new_numbers) != len(old_numbers):
        return None
    if [WHITESPACE.sub(" ", part) for part in new_text] != [WHITESPACE.sub(" ", part) for part in old_text]:
        return None
    return list(zip(new_numbers, old_numbers, strict=True))


def texts_match(new: str, committed: str, tolerance: Tolerance) -> bool:
    """True when `new` equals `committed` up to the numeric tolerance (see the module docstring)."""
    if new == committed:
        return True
    pairs = number_pairs(new, committed)
    if pairs is None:
        return False
    for new_number, old_number in pairs:
        if is_decimal(new_number) != is_decimal(old_number):
            return False
        if not is_decimal(old_number):
            if int(new_number) != int(old_number):
                return False
        elif not tolerance.allows(float(new_number), float(old_number)):
            return False
    return True


def _text_fields(output: dict) -> Iterable[tuple[dict, str]]:
    """(container, key) of every text field of one output that nbval compares."""
    if output.get("output_type") == "stream":
        yield output, "text"
    for key, value in output.get("data", {}).items():
        if isinstance(value, str) and not key.startswith("image/"):
            yield output["data"], key


def reconcile_outputs(
    test: list, reference: list, sanitize: Callable[[str], str], tolerance: Tolerance
) -> list:
    """A copy of `test` in which every text field that matches the reference within the tolerance
    is replaced by the reference's text, so that nbval's exact comparison accepts it.

    Outputs are paired by position and must have the same type (and stream name); the rest is
    left untouched for nbval to report.
    """
    test = copy.deepcopy(test)
    for new, old in zip(test, reference, strict=False):
        if new.get("output_type") != old.get("output_type") or new.get("name") != old.get("name"):
            continue
        old_fields = {key: container[key] for container, key in _text_fields(old)}
        for container, key in _text_fields(new):
            committed = old_fields.get(key)
            if isinstance(committed, str) and texts_match(
                sanitize(container[key]), sanitize(committed), tolerance
            ):
                container[key] = committed
    return test


def _ini_float(config: pytest.Config, name: str) -> float:
    raw = config.getini(name)
    try:
        return float(raw)
    except ValueError as error:
        raise pytest.UsageError(f"ini option {name} must be a number, got {raw!r}") from error


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "nbval_abs_tolerance",
        "absolute tolerance for decimals in nbval output comparisons",
        default=str(DEFAULT_ABS_TOLERANCE),
    )
    parser.addini(
        "nbval_rel_tolerance",
        "relative tolerance for decimals in nbval output comparisons",
        default=str(DEFAULT_REL_TOLERANCE),
    )


def pytest_configure(config: pytest.Config) -> None:
    try:
        from nbval.plugin import IPyNbCell
    except ImportError:  # nbval not installed: nothing to extend
        return
    tolerance = Tolerance(
        _ini_float(config, "nbval_abs_tolerance"), _ini_float(config, "nbval_rel_tolerance")
    )
    exact = getattr(IPyNbCell.compare_outputs, "__wrapped__", IPyNbCell.compare_outputs)

    def compare_outputs(self, test, ref, skip_compare=None):
        return exact(self, reconcile_outputs(test, ref, self.sanitize, tolerance), ref, skip_compare)

    compare_outputs.__wrapped__ = exact
    IPyNbCell.compare_outputs = compare_outputs
