"""The frozen part of the encoder computed once, for every top-k a notebook trains: one object.

Top-k training with the embeddings and the lowest L - k layers frozen reads its inputs from a
prefix cache after layer L - k (`helpers.tool.prefix_cache`). A notebook that compares several k needs
one cache per k and per split; `FrozenCaches` builds them from the lowest layer up (each step runs
only the layers in between), times each step, and hands out the one a given k needs.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from helpers.model import MultiTaskModel
from helpers.task_data import TaskData
from helpers.tool.prefix_cache import PrefixCache, build_prefix_caches


class FrozenCaches:
    """Prefix caches of named splits for each `k` in `top_k` (0: the finished sentence embeddings).

    `model` is the pre-trained model (its frozen layers are what the caches hold); `splits` maps a
    split name to `{task: TaskData}`. ValueError for a k outside 0..L-1 (k = L has no frozen layer).
    """

    def __init__(
        self, model: MultiTaskModel, splits: Mapping[str, Mapping[str, TaskData]], top_k: Iterable[int]
    ):
        n_layers = len(model.layers)
        top_k = sorted(set(top_k), reverse=True)  # lowest prefix first
        if not top_k or any(not 0 <= k < n_layers for k in top_k):
            raise ValueError(f"each k must be 0..{n_layers - 1} (k = {n_layers} caches nothing), got {top_k}")
        self.n_layers = n_layers
        self.n_sentences = sum(len(examples) for data in splits.values() for examples in data.values())
        self._caches: dict[int, dict[str, dict[str, PrefixCache]]] = {}
        self.seconds: dict[int, float] = {}  # after layer p: cumulative one-off seconds to get there
        start, below = time.perf_counter(), None
        for k in top_k:
            prefix = n_layers - k
            self._caches[k] = {
                name: build_prefix_caches(
                    model, data, prefix, start_from=None if below is None else below[name]
                )
                for name, data in splits.items()
            }
            self.seconds[prefix] = time.perf_counter() - start
            below = self._caches[k]

    def for_top(self, k: int, split: str) -> dict[str, PrefixCache]:
        """The caches of `split` that top-`k` training (or scoring) reads: `{task: PrefixCache}`."""
        if k not in self._caches:
            raise KeyError(f"no caches for top {k}; built for k in {sorted(self._caches)}")
        return self._caches[k][split]

    def embeddings(self, split: str) -> dict[str, np.ndarray]:
        """The frozen encoder's sentence embeddings of `split`: `{task: (n, width) float32}` (needs k = 0)."""
        return {task: cache.states.numpy() for task, cache in self.for_top(0, split).items()}

    def drop(self, k: int) -> None:
        """Free the caches for top `k` (their one-off time stays in `table`)."""
        del self._caches[k]

    def table(self) -> pd.DataFrame:
        """Per cached layer: cumulative one-off seconds, seconds per 1,000 sentences, and MB held."""
        rows = []
        for prefix, seconds in self.seconds.items():
            k = self.n_layers - prefix
            held = self._caches.get(k)
            megabytes = (
                sum(c.nbytes for per_task in held.values() for c in per_task.values()) / 1e6
                if held
                else np.nan
            )
            rows.append(
                {
                    "cached up to layer": prefix,
                    "one-off seconds (cumulative)": seconds,
                    "s / 1,000 sentences": 1000 * seconds / self.n_sentences,
                    "MB held": megabytes,
                }
            )
        return pd.DataFrame(rows).set_index("cached up to layer")
