"""Notebook 03's tables: the depth rule picks the smallest depth within twice the paired noise,
step counts follow the loop's own count, and prediction drift counts what changed and how."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from helpers.analysis import experiments
from helpers.analysis.nb03_tables import depth_rule, optimiser_steps, prediction_drift, size_study


def depth_frame(means_by_k: dict[int, list[float]]) -> pd.DataFrame:
    """A depth grid whose two tasks both score `means_by_k[k][seed]`."""
    rows = []
    for k, values in means_by_k.items():
        for seed, value in enumerate(values):
            rows.append(
                {
                    "grid": "depth",
                    "k": k,
                    "seed": seed,
                    "embeddings": False,
                    "test_sentence_type": value,
                    "test_sentiment": value,
                }  # fmt: skip
            )
    return pd.DataFrame(rows)


def test_depth_rule_pairs_by_seed_and_recommends_the_smallest_depth_within_twice_the_noise():
    # k = 2 trails k = 3 by 0.05 with every seed (paired noise tiny) even though its seeds spread
    # widely: only a paired reading puts it outside; k = 1 trails by more than twice the floor.
    frame = depth_frame({1: [0.50, 0.60, 0.70], 2: [0.55, 0.65, 0.75], 3: [0.60, 0.70, 0.80]})
    rule = depth_rule(frame, reference=3)
    assert list(rule.index) == [1, 2, 3]
    assert rule.loc[2, "mean gap"] == pytest.approx(0.05)
    assert rule.loc[2, "twice the paired noise"] == pytest.approx(0.02)  # the floor: differences agree
    assert list(rule["within"]) == [False, False, True]
    # a gap within the floor counts as within
    near = depth_frame({1: [0.695, 0.79, 0.885], 2: [0.70, 0.80, 0.90]})
    assert bool(depth_rule(near, reference=2).loc[1, "within"])


def test_depth_rule_refuses_arms_that_do_not_share_their_seeds_or_are_missing():
    frame = depth_frame({1: [0.5, 0.6], 2: [0.6, 0.7]})
    frame.loc[(frame.k == 1) & (frame.seed == 1), "seed"] = 5
    with pytest.raises(ValueError, match="share their seeds"):
        depth_rule(frame, reference=2)
    with pytest.raises(ValueError, match="k = 3"):
        depth_rule(depth_frame({1: [0.5, 0.6], 2: [0.6, 0.7]}), reference=3)


def test_optimiser_steps_count_epochs_times_batches_per_epoch(tmp_path):
    record = {"configuration": {"training": {"batch_size": 16}}}
    (tmp_path / "a.json").write_text(json.dumps(record))
    frame = pd.DataFrame({"run": ["a", "a", "probe"], "examples": [400, 2000, 0], "epochs": [2, 2, 2]})
    steps = optimiser_steps(frame, tmp_path)
    assert steps.tolist() == [2 * math.ceil(200 / 16), 2 * math.ceil(1000 / 16), 0]


@pytest.mark.skipif(not list(experiments.RESULTS.glob("size-*.json")), reason="no committed size grid")
def test_size_study_reads_the_committed_grid_with_its_step_counts():
    table = size_study(experiments.load_results())
    sizes = sorted(set(table.index.get_level_values("train_per_task")))
    assert 500 in sizes and len(sizes) >= 2
    for n in sizes:
        assert table.loc[(n, 0), ("optimiser steps", "")] == 0
        # two tasks of n sentences each, batches of 16, two epochs (the recipe of notebook 03)
        assert table.loc[(n, 2), ("optimiser steps", "")] == 2 * math.ceil(2 * n / 16)


def test_prediction_drift_counts_changes_both_ways_and_every_task_f1_change():
    truth = {"a": np.array([0, 0, 1, 1]), "b": np.array([0, 1, 0, 1])}
    start = {"a": np.array([0, 1, 1, 0]), "b": np.array([0, 1, 0, 1])}
    end = {"a": np.array([1, 0, 1, 0]), "b": np.array([0, 1, 0, 0])}
    drift = prediction_drift(start, end, truth, "a")
    assert drift["predictions changed"] == 0.5
    assert drift["right to wrong"] == 0.25  # sentence 0
    assert drift["wrong to right"] == 0.25  # sentence 1
    assert drift["a F1 change"] == pytest.approx(0.0)
    assert drift["b F1 change"] < 0
    with pytest.raises(ValueError, match="shape"):
        prediction_drift({"a": np.array([0])}, end, truth, "a")
