"""Bootstrap intervals: resampled macro-F1 equals scikit-learn's on each resample; a paired
difference of a classifier with itself is exactly zero; bad shapes are refused."""

import numpy as np
import pytest
from sklearn.metrics import f1_score

from helpers.analysis.intervals import (
    bootstrap_weights,
    macro_f1_intervals,
    mean_interval,
    paired_difference_interval,
    resampled_macro_f1,
)


def test_resampled_macro_f1_matches_scikit_learn_on_each_resample():
    rng = np.random.default_rng(0)
    y_true = rng.choice(["a", "b", "c"], 60)
    y_pred = np.where(rng.random(60) < 0.7, y_true, rng.choice(["a", "b", "c"], 60))
    weights = bootstrap_weights(60, n_bootstrap=5, seed=1)
    assert (weights.sum(axis=1) == 60).all()
    scores = resampled_macro_f1(y_true, y_pred, weights)
    for row, score in zip(weights, scores, strict=True):
        rows = np.repeat(np.arange(60), row)
        assert score == pytest.approx(f1_score(y_true[rows], y_pred[rows], average="macro"))


def test_intervals_contain_the_estimate_and_a_self_difference_is_zero():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 3, 200)
    good = np.where(rng.random(200) < 0.8, y_true, rng.integers(0, 3, 200))
    bad = np.where(rng.random(200) < 0.5, y_true, rng.integers(0, 3, 200))
    intervals = macro_f1_intervals(y_true, {"good": good, "bad": bad}, n_bootstrap=300)
    assert intervals["good"][0] < f1_score(y_true, good, average="macro") < intervals["good"][1]
    difference, low, high = paired_difference_interval(y_true, good, bad, n_bootstrap=300)
    assert 0 < low < difference < high
    assert paired_difference_interval(y_true, good, good, n_bootstrap=50) == (0.0, 0.0, 0.0)


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="must be"):
        resampled_macro_f1([0, 1], [0, 1, 1], np.ones((2, 2)))
    with pytest.raises(ValueError, match="at least one item"):
        bootstrap_weights(0)


def test_mean_interval_brackets_the_mean_and_refuses_too_few_values():
    mean, low, high = mean_interval([0.1, 0.2, 0.3, 0.4], seed=1)
    assert mean == pytest.approx(0.25) and 0.1 <= low <= mean <= high <= 0.4
    assert mean_interval([0.5, 0.5]) == (0.5, 0.5, 0.5)
    for bad in ([1.0], [[1.0, 2.0]], [1.0, float("nan")]):
        with pytest.raises(ValueError):
            mean_interval(bad)
