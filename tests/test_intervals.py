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
    proportion_interval,
    recall_difference_intervals,
    resampled_macro_f1,
    t_interval,
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


def test_t_interval_matches_scipy_and_widens_with_fewer_items():
    from scipy import stats

    values = np.array([0.3, 0.1, 0.25, 0.4, 0.05, 0.2])
    mean, low, high = t_interval(values)
    expected = stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=stats.sem(values))
    assert (low, high) == pytest.approx(expected)
    assert mean == pytest.approx(values.mean())
    assert high - low < np.subtract(*t_interval(values[:3])[:0:-1])
    with pytest.raises(ValueError):
        t_interval([1.0])
    with pytest.raises(ValueError):
        t_interval(values, level=1.0)


def test_proportion_interval_is_wilson_and_stays_in_zero_one():
    share, low, high = proportion_interval(180, 200)
    assert share == 0.9 and low == pytest.approx(0.8506, abs=1e-4) and high == pytest.approx(0.9343, abs=1e-4)
    assert proportion_interval(0, 10)[1] == 0.0 and proportion_interval(10, 10)[2] == pytest.approx(1.0)
    with pytest.raises(ValueError):
        proportion_interval(11, 10)
    with pytest.raises(TypeError):
        proportion_interval(0.5, 10)


def test_recall_differences_are_per_class_and_paired():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 3, 300)
    good = np.where(rng.random(300) < 0.9, y_true, rng.integers(0, 3, 300))
    bad = np.where(y_true == 2, (y_true + 1) % 3, good)  # class 2 always missed, the others as `good`
    table = recall_difference_intervals(y_true, good, bad, n_bootstrap=200)
    assert list(table.index) == [0, 1, 2]
    for cls in (0, 1, 2):
        assert table.loc[cls, "a"] == pytest.approx((good[y_true == cls] == cls).mean())
    assert (table.loc[[0, 1], ["a - b", "low", "high"]] == 0).all().all()  # same predictions: zero
    assert table.loc[2, "b"] == 0 and 0 < table.loc[2, "low"] < table.loc[2, "a - b"] < table.loc[2, "high"]
    with pytest.raises(ValueError):
        recall_difference_intervals(y_true, good[:10], bad)
