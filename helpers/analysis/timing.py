"""Throughput measurements: medians of repeated runs, so one slow run does not decide."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Hashable, Mapping
from typing import TypeVar

Key = TypeVar("Key", bound=Hashable)


def interleaved_items_per_second(
    runs: Mapping[Key, Callable[[], object]], n_items: int, rounds: int = 3, warmup: int = 1
) -> dict[Key, float]:
    """Median throughput of several `run()`s that each process `n_items` items, timed in turns.

    Each round runs every configuration once, so a slow spell of the machine (another process,
    thermal throttling) hits all of them alike instead of deciding a comparison.
    """
    for _ in range(warmup):
        for run in runs.values():
            run()
    times: dict[Key, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: n_items / statistics.median(seconds) for name, seconds in times.items()}


def items_per_second(run: Callable[[], object], n_items: int, repeats: int = 3, warmup: int = 1) -> float:
    """Median throughput of `run()`, which processes `n_items` items each time."""
    return interleaved_items_per_second({"run": run}, n_items, repeats, warmup)["run"]
