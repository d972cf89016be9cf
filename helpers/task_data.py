"""Task data: each task's sentences and labels, seeded subsets of them, and the batches drawn.

The two tasks come from different data sets, so an example carries a label for one task only:
`TaskData` holds one task's examples (sentences and class indices), and a run's data is a mapping
`{task: TaskData}` (`helpers.data.tasks` loads the series' two tasks and cuts seeded subsets).
Every batch holds examples of one task only: `task_probabilities` says how often each task is
drawn (proportional to its size, uniform, or in between with a temperature), and
`TaskBatchSampler` yields the `(task, example indices)` batches of an epoch.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from helpers.checks import check_int, check_number, check_texts
from helpers.losses import IGNORE_INDEX
from helpers.punctuation import strip_terminal_punctuation

if TYPE_CHECKING:
    from helpers.model import MultiTaskModel


@dataclass
class TaskData:
    """One task's examples: sentences and label indices into `model.task_labels[task]`.

    `texts` is a sequence of n strings, `labels` n class indices >= 0 (any integer dtype, or floats
    holding whole numbers), stored as int64. Raises TypeError for a text that is not a string or
    labels that are not numbers or texts that are unordered (a set, a dict, a DataFrame), ValueError
    for a length mismatch, a NaN, fractional, negative or too large (int64 overflow) label (naming
    its position); whether a label is below the task's label count is checked where
    the model is known (`train_multitask`, `evaluate`).
    """

    texts: list[str]
    labels: np.ndarray

    def __post_init__(self):
        if isinstance(self.texts, str):
            raise TypeError(f"texts must be a list of sentences, got the single string {self.texts[:40]!r}")
        self.texts = check_texts(self.texts)
        self.labels = _check_labels(self.labels)
        if len(self.texts) != len(self.labels):
            raise ValueError(f"{len(self.texts)} texts but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: Sequence[int]) -> TaskData:
        """The examples at `indices` (whole numbers 0..len-1, in the order given). TypeError for a
        boolean mask or non-integer indices; IndexError for a negative or too large index."""
        array = np.asarray(indices)
        if array.dtype.kind == "b":
            raise TypeError("subset takes row indices, not a boolean mask; use np.flatnonzero(mask)")
        if array.ndim != 1 or (array.size and array.dtype.kind not in "iu"):
            raise TypeError(
                f"indices must be a sequence of whole numbers, got {array.dtype} of shape {array.shape}"
            )
        bad = np.flatnonzero((array < 0) | (array >= len(self))) if array.size else []
        if len(bad):
            raise IndexError(
                f"index {array[bad[0]]} at position {bad[0]} is out of range: indices must be "
                f"0..{len(self) - 1} (negative indices are refused)"
            )
        return TaskData([self.texts[i] for i in indices], self.labels[np.asarray(indices, dtype=np.int64)])

    def without_terminal_punctuation(self) -> TaskData:
        """The same examples with final punctuation (and closing quotes) removed from every sentence."""
        return TaskData([strip_terminal_punctuation(text) for text in self.texts], self.labels.copy())

    def with_punctuation_dropout(self, rate: float, seed: int = 0) -> TaskData:
        """The same examples with the final punctuation removed from a seeded random share `rate` of them.

        Exactly round(rate * n) sentences are stripped, the same ones for the same seed: a
        validation split that matches training with `TrainingConfig.punctuation_dropout=rate`, so
        that a model trained to cope without the mark is also selected on sentences without it.
        Raises ValueError for a rate outside 0..1 (TypeError unless it is a number) or a bad seed.
        """
        check_number("rate", rate, 0.0, 1.0)
        check_int("seed", seed, 0, 2**32 - 1)
        chosen = set(np.random.default_rng(seed).permutation(len(self))[: round(rate * len(self))].tolist())
        texts = [strip_terminal_punctuation(t) if i in chosen else t for i, t in enumerate(self.texts)]
        return TaskData(texts, self.labels.copy())


def _check_labels(labels) -> np.ndarray:
    """Labels as an int64 vector of class indices; errors name the first offending position."""
    if isinstance(labels, str):
        raise TypeError(f"labels must be class indices, got the string {labels!r}")
    array = np.asarray(labels)
    if array.ndim != 1:
        raise ValueError(f"labels must be one-dimensional, got shape {array.shape}")
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if array.dtype.kind == "O":  # e.g. pandas' nullable Int64: whole numbers (or NA) as objects
        for position, value in enumerate(array):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise ValueError(f"label {value!r} at position {position} is not a whole number")
            if not 0 <= value <= np.iinfo(np.int64).max:
                raise ValueError(
                    f"label {value} at position {position} is outside 0..{np.iinfo(np.int64).max}"
                )
        array = array.astype(np.int64)
    if array.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(array) | (array != np.round(array)))
        if bad.size:
            raise ValueError(f"label {array[bad[0]]} at position {bad[0]} is not a whole number")
    elif array.dtype.kind not in "iu":
        raise TypeError(
            f"labels must be integer class indices, got dtype {array.dtype} (first: {array[0]!r}); "
            "turn label names into indices with `task_data`"
        )
    too_large = np.flatnonzero(
        array >= 2.0**63 if array.dtype.kind == "f" else array > np.iinfo(np.int64).max
    )
    if too_large.size:  # casting would wrap round (uint64 2**64-1 to -1, 1e20 to int64's minimum)
        raise ValueError(
            f"label {array[too_large[0]]} at position {too_large[0]} is too large for a class index "
            f"(allowed: 0..{np.iinfo(np.int64).max}, and below the task's label count)"
        )
    negative = np.flatnonzero(array < 0)
    if negative.size:
        raise ValueError(
            f"label {array[negative[0]]} at position {negative[0]} is negative: labels are class "
            f"indices 0..n_labels-1 (IGNORE_INDEX={IGNORE_INDEX} is the training loop's own marker)"
        )
    return array.astype(np.int64)


def check_task_data(
    model: MultiTaskModel, data, name: str, require_examples: bool = False, check_labels: bool = True
) -> None:
    """Every task known to the model, TaskData, labels within its head's labels (and examples, if asked)."""
    what = name if name == "data" else f"{name} data"  # "train data", not "data data"
    if not isinstance(data, Mapping):
        raise TypeError(f"{name} must map task names to TaskData, got {type(data).__name__}")
    unknown = sorted(set(data) - set(model.task_labels))
    if unknown:
        raise ValueError(f"{what} has tasks {unknown} that the model has no head for")
    for task, examples in data.items():
        if not isinstance(examples, TaskData):
            raise TypeError(f"{name}[{task!r}] must be TaskData, got {type(examples).__name__}")
        if require_examples and len(examples) == 0:
            raise ValueError(f"{what} for task {task!r} has no examples; leave the task out instead")
        n_labels = len(model.task_labels[task])
        too_high = np.flatnonzero(examples.labels >= n_labels) if check_labels else np.zeros(0, int)
        if too_high.size:
            raise ValueError(
                f"{what} for task {task!r} has label {examples.labels[too_high[0]]} at position "
                f"{too_high[0]}, but the model's {task!r} head has {n_labels} labels (0..{n_labels - 1})"
            )


# ----- sampling: which task each batch comes from, and which of its examples -------------------
SAMPLING_STRATEGIES = ("proportional", "uniform", "temperature")


def task_probabilities(sizes: Mapping[str, int], strategy: str, temperature: float = 2.0) -> dict[str, float]:
    """How often each task is drawn: proportional to its size, uniform, or size^(1/T) (temperature);
    sizes >= 1 and a positive temperature (checked by `TrainingConfig` and `TaskBatchSampler`)."""
    if strategy not in SAMPLING_STRATEGIES:
        raise ValueError(f"unknown sampling strategy {strategy!r}; choose one of {SAMPLING_STRATEGIES}")
    exponent = {"proportional": 1.0, "uniform": 0.0, "temperature": 1.0 / temperature}[strategy]
    weights = {task: size**exponent for task, size in sizes.items()}
    total = sum(weights.values())
    return {task: weight / total for task, weight in weights.items()}


class TaskBatchSampler:
    """Yields `(task, example indices)` batches, one task per batch.

    - `proportional`: every epoch cuts each task's shuffled examples into batches and shuffles the
      list of all tasks' batches, so an epoch sees every example exactly once and each task gets
      batches in proportion to its size (a task's batches differ in size by one at most);
    - `uniform`: tasks take turns (round-robin), so a small task is seen as often as a large one;
    - `temperature`: a task is drawn at random with probability proportional to size^(1/T).
    For the last two, a task's examples are reshuffled whenever they run out; an epoch has as many
    batches as the data has full batches. With `lengths`, each shuffle is cut into pools of
    `pool_batches` batches sorted by length before batching (little compute goes to padding, while
    which sentences meet in a batch stays random).

    Under distributed training every rank holds a shard of each task: the ranks pass the global
    sizes (`probability_sizes`), the global number of steps and the number of `processes`, so that
    they all draw the same task at every step, and an `index_seed` of their own to shuffle their
    shard. Tasks are drawn from the global task list, so every shard must hold at least one example
    of every task (ValueError).
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
        processes: int = 1,
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
        global_sizes = probability_sizes or self.sizes  # proportional: batches per task and epoch
        self.batches_per_epoch = {
            task: math.ceil(math.ceil(global_sizes[task] / processes) / batch_size) for task in self.tasks
        }
        self._order: list[str] = []  # proportional: the tasks of this epoch's remaining batches

    def __len__(self) -> int:
        if self.strategy == "proportional":
            return sum(self.batches_per_epoch.values())
        return self.steps_per_epoch

    def _next_task(self) -> str:
        if self.strategy == "uniform":
            task = self.tasks[self._turn % len(self.tasks)]
            self._turn += 1
            return task
        return self.tasks[
            self.task_rng.choice(len(self.tasks), p=[self.probabilities[t] for t in self.tasks])
        ]

    def _sorted_in_pools(self, task: str, order: np.ndarray) -> np.ndarray:
        """`order` with each pool of `batch_size * pool_batches` examples sorted by length (if known)."""
        if self.lengths is None:
            return order
        pool = self.batch_size * self.pool_batches
        chunks = (order[i : i + pool] for i in range(0, len(order), pool))
        return np.concatenate(
            [chunk[np.argsort(self.lengths[task][chunk], kind="stable")] for chunk in chunks]
        )

    def _batches_of_one_pass(self, task: str) -> list[np.ndarray]:
        """One reshuffle of a task's examples, cut into batches (length-grouped when lengths are known)."""
        order = self._sorted_in_pools(task, self.index_rng.permutation(self.sizes[task]))
        batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        return (
            batches
            if self.lengths is None
            else [batches[i] for i in self.index_rng.permutation(len(batches))]
        )

    def _take(self, task: str) -> np.ndarray:
        if not self._queues[task]:
            self._queues[task] = self._batches_of_one_pass(task)
        return self._queues[task].pop(0)

    def _epoch_of_batches(self, task: str) -> list[np.ndarray]:
        """Proportional: the task's examples once, shuffled (length-grouped when lengths are known),
        cut into `batches_per_epoch[task]` batches whose sizes differ by one at most, in random order."""
        order, wanted = self.index_rng.permutation(self.sizes[task]), self.batches_per_epoch[task]
        if len(order) < wanted:  # a shard smaller than the global batch count: repeat a few examples
            order = np.concatenate([order, order[: wanted - len(order)]])
        batches = np.array_split(self._sorted_in_pools(task, order), wanted)
        return [batches[i] for i in self.index_rng.permutation(wanted)]

    def __iter__(self) -> Iterator[tuple[str, np.ndarray]]:
        if self.strategy != "proportional":
            for _ in range(len(self)):
                task = self._next_task()
                yield task, self._take(task)
            return
        if not self._order:  # a new epoch (else: going on with a resumed one)
            self._order = [task for task in self.tasks for _ in range(self.batches_per_epoch[task])]
            self._order = [self._order[i] for i in self.task_rng.permutation(len(self._order))]
            self._queues = {task: self._epoch_of_batches(task) for task in self.tasks}
        while self._order:
            task = self._order.pop(0)
            yield task, self._queues[task].pop(0)

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
            "order": list(self._order),
        }

    def load_state_dict(self, state: dict) -> None:
        self.task_rng.bit_generator.state = state["task_rng"]
        self.index_rng.bit_generator.state = state["index_rng"]
        self._queues = {
            task: [np.asarray(batch, dtype=np.int64) for batch in queue]
            for task, queue in state["queues"].items()
        }
        self._turn = state["turn"]
        self._order = list(state["order"])
