"""The series' two tasks as the training loop takes them: `{task: TaskData}` for one split
(`load_task_data`), seeded stratified subsets of them for quick runs (`limit_per_task`), and any
`text`/`label` data frame turned into `TaskData` (`task_data`).

Apart from `helpers.data` itself because it needs torch (through `helpers.task_data`), which the
loaders do not.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from helpers.checks import check_int
from helpers.data import TASK_LABELS, load_sentence_types, load_sentiment
from helpers.task_data import TaskData


def load_task_data(split: str) -> dict[str, TaskData]:
    """The series' two tasks for one split (`train`, `validation` or `test`) as `TaskData`."""
    return {
        "sentence_type": task_data(load_sentence_types(split), TASK_LABELS["sentence_type"]),
        "sentiment": task_data(load_sentiment(split), TASK_LABELS["sentiment"]),
    }


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


def limit_per_task(
    data: Mapping[str, TaskData], max_per_task: int | Mapping[str, int] | None, seed: int = 0
) -> dict[str, TaskData]:
    """A seeded, stratified subset of at most `max_per_task` examples of each task (all when None).

    `max_per_task` is one number (>= 1) for every task, or one per task (a task not named keeps
    all). Each label keeps its share of the examples, rounded, and at least one example while the
    limit allows; where rounding would exceed the limit, the labels given the most beyond their exact
    share lose one each. Raises ValueError for a limit below 1, a task name not in `data` or a
    `seed` outside 0..2**32-1 (TypeError unless it is an int).
    """
    check_int("seed", seed, 0, 2**32 - 1)
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
