"""Throughput measurements: medians of repeated runs, so one slow run does not decide."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_seconds(run: Callable[[], object], repeats: int = 3, warmup: int = 1) -> float:
    """Median wall time of `run()` over `repeats` runs, after `warmup` untimed runs."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def items_per_second(run: Callable[[], object], n_items: int, repeats: int = 3, warmup: int = 1) -> float:
    """Median throughput of `run()`, which processes `n_items` items each time."""
    return n_items / median_seconds(run, repeats, warmup)
