"""Task sampling: which task each batch comes from, and which of its examples.

Every batch holds examples of one task only. `task_probabilities` says how often each task is
drawn (proportional to its size, uniform, or in between with a temperature), and
`TaskBatchSampler` yields the `(task, example indices)` batches of an epoch.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import torch

from helpers.encoder import check_int, check_number

SAMPLING_STRATEGIES = ("proportional", "uniform", "temperature")


def task_probabilities(sizes: Mapping[str, int], strategy: str, temperature: float = 2.0) -> dict[str, float]:
    """How often each task is drawn: proportional to its size, uniform, or size^(1/T) (temperature).

    Sizes must be at least 1 and `temperature` positive (ValueError otherwise).
    """
    if strategy not in SAMPLING_STRATEGIES:
        raise ValueError(f"unknown sampling strategy {strategy!r}; choose one of {SAMPLING_STRATEGIES}")
    if not sizes:
        raise ValueError("task_probabilities needs at least one task")
    for task, size in sizes.items():
        check_int(f"the size of task {task!r}", size, 1)
    check_number("temperature", temperature, 0.0, low_open=True)
    exponent = {"proportional": 1.0, "uniform": 0.0, "temperature": 1.0 / temperature}[strategy]
    weights = {task: size**exponent for task, size in sizes.items()}
    total = sum(weights.values())
    return {task: weight / total for task, weight in weights.items()}


class TaskBatchSampler:
    """Yields `(task, example indices)` batches, one task per batch.

    - `proportional`: a task is drawn with probability proportional to its size, so an epoch sees
      every example about once;
    - `uniform`: tasks take turns (round-robin), so a small task is seen as often as a large one;
    - `temperature`: probability proportional to size^(1/T), in between the two.
    Each task's examples are reshuffled whenever they run out. An epoch has as many batches as the
    data has full batches, whatever the strategy. With `lengths`, each reshuffle is cut into pools of
    `pool_batches` batches whose examples are sorted by length before batching, and the batches are
    shuffled again: batches hold sentences of similar length, so little compute goes to padding,
    while which sentences meet in a batch stays random.

    Under distributed training every rank holds a shard of each task: the ranks pass the global
    sizes (`probability_sizes`) and the global number of steps, so that they all draw the same task
    at every step, and an `index_seed` of their own to shuffle their shard. Tasks are drawn from the
    global task list, so every shard must hold at least one example of every task (ValueError).
    """

    def __init__(
        self,
        sizes: Mapping[str, int],
        batch_size: int,
        strategy: str = "proportional",
        temperature: float = 2.0,
        seed: int = 0,
        *,
        probability_sizes: Mapping[str, int] | None = None,
        steps_per_epoch: int | None = None,
        index_seed: int | None = None,
        lengths: Mapping[str, Sequence[int]] | None = None,
        pool_batches: int = 50,
    ):
        check_int("batch_size", batch_size, 1)
        check_int("pool_batches", pool_batches, 1)
        if probability_sizes is not None and set(probability_sizes) != set(sizes):
            raise ValueError(
                f"probability_sizes has tasks {list(probability_sizes)}, sizes {list(sizes)}: they must match"
            )
        for task, size in sizes.items():
            if check_int(f"the size of task {task!r}", size, 0) == 0:
                raise ValueError(
                    f"task {task!r} has no examples here: every process needs at least one example of "
                    "every task (leave the task out, or use fewer processes)"
                )
        self.sizes = dict(sizes)
        self.batch_size = batch_size
        self.strategy = strategy
        self.probabilities = task_probabilities(
            {task: (probability_sizes or self.sizes)[task] for task in self.sizes}, strategy, temperature
        )
        self.steps_per_epoch = steps_per_epoch or max(1, math.ceil(sum(self.sizes.values()) / batch_size))
        self.task_rng = np.random.default_rng(seed)
        self.index_rng = self.task_rng if index_seed is None else np.random.default_rng(index_seed)
        self.tasks = list(self.sizes)
        self.lengths = {task: np.asarray(lengths[task]) for task in self.tasks} if lengths else None
        self.pool_batches = pool_batches
        self._queues: dict[str, list[np.ndarray]] = {task: [] for task in self.tasks}
        self._turn = 0

    def __len__(self) -> int:
        return self.steps_per_epoch

    def _next_task(self) -> str:
        if self.strategy == "uniform":
            task = self.tasks[self._turn % len(self.tasks)]
            self._turn += 1
            return task
        return self.tasks[
            self.task_rng.choice(len(self.tasks), p=[self.probabilities[t] for t in self.tasks])
        ]

    def _batches_of_one_pass(self, task: str) -> list[np.ndarray]:
        """One reshuffle of a task's examples, cut into batches (length-grouped when lengths are known)."""
        order = self.index_rng.permutation(self.sizes[task])
        if self.lengths is None:
            return [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        batches = []
        pool = self.batch_size * self.pool_batches
        for start in range(0, len(order), pool):
            chunk = order[start : start + pool]
            chunk = chunk[np.argsort(self.lengths[task][chunk], kind="stable")]
            batches += [chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size)]
        return [batches[i] for i in self.index_rng.permutation(len(batches))]

    def _take(self, task: str) -> np.ndarray:
        if not self._queues[task]:
            self._queues[task] = self._batches_of_one_pass(task)
        return self._queues[task].pop(0)

    def __iter__(self) -> Iterator[tuple[str, np.ndarray]]:
        for _ in range(len(self)):
            task = self._next_task()
            yield task, self._take(task)

    def state_dict(self) -> dict:
        """Everything needed to continue the same sequence of batches (for checkpoints)."""
        return {
            "task_rng": self.task_rng.bit_generator.state,
            "index_rng": self.index_rng.bit_generator.state,
            "queues": {
                task: [torch.from_numpy(batch.copy()) for batch in queue]
                for task, queue in self._queues.items()
            },
            "turn": self._turn,
        }

    def load_state_dict(self, state: dict) -> None:
        self.task_rng.bit_generator.state = state["task_rng"]
        self.index_rng.bit_generator.state = state["index_rng"]
        self._queues = {
            task: [np.asarray(batch, dtype=np.int64) for batch in queue]
            for task, queue in state["queues"].items()
        }
        self._turn = state["turn"]
