"""helpers.task_data: TaskData, seeded subsets, the task samplers, punctuation dropout."""

import math

import numpy as np
import pandas as pd
import pytest

from helpers.data.tasks import limit_per_task, task_data
from helpers.losses import IGNORE_INDEX
from helpers.task_data import TaskBatchSampler, TaskData, task_probabilities
from tests.conftest import tiny_examples


def test_unlabelled_examples_are_refused_where_the_data_is_built():
    with pytest.raises(ValueError, match=r"label -100 at position 0 is negative"):
        TaskData(["a", "b"], np.array([IGNORE_INDEX, IGNORE_INDEX]))
    with pytest.raises(ValueError, match="position 1"):
        TaskData(["a", "b"], [0, -1])


@pytest.mark.parametrize(
    "labels, error, message",
    [
        ([0.0, math.nan], ValueError, "label nan at position 1 is not a whole number"),
        ([0.5, 1.0], ValueError, "position 0 is not a whole number"),
        (["question", "command"], TypeError, "integer class indices"),
        ([[0], [1]], ValueError, "one-dimensional"),
        ([0], ValueError, "2 texts but 1 labels"),
    ],
)
def test_task_data_refuses_bad_labels(labels, error, message):
    with pytest.raises(error, match=message):
        TaskData(["a", "b"], labels)


def test_task_data_refuses_bad_texts():
    with pytest.raises(TypeError, match="single string"):
        TaskData("Where is it?", [1])
    with pytest.raises(TypeError, match="item 1 is int"):
        TaskData(["fine", 7], [0, 1])
    assert TaskData(["a", "b"], np.array([1.0, 0.0])).labels.dtype == np.int64  # whole floats are fine


@pytest.mark.parametrize("limit", [1, 2, 3, 5, 10, 99])
def test_limit_per_task_returns_at_most_the_limit(limit):
    labels = np.array([0] * 60 + [1] * 30 + [2] * 9 + [3] * 1)
    data = {"t": TaskData([str(i) for i in range(100)], labels)}
    limited = limit_per_task(data, limit, seed=0)["t"]
    assert len(limited) <= limit
    if limit >= 4:  # room for every label: each keeps at least one example
        assert set(limited.labels) == {0, 1, 2, 3}
    if limit == 1:
        assert limited.labels.tolist() == [0]  # the most common label


def test_limit_per_task_refuses_bad_limits():
    data = tiny_examples()
    for bad in (0, -5):
        with pytest.raises(ValueError, match="max_per_task must be at least 1"):
            limit_per_task(data, bad)
    with pytest.raises(TypeError, match="max_per_task must be an integer"):
        limit_per_task(data, 2.5)
    with pytest.raises(ValueError, match=r"tasks \['sentimnt'\] that are not in the data"):
        limit_per_task(data, {"sentimnt": 2})


def test_task_data_from_a_frame_names_missing_columns():

    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['label'\]"):
        task_data(pd.DataFrame({"text": ["a"]}), ["x", "y"])
    with pytest.raises(TypeError, match="DataFrame"):
        task_data([("a", "x")], ["x", "y"])


def test_the_sampler_refuses_an_empty_task_instead_of_dropping_it():
    with pytest.raises(ValueError, match="task 'b' has no examples here"):
        TaskBatchSampler({"a": 5, "b": 0}, batch_size=2, probability_sizes={"a": 10, "b": 1})
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        TaskBatchSampler({"a": 5}, batch_size=0)


def test_labels_from_a_pandas_nullable_column_are_accepted_and_na_is_refused():

    assert TaskData(["a", "b"], pd.Series([1, 0], dtype="Int64")).labels.tolist() == [1, 0]
    with pytest.raises(ValueError, match="position 1 is not a whole number"):
        TaskData(["a", "b"], pd.Series([1, None], dtype="Int64"))


@pytest.mark.parametrize(
    "labels",
    [
        np.array([2**64 - 1], dtype=np.uint64),
        np.array([1e20]),
        np.array([2.0**63]),
        np.array([2**70], dtype=object),
    ],
    ids=["uint64-max", "1e20", "2**63", "python-int"],
)
def test_labels_that_would_overflow_int64_are_refused(labels):
    with pytest.raises(ValueError, match="position 0"):
        TaskData(["a"], labels)


def test_large_valid_labels_are_kept_exactly():
    assert TaskData(["a"], np.array([2**62], dtype=np.uint64)).labels[0] == 2**62


def test_subset_refuses_a_boolean_mask_and_negative_or_too_large_indices():
    data = TaskData(["a", "b", "c"], np.array([0, 1, 0]))
    with pytest.raises(TypeError, match="boolean mask"):
        data.subset(np.array([True, False, True]))
    with pytest.raises(TypeError, match="boolean mask"):
        data.subset([True, False, True])
    with pytest.raises(IndexError, match="index -1 .* 0..2"):
        data.subset([0, -1])
    with pytest.raises(IndexError, match="index 3 .* 0..2"):
        data.subset([3])
    assert data.subset([2, 0]).texts == ["c", "a"] and len(data.subset([])) == 0


def test_subset_seeds_must_fit_numpy():
    with pytest.raises(ValueError, match="seed must be between 0 and 4294967295, got 4294967296"):
        limit_per_task(tiny_examples(), 2, seed=2**32)


@pytest.mark.parametrize(
    "strategy, expected",
    [
        ("proportional", {"big": 0.9, "small": 0.1}),  # exactly: 900 and 100 batches
        ("uniform", {"big": 0.5, "small": 0.5}),
        ("temperature", None),
    ],
)
def test_samplers_draw_tasks_in_the_stated_proportions(strategy, expected):
    sizes = {"big": 9000, "small": 1000}
    if expected is None:  # T = 2: proportional to the square root of the size
        expected = {"big": 3 / 4, "small": 1 / 4}
    assert task_probabilities(sizes, strategy, temperature=2.0) == pytest.approx(expected)
    sampler = TaskBatchSampler(sizes, batch_size=10, strategy=strategy, temperature=2.0, seed=0)
    drawn = [task for task, _ in sampler]
    assert len(drawn) == 1000
    for task, share in expected.items():
        assert drawn.count(task) / len(drawn) == pytest.approx(share, abs=0.03)


def test_sampler_batches_are_valid_and_every_example_is_used():
    sampler = TaskBatchSampler({"a": 95, "b": 5}, batch_size=10, strategy="uniform", seed=1)
    seen = {"a": set(), "b": set()}
    for task, rows in sampler:
        assert len(rows) == (10 if task == "a" else 5) and len(set(rows)) == len(rows)
        seen[task].update(rows.tolist())
    assert len(seen["a"]) == 50  # five batches of "a", no example twice before all were seen
    assert seen["b"] == set(range(5))  # the small task is cycled through


@pytest.mark.parametrize("lengths", [None, {"a": np.arange(203) % 11, "b": np.arange(37) % 5}])
def test_proportional_epochs_see_every_example_exactly_once(lengths):
    sampler = TaskBatchSampler({"a": 203, "b": 37}, batch_size=16, seed=3, lengths=lengths)
    assert len(sampler) == 13 + 3  # ceil(203 / 16) + ceil(37 / 16) batches, every epoch
    for _ in range(2):
        seen = {"a": [], "b": []}
        tasks = []
        for task, rows in sampler:
            seen[task] += rows.tolist()
            tasks.append(task)
        assert sorted(seen["a"]) == list(range(203)) and sorted(seen["b"]) == list(range(37))
        assert tasks.count("a") == 13 and tasks.count("b") == 3
        assert tasks != sorted(tasks)  # the tasks' batches are interleaved, not one task after the other


def test_proportional_shards_give_every_process_the_same_task_sequence():
    # 2 processes, global sizes 97 and 20: shards of 49/48 and 10/10 examples
    samplers = [
        TaskBatchSampler(
            {"a": size_a, "b": 10},
            batch_size=16,
            seed=5,
            probability_sizes={"a": 97, "b": 20},
            index_seed=rank + 1,
            processes=2,
        )  # fmt: skip
        for rank, size_a in enumerate((49, 48))
    ]
    sequences = [[task for task, _ in sampler] for sampler in samplers]
    assert sequences[0] == sequences[1] and len(sequences[0]) == 4 + 1


def test_limit_per_task_keeps_label_proportions():
    data = {"t": TaskData([str(i) for i in range(1000)], np.array([0] * 900 + [1] * 100))}
    limited = limit_per_task(data, 100, seed=0)["t"]
    assert len(limited) == 100 and (limited.labels == 1).sum() == 10
    assert limit_per_task(data, None) == data


def test_length_grouped_batches_cover_every_example_once_per_pass():
    lengths = {"t": np.arange(200) % 37}
    sampler = TaskBatchSampler({"t": 200}, batch_size=10, seed=0, lengths=lengths, pool_batches=5)
    batches = [rows for _, rows in sampler]
    assert len(batches) == 20
    assert sorted(np.concatenate(batches).tolist()) == list(range(200))
    spread = np.mean([np.ptp(lengths["t"][rows]) for rows in batches])
    random_spread = np.mean(
        [np.ptp(lengths["t"][rows]) for rows in np.array_split(np.random.default_rng(0).permutation(200), 20)]
    )
    assert spread < random_spread / 2  # similar lengths share a batch


def test_stripping_terminal_punctuation_keeps_the_labels():
    data = TaskData(["Is it late?", "Go home!"], np.array([1, 2]))
    stripped = data.without_terminal_punctuation()
    assert stripped.texts == ["Is it late", "Go home"] and stripped.labels.tolist() == [1, 2]


def test_limit_per_task_takes_one_limit_per_task():
    data = {
        "a": TaskData([str(i) for i in range(100)], np.arange(100) % 2),
        "b": TaskData([str(i) for i in range(50)], np.zeros(50)),
    }
    limited = limit_per_task(data, {"a": 10}, seed=0)
    assert len(limited["a"]) == 10 and (limited["a"].labels == 1).sum() == 5
    assert len(limited["b"]) == 50  # not named: kept whole
