"""The multi-task training loop: heterogeneous data, task sampling, loss weighting, evaluation.

The two tasks come from different data sets, so an example carries a label for one task only.
Every batch holds a label tensor per task with `IGNORE_INDEX` where the label is missing, and the
loss of each task is computed over the examples that have its label; a task with no labels in a
batch adds nothing and its head gets no gradient.

When the lowest layers of the encoder are frozen (see `helpers.freezing`), their output never
changes: `PrefixCache` computes it once per sentence, and training runs only the layers above.
With the whole backbone frozen, the cache holds the pooled sentence embeddings and only the heads
run, so the data is not re-encoded every epoch.
"""

from __future__ import annotations

import math
import numbers
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from helpers.data import TASK_LABELS, load_sentence_types, load_sentiment, strip_terminal_punctuation
from helpers.encoder import batch_order, check_bool, check_int, check_number, check_texts
from helpers.freezing import frozen_prefix_length, parameter_groups
from helpers.memory import release_memory, trim_heap
from helpers.metrics import CLASSIFICATION_METRICS, classification_scores
from helpers.model import MultiTaskModel, eval_mode, modes_restored

IGNORE_INDEX = -100
SAMPLING_STRATEGIES = ("proportional", "uniform", "temperature")
LOSS_WEIGHTINGS = ("sum", "fixed", "uncertainty")
TRIM_EVERY_STEPS = 5  # how often the loop hands freed memory back to the operating system


@dataclass
class TaskData:
    """One task's examples: sentences and label indices into `model.task_labels[task]`.

    `texts` is a sequence of n strings, `labels` n class indices >= 0 (any integer dtype, or floats
    holding whole numbers), stored as int64. Raises TypeError for a text that is not a string or
    labels that are not numbers, ValueError for a length mismatch, a NaN, fractional or negative
    label (naming its position); whether a label is below the task's label count is checked where
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
        return TaskData([self.texts[i] for i in indices], self.labels[np.asarray(indices, dtype=np.int64)])

    def without_terminal_punctuation(self) -> TaskData:
        """The same examples with final punctuation (and closing quotes) removed from every sentence."""
        return TaskData([strip_terminal_punctuation(text) for text in self.texts], self.labels.copy())


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
    negative = np.flatnonzero(array < 0)
    if negative.size:
        raise ValueError(
            f"label {array[negative[0]]} at position {negative[0]} is negative: labels are class "
            f"indices 0..n_labels-1 (IGNORE_INDEX={IGNORE_INDEX} is the training loop's own marker)"
        )
    return array.astype(np.int64)


def task_data(frame: pd.DataFrame, labels: Sequence[str]) -> TaskData:
    """Turn a data frame with `text` and `label` columns into `TaskData` for a task with these labels."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"frame must be a pandas DataFrame, got {type(frame).__name__}")
    missing = [column for column in ("text", "label") if column not in frame.columns]
    if missing:
        raise ValueError(f"frame lacks the column(s) {missing}; it has {list(frame.columns)}")
    index = {label: i for i, label in enumerate(labels)}
    unknown = sorted(set(frame["label"]) - set(index))
    if unknown:
        raise ValueError(f"labels {unknown} are not among {list(labels)}")
    return TaskData(frame["text"].tolist(), frame["label"].map(index).to_numpy())


def load_task_data(split: str) -> dict[str, TaskData]:
    """The series' two tasks for one split (`train`, `validation` or `test`) as `TaskData`."""
    return {
        "sentence_type": task_data(load_sentence_types(split), TASK_LABELS["sentence_type"]),
        "sentiment": task_data(load_sentiment(split), TASK_LABELS["sentiment"]),
    }


def limit_per_task(
    data: Mapping[str, TaskData], max_per_task: int | Mapping[str, int] | None, seed: int = 0
) -> dict[str, TaskData]:
    """A seeded, stratified subset of at most `max_per_task` examples of each task (all when None).

    `max_per_task` is one number (>= 1) for every task, or one per task (a task not named keeps
    all). Each label keeps its share of the examples, rounded, and at least one example while the
    limit allows; where rounding would exceed the limit, the labels given the most beyond their exact
    share lose one each. Raises ValueError for a limit below 1 or for a task name not in `data`.
    """
    if max_per_task is None:
        return dict(data)
    if isinstance(max_per_task, Mapping):
        unknown = sorted(set(max_per_task) - set(data))
        if unknown:
            raise ValueError(f"max_per_task names tasks {unknown} that are not in the data {list(data)}")
        limits = {task: check_int(f"max_per_task[{task!r}]", n, 1) for task, n in max_per_task.items()}
    else:
        limits = dict.fromkeys(data, check_int("max_per_task", max_per_task, 1))
    limited = {}
    rng = np.random.default_rng(seed)
    for task, examples in data.items():
        limit = limits.get(task, len(examples))
        if len(examples) <= limit:
            limited[task] = examples
            continue
        labels = np.unique(examples.labels)
        members = [np.flatnonzero(examples.labels == label) for label in labels]
        quotas = [limit * len(group) / len(examples) for group in members]  # exact shares
        shares = [min(max(1, round(quota)), len(group)) for quota, group in zip(quotas, members, strict=True)]
        kept = list(shares)
        while sum(kept) > limit:  # rounding up and the one-per-label minimum can overshoot
            floor = 1 if any(k > 1 for k in kept) else 0  # keep one per label while the limit allows
            surplus = [k - q if k > floor else -math.inf for k, q in zip(kept, quotas, strict=True)]
            kept[int(np.argmax(surplus))] -= 1
        chosen = []
        for group, share, keep in zip(members, shares, kept, strict=True):
            # draw as many as before and keep the first ones: the other labels' draws do not change
            chosen.extend(rng.choice(group, size=share, replace=False)[:keep])
        limited[task] = examples.subset(sorted(chosen))
    return limited


def random_rows(
    data: Mapping[str, TaskData], sizes: Mapping[str, int], seed: int = 0
) -> dict[str, np.ndarray]:
    """Seeded random row indices: `sizes[task]` of each task's examples (all of a task not in `sizes`).

    Use them to cut the data (`TaskData.subset`) and its prefix caches (`PrefixCache.subset`) alike.
    """
    unknown = sorted(set(sizes) - set(data))
    if unknown:
        raise ValueError(f"sizes names tasks {unknown} that are not in the data {list(data)}")
    for task, size in sizes.items():
        check_int(f"sizes[{task!r}]", size, 0)
    rng = np.random.default_rng(seed)
    return {
        task: np.sort(rng.permutation(len(examples))[: sizes.get(task, len(examples))])
        for task, examples in data.items()
    }


# ----- which task each batch comes from ---------------------------------------------------------
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


# ----- how the task losses are combined ------------------------------------------------------------
class LossCombiner(nn.Module):
    """Combine per-task losses into one number to minimise.

    - `sum`: L = sum_t L_t;
    - `fixed`: L = sum_t w_t L_t with given weights;
    - `uncertainty`: L = sum_t exp(-s_t) L_t + s_t / 2, with s_t = log sigma_t^2 learned
      (Kendall, Gal & Cipolla, 2018): a task whose loss stays noisy is down-weighted automatically,
      and the s_t / 2 term stops the weights from collapsing to zero.
    """

    def __init__(
        self, tasks: Sequence[str], strategy: str = "sum", weights: Mapping[str, float] | None = None
    ):
        super().__init__()
        if strategy not in LOSS_WEIGHTINGS:
            raise ValueError(f"unknown loss weighting {strategy!r}; choose one of {LOSS_WEIGHTINGS}")
        if strategy == "fixed" and (weights is None or set(weights) != set(tasks)):
            raise ValueError("fixed loss weighting needs one weight per task")
        self.strategy = strategy
        self.tasks = list(tasks)
        self.weights = dict(weights) if weights else {task: 1.0 for task in tasks}
        self.log_variances = nn.ParameterDict(
            {task: nn.Parameter(torch.zeros(())) for task in tasks} if strategy == "uncertainty" else {}
        )

    def forward(self, task_losses: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The combined loss (a scalar tensor); ValueError when no task has a loss (no labels at all)."""
        if not task_losses:
            raise ValueError("no task has a labelled example in this batch, so there is no loss to combine")
        total = 0.0
        for task, loss in task_losses.items():
            if self.strategy == "uncertainty":
                log_variance = self.log_variances[task]
                total = total + torch.exp(-log_variance) * loss + 0.5 * log_variance
            else:
                total = total + self.weights[task] * loss
        return total

    def task_weights(self) -> dict[str, float]:
        """The current effective weight of each task's loss."""
        if self.strategy == "uncertainty":
            return {task: float(torch.exp(-value.detach())) for task, value in self.log_variances.items()}
        return dict(self.weights)


def masked_task_losses(
    logits: Mapping[str, torch.Tensor], labels: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Cross-entropy per task over the examples that carry its label; tasks with none are left out."""
    losses = {}
    for task, task_logits in logits.items():
        task_labels = labels[task].to(task_logits.device)
        if (task_labels != IGNORE_INDEX).any():
            losses[task] = nn.functional.cross_entropy(
                task_logits.float(), task_labels, ignore_index=IGNORE_INDEX
            )
    return losses


def batch_labels(tasks: Sequence[str], task: str, labels: np.ndarray) -> dict[str, torch.Tensor]:
    """Label tensors for every task; only `task`'s are known, the others are IGNORE_INDEX."""
    known = torch.as_tensor(labels, dtype=torch.long)
    return {other: known if other == task else torch.full_like(known, IGNORE_INDEX) for other in tasks}


# ----- frozen-prefix caching ---------------------------------------------------------------------
class PrefixCache:
    """The frozen part of the encoder, computed once per sentence.

    With the embeddings and the lowest `prefix` layers frozen, the token states that leave layer
    `prefix` depend only on the sentence. `build` stores them without padding, all sentences in one
    flat tensor (one allocation, not thousands), and `encode` re-pads a batch and runs only the
    layers above (`storage_dtype=torch.float16` halves the memory at ~1e-4 error in the logits).
    With all layers frozen, the pooled sentence embeddings are stored instead and only the heads
    run; `from_sentence_embeddings` wraps embeddings computed elsewhere (e.g. the disk cache).
    """

    def __init__(self, states: torch.Tensor, lengths: Sequence[int], prefix: int, sentence_level: bool):
        self.states = states  # (total tokens, width), or (sentences, width) when sentence_level
        self.lengths = torch.as_tensor(lengths, dtype=torch.long)
        self.offsets = torch.cumsum(self.lengths, 0) - self.lengths
        self.prefix = prefix
        self.sentence_level = sentence_level

    @classmethod
    def build(
        cls,
        model: MultiTaskModel,
        texts: Sequence[str],
        prefix: int,
        batch_size: int = 64,
        storage_dtype: torch.dtype = torch.float32,
    ) -> PrefixCache:
        """Run the frozen prefix once over `texts` (length-sorted batches, inference mode).

        `prefix` is 0..number of layers (all layers: pooled sentence embeddings are stored).
        The model's train/eval modes are left as they were.
        """
        texts = check_texts(texts)
        check_int("prefix", prefix, 0, len(model.layers))
        check_int("batch_size", batch_size, 1)
        order = batch_order(texts)

        def batches():
            for start in range(0, len(texts), batch_size):
                rows = order[start : start + batch_size]
                batch = model.tokenize([texts[i] for i in rows])
                yield rows, model.hidden_states_at(batch, prefix), batch["attention_mask"]

        return cls._collect(model, batches(), len(texts), prefix, storage_dtype)

    def advanced(self, model: MultiTaskModel, prefix: int, batch_size: int = 64) -> PrefixCache:
        """This cache moved up to layer `prefix`, running only the layers in between over the cached states.

        Cheaper than `build` when several prefixes are needed: caches after layers 3, 4 and 5 cost
        three layers once and then one layer each, instead of 3 + 4 + 5. The states agree with
        `build(model, texts, prefix)` to float precision.
        """
        if self.sentence_level or not self.prefix <= prefix <= len(model.layers):
            raise ValueError(f"cannot move a cache after layer {self.prefix} to layer {prefix}")
        if prefix == self.prefix:
            return self
        order = np.argsort(-self.lengths.numpy(), kind="stable")

        def batches():
            for start in range(0, len(self), batch_size):
                rows = order[start : start + batch_size]
                hidden, mask = self._padded(rows)
                hidden, mask = hidden.to(model.device), mask.to(model.device)
                yield rows, model.run_layers(hidden, mask, self.prefix, prefix), mask

        return self._collect(model, batches(), len(self), prefix, self.states.dtype)

    @classmethod
    def _collect(cls, model, batches, count, prefix, storage_dtype) -> PrefixCache:
        """Store the token states of `batches` (rows, hidden, attention mask) unpadded, in the rows' order."""
        sentence_level = prefix == len(model.layers)
        pieces: list[torch.Tensor] = [None] * count
        with eval_mode(model), torch.inference_mode():
            for rows, hidden, attention_mask in batches:
                if sentence_level:
                    pooled = model.encode_from_layer(hidden, attention_mask, prefix).float().cpu()
                    for row, vector in zip(rows, pooled, strict=True):
                        pieces[row] = vector[None]
                else:
                    lengths = attention_mask.sum(dim=1).tolist()
                    states = hidden.to(storage_dtype).cpu()
                    for row, sentence_states, length in zip(rows, states, lengths, strict=True):
                        pieces[row] = sentence_states[:length]
        release_memory()  # the batches' temporary activations
        if not pieces:
            width = model.backbone.config.hidden_size
            return cls(torch.zeros(0, width), [], prefix, sentence_level)
        return cls(torch.cat(pieces), [len(piece) for piece in pieces], prefix, sentence_level)

    @classmethod
    def from_sentence_embeddings(cls, embeddings: np.ndarray, model: MultiTaskModel) -> PrefixCache:
        """Wrap precomputed sentence embeddings, (sentences, hidden size) float, as a sentence-level cache.

        They must match the model's pooling and normalisation (that is not checked); ValueError for
        another shape or a NaN/infinite value.
        """
        vectors = torch.as_tensor(np.asarray(embeddings, dtype=np.float32))
        width = model.backbone.config.hidden_size
        if vectors.ndim != 2 or vectors.shape[1] != width:
            raise ValueError(f"embeddings must have shape (sentences, {width}), got {tuple(vectors.shape)}")
        if not torch.isfinite(vectors).all():
            raise ValueError("embeddings hold NaN or infinite values")
        return cls(vectors, [1] * len(vectors), len(model.layers), sentence_level=True)

    def __len__(self) -> int:
        return len(self.lengths)

    def subset(self, indices: Sequence[int]) -> PrefixCache:
        """A cache of the sentences `indices` only (a copy), in that order, to match `TaskData.subset`."""
        indices = np.asarray(indices, dtype=np.int64)
        pieces = [self.states[offset : offset + length] for offset, length in self._spans(indices)]
        states = torch.cat(pieces) if pieces else self.states[:0].clone()
        return PrefixCache(states, self.lengths[indices].tolist(), self.prefix, self.sentence_level)

    def _spans(self, indices: np.ndarray) -> list[tuple[int, int]]:
        return list(zip(self.offsets[indices].tolist(), self.lengths[indices].tolist(), strict=True))

    @property
    def nbytes(self) -> int:
        """Memory held by the cached states."""
        return self.states.element_size() * self.states.nelement()

    def encode(self, model: MultiTaskModel, indices: Sequence[int]) -> torch.Tensor:
        """Sentence embeddings of the cached sentences `indices`, running only the unfrozen layers."""
        indices = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        if self.sentence_level:
            return self.states[indices].to(model.device)
        hidden, mask = self._padded(indices.numpy())
        return model.encode_from_layer(hidden.to(model.device), mask.to(model.device), self.prefix)

    def _padded(self, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """The cached states of `indices` as one zero-padded float32 batch, with its attention mask."""
        longest = int(self.lengths[indices].max())
        hidden = torch.zeros(len(indices), longest, self.states.shape[1], dtype=torch.float32)
        mask = torch.zeros(len(indices), longest, dtype=torch.long)
        for row, (offset, length) in enumerate(self._spans(indices)):
            hidden[row, :length] = self.states[offset : offset + length].float()
            mask[row, :length] = 1
        return hidden, mask


def build_prefix_caches(
    model: MultiTaskModel,
    data: Mapping[str, TaskData],
    prefix: int | None = None,
    storage_dtype: torch.dtype = torch.float32,
    start_from: Mapping[str, PrefixCache] | None = None,
) -> dict[str, PrefixCache]:
    """One `PrefixCache` per task, for the model's current frozen prefix (or the one given).

    With `start_from` (caches of the same data at a lower prefix), only the layers in between run.
    """
    _check_task_data(model, data, "data", check_labels=False)
    prefix = frozen_prefix_length(model) if prefix is None else prefix
    if start_from is not None:
        for task, examples in data.items():
            if len(start_from[task]) != len(examples):
                raise ValueError(f"the cache for {task!r} does not hold the {len(examples)} sentences given")
        return {task: start_from[task].advanced(model, prefix) for task in data}
    return {
        task: PrefixCache.build(model, examples.texts, prefix, storage_dtype=storage_dtype)
        for task, examples in data.items()
    }


# ----- the loop ------------------------------------------------------------------------------------
@dataclass
class TrainingConfig:
    """Everything that defines a training run (saved next to the model by the CLI)."""

    epochs: int = 3
    batch_size: int = 32
    encoder_lr: float = 5e-5
    head_lr: float = 1e-3
    layer_decay: float = 1.0  # < 1: lower layers learn slower (layer-wise learning-rate decay)
    gradual_unfreezing: bool = False  # trainable layers join one by one, top first (ULMFiT)
    weight_decay: float = 0.01
    warmup_fraction: float = 0.1
    max_grad_norm: float = 1.0
    sampling: str = "proportional"
    temperature: float = 2.0
    loss_weighting: str = "sum"
    loss_weights: dict[str, float] | None = None
    punctuation_dropout: float = 0.0  # probability of stripping a sentence-type example's final punctuation
    punctuation_tasks: tuple[str, ...] = ("sentence_type",)
    patience: int = 2  # early stopping: evaluations without a better validation score before stopping
    evaluations_per_epoch: int = 1  # > 1: also evaluate (and keep the best model) within each epoch
    use_prefix_cache: bool = True
    eval_batch_size: int = 32  # larger batches are no faster on a CPU and their activations cost memory
    gradient_checkpointing: bool = False  # recompute activations in the backward pass: less memory, slower
    seed: int = 0
    progress: bool = True
    amp: bool | None = None  # mixed precision; None = on when training on CUDA

    def __post_init__(self):
        """Check every field once, here: TypeError/ValueError naming the field, the value and the range."""
        for name, value in vars(self).items():  # numpy scalars become Python numbers (checkpoints hold those)
            if isinstance(value, np.generic):
                setattr(self, name, value.item())
        if isinstance(self.loss_weights, Mapping):
            self.loss_weights = {
                task: weight.item() if isinstance(weight, np.generic) else weight
                for task, weight in self.loss_weights.items()
            }
        for name in ("epochs", "batch_size", "patience", "evaluations_per_epoch", "eval_batch_size"):
            check_int(f"TrainingConfig.{name}", getattr(self, name), 1)
        check_int("TrainingConfig.seed", self.seed, 0)
        check_number("TrainingConfig.encoder_lr", self.encoder_lr, 0.0)
        check_number("TrainingConfig.head_lr", self.head_lr, 0.0)
        check_number("TrainingConfig.layer_decay", self.layer_decay, 0.0, low_open=True)
        check_number("TrainingConfig.weight_decay", self.weight_decay, 0.0)
        check_number("TrainingConfig.warmup_fraction", self.warmup_fraction, 0.0, 1.0)
        check_number("TrainingConfig.max_grad_norm", self.max_grad_norm, 0.0, low_open=True)
        check_number("TrainingConfig.temperature", self.temperature, 0.0, low_open=True)
        check_number("TrainingConfig.punctuation_dropout", self.punctuation_dropout, 0.0, 1.0)
        for name in ("gradual_unfreezing", "use_prefix_cache", "gradient_checkpointing", "progress"):
            check_bool(f"TrainingConfig.{name}", getattr(self, name))
        if self.amp is not None:
            check_bool("TrainingConfig.amp", self.amp)
        if self.sampling not in SAMPLING_STRATEGIES:
            raise ValueError(
                f"unknown sampling strategy {self.sampling!r}; choose one of {SAMPLING_STRATEGIES}"
            )
        if self.loss_weighting not in LOSS_WEIGHTINGS:
            raise ValueError(
                f"unknown loss weighting {self.loss_weighting!r}; choose one of {LOSS_WEIGHTINGS}"
            )
        if self.loss_weights is not None:
            if not isinstance(self.loss_weights, Mapping):
                raise TypeError(
                    f"TrainingConfig.loss_weights must map tasks to weights, got {self.loss_weights!r}"
                )
            for task, weight in self.loss_weights.items():
                check_number(f"TrainingConfig.loss_weights[{task!r}]", weight, 0.0)
        if self.loss_weighting == "fixed" and not self.loss_weights:
            raise ValueError("TrainingConfig.loss_weighting='fixed' needs loss_weights, one per task")
        if isinstance(self.punctuation_tasks, str) or not all(
            isinstance(task, str) for task in self.punctuation_tasks
        ):
            raise TypeError(
                "TrainingConfig.punctuation_tasks must be a tuple of task names, "
                f"got {self.punctuation_tasks!r}"
            )
        self.punctuation_tasks = tuple(self.punctuation_tasks)


@dataclass
class TrainingResult:
    """What a run leaves behind: the validation history, a per-step log, the best epoch, the loss combiner.

    `history` has one row per evaluation (after every epoch, or more often), `steps` one row per
    optimiser step: the batch's task, that task's loss, the learning rate and the loss weights.
    """

    history: pd.DataFrame
    steps: pd.DataFrame
    best_epoch: float
    best_score: float
    stopped_early: bool
    loss_combiner: LossCombiner
    seconds: float
    examples_seen: int
    config: dict = field(default_factory=dict)

    @property
    def examples_per_second(self) -> float:
        return self.examples_seen / self.seconds if self.seconds else float("nan")

    def best_scores(self) -> dict[str, dict[str, float]]:
        """Validation accuracy and macro-F1 per task at the kept (best) evaluation.

        The model ends the run with exactly these weights, so this is what `evaluate` on the
        validation split would return, without encoding it once more.
        """
        best = self.history[self.history["epoch"] == self.best_epoch].iloc[0]
        tasks = [
            column.removesuffix("_macro_f1")
            for column in self.history.columns
            if column.endswith("_macro_f1") and column != "mean_macro_f1"
        ]
        return {
            task: {metric: float(best[f"{task}_{metric}"]) for metric in CLASSIFICATION_METRICS}
            for task in tasks
        }


class EarlyStopping:
    """Stop when the score has not improved for `patience` evaluations; remember the best state."""

    def __init__(self, patience: int):
        self.patience = check_int("patience", patience, 1)
        self.best_score = -math.inf
        self.best_epoch = 0
        self.best_state: dict | None = None
        self.bad_epochs = 0

    def update(self, score: float, epoch: int, model: nn.Module) -> bool:
        """Record one evaluation; return True when training should stop.

        Only trainable parameters are copied: frozen ones cannot have changed since.
        """
        if score > self.best_score:
            self.best_score, self.best_epoch, self.bad_epochs = score, epoch, 0
            self.best_state = {
                name: parameter.detach().clone()
                for name, parameter in model.named_parameters()
                if parameter.requires_grad
            }
        else:
            self.bad_epochs += 1
        return self.bad_epochs >= self.patience

    def restore_best(self, model: nn.Module) -> None:
        """Put the parameters of the best evaluation back into `model`."""
        parameters = dict(model.named_parameters())
        with torch.no_grad():
            for name, value in (self.best_state or {}).items():
                parameters[name].copy_(value)


def _batched_outputs(model, data, batch_size, caches, output) -> dict[str, np.ndarray]:
    """`output(task, sentence embeddings)` for each task's examples, in length-sorted batches."""
    check_int("batch_size", batch_size, 1)
    _check_task_data(model, data, "data", check_labels=False)  # predicting needs no labels
    for task, cache in (caches or {}).items():
        if task in data and len(cache) != len(data[task]):
            raise ValueError(
                f"the cache for {task!r} holds {len(cache)} sentences, the data {len(data[task])}"
            )
    results = {}
    with eval_mode(model), torch.inference_mode():
        for task, examples in data.items():
            parts, order = [], batch_order(examples.texts)
            for start in range(0, len(examples), batch_size):
                rows = order[start : start + batch_size]
                if caches is not None and task in caches:
                    embeddings = caches[task].encode(model, rows)
                else:
                    embeddings = model.encode(model.tokenize([examples.texts[i] for i in rows]))
                parts.append(output(task, embeddings).float().cpu().numpy())
                trim_heap()  # batch shapes vary, and glibc would keep each batch's activations
            stacked = np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)
            results[task] = stacked[np.argsort(order, kind="stable")]  # back to the data's order
    return results


def sentence_embeddings(
    model: MultiTaskModel,
    data: Mapping[str, TaskData],
    batch_size: int = 32,
    caches: Mapping[str, PrefixCache] | None = None,
) -> dict[str, np.ndarray]:
    """The model's (pooled, and normalised if the model normalises) sentence embeddings per task."""
    return _batched_outputs(model, data, batch_size, caches, lambda task, embeddings: embeddings)


def predict_probabilities(
    model: MultiTaskModel,
    data: Mapping[str, TaskData],
    batch_size: int = 32,
    caches: Mapping[str, PrefixCache] | None = None,
) -> dict[str, np.ndarray]:
    """Class probabilities per task for each task's own examples, shape (examples, classes)."""

    def probabilities(task, embeddings):
        return model.classify(embeddings, [task])[task].float().softmax(dim=-1)

    return _batched_outputs(model, data, batch_size, caches, probabilities)


def predict_labels(
    model: MultiTaskModel,
    data: Mapping[str, TaskData],
    batch_size: int = 32,
    caches: Mapping[str, PrefixCache] | None = None,
) -> dict[str, np.ndarray]:
    """Predicted label indices per task for each task's own examples (length-sorted batches)."""
    probabilities = predict_probabilities(model, data, batch_size, caches)
    return {task: values.argmax(axis=1).astype(np.int64) for task, values in probabilities.items()}


def evaluate(
    model: MultiTaskModel,
    data: Mapping[str, TaskData],
    batch_size: int = 32,
    caches: Mapping[str, PrefixCache] | None = None,
) -> dict[str, dict[str, float]]:
    """Accuracy and macro-F1 per task, each task scored on its own examples.

    Runs in eval mode and leaves the model's modes as they were. Raises ValueError for a task the
    model has no head for, a task without examples, or a label outside the task's labels.
    """
    _check_task_data(model, data, "data", require_examples=True)
    predictions = predict_labels(model, data, batch_size, caches)
    return {
        task: classification_scores(
            data[task].labels, predictions[task], labels=list(range(len(model.task_labels[task])))
        )
        for task in data
    }


def _check_task_data(
    model: MultiTaskModel, data, name: str, require_examples: bool = False, check_labels: bool = True
) -> None:
    """Every task known to the model, TaskData, labels within its head's labels (and examples, if asked)."""
    if not isinstance(data, Mapping):
        raise TypeError(f"{name} must map task names to TaskData, got {type(data).__name__}")
    unknown = sorted(set(data) - set(model.task_labels))
    if unknown:
        raise ValueError(f"{name} data has tasks {unknown} that the model has no head for")
    for task, examples in data.items():
        if not isinstance(examples, TaskData):
            raise TypeError(f"{name}[{task!r}] must be TaskData, got {type(examples).__name__}")
        if require_examples and len(examples) == 0:
            raise ValueError(f"{name} data for task {task!r} has no examples; leave the task out instead")
        n_labels = len(model.task_labels[task])
        too_high = np.flatnonzero(examples.labels >= n_labels) if check_labels else np.zeros(0, int)
        if too_high.size:
            raise ValueError(
                f"{name} data for task {task!r} has label {examples.labels[too_high[0]]} at position "
                f"{too_high[0]}, but the model's {task!r} head has {n_labels} labels (0..{n_labels - 1})"
            )


def _train_mode(model: MultiTaskModel, prefix: int) -> None:
    """Training mode (dropout on) for the trainable part; the frozen prefix runs as in inference."""
    model.train()
    if prefix > 0:
        model.backbone.embeddings.eval()
        for layer in model.layers[:prefix]:
            layer.eval()


class _Batches:
    """Turns sampled indices into sentence embeddings, through the prefix cache when there is one."""

    def __init__(self, model, data, prefix, config, rng, caches=None, stripped_caches=None):
        self.model, self.data, self.prefix, self.config, self.rng = model, data, prefix, config, rng
        self.caches: dict[str, PrefixCache] = dict(caches or {})
        self.stripped: dict[str, PrefixCache] = dict(stripped_caches or {})
        self.stripped_texts = {
            task: data[task].without_terminal_punctuation().texts
            for task in data
            if task in config.punctuation_tasks and config.punctuation_dropout > 0
        }
        if prefix > 0 and config.use_prefix_cache:
            for task, examples in data.items():
                if task not in self.caches:
                    self.caches[task] = PrefixCache.build(model, examples.texts, prefix)
        for task in self.caches:  # a cached task needs its punctuation-stripped sentences cached too
            if task in self.stripped_texts and task not in self.stripped:
                self.stripped[task] = PrefixCache.build(model, self.stripped_texts[task], prefix)

    def embed(self, task: str, rows: np.ndarray) -> torch.Tensor:
        drop = np.zeros(len(rows), dtype=bool)
        if task in self.stripped_texts:
            drop = self.rng.random(len(rows)) < self.config.punctuation_dropout
        if task in self.caches:
            kept = self.caches[task].encode(self.model, rows[~drop]) if (~drop).any() else None
            stripped = self.stripped[task].encode(self.model, rows[drop]) if drop.any() else None
            parts = [p for p in (kept, stripped) if p is not None]
            embeddings = torch.cat(parts)
            order = np.concatenate([np.flatnonzero(~drop), np.flatnonzero(drop)])
            return embeddings[torch.as_tensor(np.argsort(order), device=embeddings.device)]
        texts = [
            self.stripped_texts[task][i] if dropped else self.data[task].texts[i]
            for i, dropped in zip(rows, drop, strict=True)
        ]
        batch = self.model.tokenize(texts)
        if self.prefix == 0:
            return self.model.encode(batch)
        with torch.no_grad():
            hidden = self.model.hidden_states_at(batch, self.prefix)
        return self.model.encode_from_layer(hidden, batch["attention_mask"], self.prefix)


def unfreezing_start_steps(group_names: Sequence[str], total_steps: int) -> dict[str, int]:
    """The step at which each parameter group starts learning under gradual unfreezing.

    The heads (and any group that is not an encoder block) learn from the start, together with the
    top trainable layer; each lower layer joins an equal share of the steps later, the embeddings
    last (Howard & Ruder, 2018).
    """
    blocks = sorted(
        {
            name.removesuffix(" (no decay)")
            for name in group_names
            if name.startswith(("layer", "embeddings"))
        },
        key=lambda block: -1 if block == "embeddings" else int(block.split()[1]),
        reverse=True,
    )
    stage = {block: rank for rank, block in enumerate(blocks)}
    return {
        name: round(stage.get(name.removesuffix(" (no decay)"), 0) * total_steps / max(1, len(blocks)))
        for name in group_names
    }


def gradual_unfreezing_schedule(optimizer: torch.optim.Optimizer, schedule, total_steps: int):
    """The library's warm-up/decay `schedule`, with each layer's learning rate held at zero until its turn.

    Held-back layers keep `requires_grad`, so the frozen-prefix cache stays valid; with a zero
    learning rate (and so zero weight decay) AdamW leaves them unchanged.
    """
    starts = unfreezing_start_steps([group["name"] for group in optimizer.param_groups], total_steps)
    gates = [
        lambda step, start=starts[group["name"]]: 0.0 if step < start else schedule(step)
        for group in optimizer.param_groups
    ]
    return torch.optim.lr_scheduler.LambdaLR(optimizer, gates)


def distributed_rank_and_size() -> tuple[int, int]:
    """(rank, number of processes) under `torch.distributed`, else (0, 1)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def shard(data: Mapping[str, TaskData], rank: int, world_size: int) -> dict[str, TaskData]:
    """Every `world_size`-th example of each task, starting at `rank`: disjoint shards that cover the data."""
    check_int("world_size", world_size, 1)
    check_int("rank", rank, 0, world_size - 1)
    return {task: examples.subset(range(rank, len(examples), world_size)) for task, examples in data.items()}


class _TrainingStep(nn.Module):
    """One step's forward pass and loss, as a module so DistributedDataParallel can wrap it."""

    def __init__(self, model: MultiTaskModel, combiner: LossCombiner, batches: _Batches):
        super().__init__()
        self.model, self.combiner, self.batches = model, combiner, batches

    def forward(self, task: str, rows: np.ndarray, labels: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = self.model.classify(self.batches.embed(task, rows))
        task_losses = masked_task_losses(logits, labels)
        self.last_task_losses = {name: loss.detach() for name, loss in task_losses.items()}
        return self.combiner(task_losses)


def train_multitask(
    model: MultiTaskModel,
    train: Mapping[str, TaskData],
    validation: Mapping[str, TaskData],
    config: TrainingConfig | None = None,
    *,
    on_step=None,
    train_caches: Mapping[str, PrefixCache] | None = None,
    validation_caches: Mapping[str, PrefixCache] | None = None,
    stripped_caches: Mapping[str, PrefixCache] | None = None,
    checkpoint: str | Path | None = None,
    resume: bool = False,
) -> TrainingResult:
    """Train `model` on several tasks at once; keep the weights of the best validation epoch.

    Per step: draw a task and a batch (the sampler), encode it (through the prefix cache when the
    lower layers are frozen), compute the masked loss of each task present and combine them, step
    AdamW with warm-up/decay and clipping. After each epoch (and `evaluations_per_epoch - 1` times
    within it): accuracy and macro-F1 per task on the validation split; the criterion for the best
    model and early stopping is the mean macro-F1 over the tasks. `on_step(step, model)` is called
    after every optimiser step (for drift tracking). `train_caches` / `validation_caches` reuse
    prefix caches built earlier (`build_prefix_caches`), and `stripped_caches` those of the
    punctuation-stripped training sentences (for punctuation dropout), so that several runs from the
    same pre-trained weights pay for the frozen layers only once.

    Under `torch.distributed` (e.g. `torchrun`), each process trains on a disjoint shard of every
    task through DistributedDataParallel, the training loss is averaged over the processes, and
    rank 0 evaluates and decides when to stop for all of them.

    With `checkpoint`, the complete training state (weights, optimiser, schedule, random number
    generators, history) is written there after every epoch, atomically; `resume=True` continues
    from it and ends exactly where an uninterrupted run would have.
    """
    config = TrainingConfig() if config is None else config
    if not isinstance(model, MultiTaskModel):
        raise TypeError(f"model must be a MultiTaskModel, got {type(model).__name__}")
    if not isinstance(config, TrainingConfig):
        raise TypeError(f"config must be a TrainingConfig, got {type(config).__name__}")
    _check_task_data(model, train, "train", require_examples=True)
    _check_task_data(model, validation, "validation", require_examples=True)
    if not train:
        raise ValueError("train data is empty: give at least one task with examples")
    if not validation:
        raise ValueError(
            "validation data is empty: choosing the best epoch and early stopping need at least one task"
        )
    if on_step is not None and not callable(on_step):
        raise TypeError(f"on_step must be a function (step, model), got {type(on_step).__name__}")
    rank, world_size = distributed_rank_and_size()
    if resume and checkpoint is None:
        raise ValueError("resume=True needs the checkpoint to resume from (checkpoint=...)")
    if resume and world_size > 1:
        raise ValueError("resuming is supported in a single process only")
    state = load_checkpoint(checkpoint, config) if resume else None  # before any expensive work
    if world_size > 1:
        _check_shardable(train, world_size)  # the same error on every process, before any work
    torch.manual_seed(config.seed)
    rng = np.random.default_rng([config.seed, rank])
    tasks = list(model.task_labels)
    combiner = LossCombiner(tasks, config.loss_weighting, config.loss_weights).to(model.device)
    prefix = frozen_prefix_length(model)
    groups = parameter_groups(
        model, config.encoder_lr, config.head_lr, config.layer_decay, config.weight_decay
    )
    if config.loss_weighting == "uncertainty":
        groups.append(  # no weight decay: it would pull the log-variances to 0, i.e. the weights to 1
            {
                "name": "loss weights",
                "params": list(combiner.parameters()),
                "lr": config.head_lr,
                "weight_decay": 0.0,
            }
        )
    if not groups:
        raise ValueError("nothing to train: every parameter is frozen")
    optimizer = torch.optim.AdamW(groups)
    global_sizes = {task: len(examples) for task, examples in train.items()}
    if world_size > 1:
        if train_caches is not None or stripped_caches is not None:
            raise ValueError("prebuilt training caches cannot be sharded; let each process build its own")
        train = shard(train, rank, world_size)
    sampler = TaskBatchSampler(
        {task: len(examples) for task, examples in train.items()},
        config.batch_size,
        config.sampling,
        config.temperature,
        config.seed,
        probability_sizes=global_sizes,
        steps_per_epoch=max(1, math.ceil(sum(global_sizes.values()) / (config.batch_size * world_size))),
        index_seed=None if world_size == 1 else config.seed * 1000 + rank + 1,
        lengths={task: [len(text) for text in examples.texts] for task, examples in train.items()},
    )
    total_steps = len(sampler) * config.epochs
    scheduler = get_linear_schedule_with_warmup(
        optimizer, int(config.warmup_fraction * total_steps), total_steps
    )
    if config.gradual_unfreezing:
        scheduler = gradual_unfreezing_schedule(optimizer, scheduler.lr_lambdas[0], total_steps)
    use_amp = config.amp if config.amp is not None else model.device.type == "cuda"
    is_main = rank == 0

    for caches, data in ((train_caches, train), (validation_caches, validation), (stripped_caches, train)):
        for task, cache in (caches or {}).items():
            if not isinstance(cache, PrefixCache):
                raise TypeError(f"the cache for {task!r} must be a PrefixCache, got {type(cache).__name__}")
            if task not in data:
                raise ValueError(f"there is a cache for {task!r}, but no data for that task")
            if cache.prefix != prefix or len(cache) != len(data[task]):
                raise ValueError(
                    f"the cache for {task!r} holds {len(cache)} sentences after layer {cache.prefix}, "
                    f"but the model's frozen prefix is {prefix} and the data has {len(data[task])} sentences"
                )
    start = time.perf_counter()
    with _run_settings(model, config.gradient_checkpointing):
        batches = _Batches(model, train, prefix, config, rng, train_caches, stripped_caches)
        if is_main and prefix > 0 and config.use_prefix_cache and validation_caches is None:
            validation_caches = build_prefix_caches(model, validation, prefix)
        training_step = _TrainingStep(model, combiner, batches)
        if world_size > 1:
            device_ids = [model.device.index] if model.device.type == "cuda" else None
            training_step = nn.parallel.DistributedDataParallel(
                training_step, device_ids=device_ids, find_unused_parameters=True
            )
        stopper = EarlyStopping(config.patience)
        records, step_records, examples_seen, step, stopped_early, first_epoch = [], [], 0, 0, False, 1
        evaluation_steps = {  # steps within an epoch after which to evaluate; the last is the epoch's end
            round(j * len(sampler) / config.evaluations_per_epoch): j
            for j in range(1, config.evaluations_per_epoch + 1)
        }
        if state is not None:
            try:
                model.load_state_dict(state["model"])
                combiner.load_state_dict(state["combiner"])
                optimizer.load_state_dict(state["optimizer"])
                scheduler.load_state_dict(state["scheduler"])
            except (RuntimeError, ValueError, KeyError) as error:
                raise CheckpointError(
                    f"checkpoint {checkpoint} does not fit this model and configuration ({error}): "
                    "delete it or run without --resume"
                ) from error
            sampler.load_state_dict(state["sampler"])
            rng.bit_generator.state = state["rng"]
            torch.set_rng_state(state["torch_rng"])
            stopper.__dict__.update(state["stopper"])
            records, examples_seen, step = state["records"], state["examples_seen"], state["step"]
            step_records = state["step_records"]
            first_epoch = state["epoch"] + 1
        stop = False
        for epoch in range(first_epoch, config.epochs + 1):
            _train_mode(model, prefix)
            losses = []
            progress = tqdm(
                sampler, desc=f"epoch {epoch}", disable=not (config.progress and is_main), leave=False
            )
            for step_in_epoch, (task, rows) in enumerate(progress, start=1):
                labels = batch_labels(tasks, task, train[task].labels[rows])
                with torch.autocast(model.device.type, dtype=torch.bfloat16, enabled=use_amp):
                    loss = training_step(task, rows, labels)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_([p for g in groups for p in g["params"]], config.max_grad_norm)
                optimizer.step()
                scheduler.step()
                losses.append(float(loss.detach()))
                examples_seen += len(rows)
                step += 1
                task_losses = (training_step.module if world_size > 1 else training_step).last_task_losses
                step_records.append(
                    {
                        "step": step, "epoch": epoch - 1 + step_in_epoch / len(sampler), "task": task,
                        "loss": float(task_losses[task]), "lr": optimizer.param_groups[0]["lr"],
                        **{f"{name}_loss_weight": weight for name, weight in combiner.task_weights().items()},
                    }
                )  # fmt: skip
                if step % TRIM_EVERY_STEPS == 0:
                    trim_heap()  # activations of varying batch shapes fragment the heap as training runs
                if on_step is not None:
                    on_step(step, model)
                evaluation = evaluation_steps.get(step_in_epoch)  # 1, 2, ... within the epoch
                if evaluation is None:
                    continue
                at_epoch_end = step_in_epoch == len(sampler)
                train_loss = _mean_over_processes(float(np.mean(losses)), world_size, model.device)
                losses = []
                when = (
                    epoch
                    if config.evaluations_per_epoch == 1
                    else epoch - 1 + evaluation / config.evaluations_per_epoch
                )
                record = {"epoch": when, "step": step, "train_loss": train_loss}
                optimizer.zero_grad(set_to_none=True)  # the next step recomputes them: free them meanwhile
                if is_main:
                    scores = evaluate(model, validation, config.eval_batch_size, validation_caches)
                    record["mean_macro_f1"] = float(np.mean([s["macro_f1"] for s in scores.values()]))
                    for name, task_scores in scores.items():
                        record.update({f"{name}_{metric}": value for metric, value in task_scores.items()})
                    _train_mode(model, prefix)
                # every process takes rank 0's score: all keep the same best model and stop together
                record["mean_macro_f1"] = _from_rank_zero(
                    record.get("mean_macro_f1", 0.0), world_size, model.device
                )
                record.update(
                    {f"{name}_loss_weight": weight for name, weight in combiner.task_weights().items()}
                )
                records.append(record)
                if config.progress and is_main:
                    tqdm.write(
                        f"epoch {when:g}: "
                        + ", ".join(f"{k}={v:.3f}" for k, v in record.items() if k != "epoch")
                    )
                stop = stopper.update(record["mean_macro_f1"], when, model)
                if checkpoint is not None and is_main and at_epoch_end:
                    save_checkpoint(
                        checkpoint,
                        {
                            "epoch": epoch, "step": step, "examples_seen": examples_seen,
                            "records": records, "step_records": step_records, "config": asdict(config),
                            "model": model.state_dict(),
                            "combiner": combiner.state_dict(), "optimizer": optimizer.state_dict(),
                            "scheduler": scheduler.state_dict(), "sampler": sampler.state_dict(),
                            "rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
                            "stopper": dict(stopper.__dict__),
                        },
                    )  # fmt: skip
                if stop:
                    stopped_early = not (epoch == config.epochs and at_epoch_end)
                    break
            if stop:
                break
    seconds = time.perf_counter() - start
    stopper.restore_best(model)
    del optimizer, scheduler, training_step, batches
    release_memory()
    return TrainingResult(
        history=pd.DataFrame(records),
        steps=pd.DataFrame(step_records),
        best_epoch=stopper.best_epoch,
        best_score=stopper.best_score,
        stopped_early=stopped_early,
        loss_combiner=combiner,
        seconds=seconds,
        examples_seen=int(_mean_over_processes(examples_seen, world_size, model.device) * world_size),
        config=asdict(config),
    )


@contextmanager
def _run_settings(model: MultiTaskModel, gradient_checkpointing: bool) -> Iterator[None]:
    """The run's gradient-checkpointing setting inside; the model's modes and setting restored after,
    also when training is interrupted."""
    before = model.gradient_checkpointing
    model.gradient_checkpointing = gradient_checkpointing
    try:
        with modes_restored(model):
            yield
    finally:
        model.gradient_checkpointing = before


def _check_shardable(train: Mapping[str, TaskData], world_size: int) -> None:
    """Raise the same ValueError on every process when the data differ or a shard would be empty."""
    sizes = {task: len(examples) for task, examples in train.items()}
    everyone = [None] * world_size
    torch.distributed.all_gather_object(everyone, sizes)
    if any(other != everyone[0] for other in everyone):
        raise ValueError(
            f"the processes were given different training data (task sizes per process: {everyone})"
        )
    short = {task: size for task, size in everyone[0].items() if size < world_size}
    if short:
        raise ValueError(
            f"with {world_size} processes every task needs at least {world_size} training examples (one "
            f"per process), but {short} has fewer; add data, leave the task out or use fewer processes"
        )


CHECKPOINT_KEYS = (
    "epoch", "step", "examples_seen", "records", "step_records", "config", "model", "combiner",
    "optimizer", "scheduler", "sampler", "rng", "torch_rng", "stopper",
)  # fmt: skip


class CheckpointError(ValueError):
    """A training checkpoint that cannot be read, or that was written for another run."""


def load_checkpoint(path: str | Path, config: TrainingConfig | None = None) -> dict:
    """Read a checkpoint written by `train_multitask` and check it; nothing in it can run code.

    It is read with `torch.load(weights_only=True)`: tensors and plain Python values (numbers,
    strings, lists, dicts) only. Raises FileNotFoundError when `path` is missing, CheckpointError
    ("checkpoint X is unreadable: delete it or run without --resume") when it is damaged, foreign
    or incomplete, and CheckpointError when `config` differs from the run that wrote it (all but
    `progress` must match).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist: run without --resume (resume=False)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # random bytes, an empty or truncated file, a pickle with code in it
        raise CheckpointError(
            f"checkpoint {path} is unreadable ({type(error).__name__}): delete it or run without --resume"
        ) from None
    missing = [key for key in CHECKPOINT_KEYS if not isinstance(state, dict) or key not in state]
    if missing:
        raise CheckpointError(
            f"checkpoint {path} is unreadable (it lacks {', '.join(missing)}): "
            "delete it or run without --resume"
        )
    if config is not None and {**state["config"], "progress": config.progress} != asdict(config):
        raise CheckpointError(
            f"checkpoint {path} was written with a different training configuration: use the same "
            "options as the interrupted run, or delete it and run without --resume"
        )
    return state


def save_checkpoint(path: str | Path, state: dict) -> None:
    """Write a training checkpoint atomically: a crash leaves the previous checkpoint in place.

    `state` must hold tensors and plain Python values only, so that `load_checkpoint` can read it
    with `weights_only=True`. The file is flushed to disk before it replaces the previous one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    try:
        with open(partial, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _mean_over_processes(value: float, world_size: int, device: torch.device | None = None) -> float:
    if world_size == 1:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    torch.distributed.all_reduce(tensor)
    return float(tensor.item()) / world_size


def _from_rank_zero(value: float, world_size: int, device: torch.device | None = None) -> float:
    if world_size == 1:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    torch.distributed.broadcast(tensor, src=0)
    return float(tensor.item())
