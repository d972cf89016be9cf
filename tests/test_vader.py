"""helpers.analysis.vader: VADER's compound score, its thresholds, tuned on train."""

import itertools

import numpy as np
import pytest
from sklearn.metrics import f1_score

from helpers.analysis.vader import (
    VADER_NEGATIVE,
    VADER_POSITIVE,
    VaderThresholds,
    _threshold_grid_macro_f1,
    tune_vader_thresholds,
    vader_compound,
    vader_labels,
    vader_sentiment,
)
from helpers.data import SENTIMENT_LABELS, load_sentiment


def sklearn_macro_f1(true, predicted):
    return f1_score(true, predicted, labels=SENTIMENT_LABELS, average="macro", zero_division=0)


def brute_force_tuning(scores, labels, step):
    """Every grid pair scored by sklearn; the documented tie rule applied in plain Python."""
    points = round(1 / step) + 1
    negatives = np.round(np.linspace(-1, 0, points), 12)
    positives = np.round(np.linspace(0, 1, points), 12)
    surface = np.array(
        [[sklearn_macro_f1(labels, vader_labels(scores, n, p)) for p in positives] for n in negatives]
    )
    best = surface.max()
    ties = [(n, p) for (i, n), (j, p) in itertools.product(enumerate(negatives), enumerate(positives))]
    ties = [(n, p) for (n, p), f in zip(ties, surface.ravel(), strict=True) if f >= best - 1e-12]
    negative, positive = min(ties, key=lambda pair: (pair[1] - pair[0], -pair[0]))
    return surface, negatives, positives, negative, positive, best


def test_vader_uses_the_compound_thresholds():
    labels = vader_sentiment(
        ["I love this wonderful phone!", "This is a terrible, awful mess.", "It is a table."]
    )
    assert labels == ["positive", "negative", "neutral"]
    assert vader_sentiment([]) == []
    with pytest.raises(TypeError, match="item 0"):
        vader_sentiment([None])


def test_vader_compound_is_one_score_per_sentence_in_range():
    scores = vader_compound(["I love it.", "I hate it.", "A table."])
    assert scores.shape == (3,) and scores.dtype == np.float64
    assert scores[0] > 0 > scores[1] and scores[2] == 0
    assert (np.abs(scores) <= 1).all()
    assert vader_compound("Great!").shape == (1,)
    assert vader_compound([]).shape == (0,)
    with pytest.raises(TypeError):
        vader_compound(None)


def test_vader_labels_cut_at_the_thresholds():
    scores = [-0.5, -0.05, -0.0499, 0.0, 0.0499, 0.05, 1.0]
    assert vader_labels(scores) == ["negative", "negative"] + ["neutral"] * 3 + ["positive", "positive"]
    assert vader_labels(np.array(scores), negative=-0.6, positive=0.6) == ["neutral"] * 6 + ["positive"]
    assert vader_labels([0.0, 0.1, -0.1], negative=0.0, positive=0.0) == ["positive", "positive", "negative"]
    assert vader_labels(np.zeros(0)) == []
    assert vader_sentiment(["It is a table."], negative=-0.5, positive=0.5) == ["neutral"]


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: vader_labels([0.1], negative=0.2, positive=0.1), ValueError, "must not exceed"),
        (lambda: vader_labels([0.1], negative=float("nan")), ValueError, "negative must be a finite number"),
        (lambda: vader_labels([0.1], positive=float("inf")), ValueError, "positive must be a finite number"),
        (lambda: vader_labels([0.1], positive="0.5"), TypeError, "positive must be a number"),
        (lambda: vader_labels([0.1, float("nan")]), ValueError, "item 1"),
        (lambda: vader_labels([[0.1]]), ValueError, r"shape \(n,\)"),
        (lambda: vader_labels(["0.1"]), TypeError, "real numbers"),
        (lambda: vader_sentiment(["Fine."], negative=0.3, positive=0.2), ValueError, "must not exceed"),
    ],
)
def test_vader_labels_reject_bad_input(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_tuned_thresholds_beat_or_equal_the_default_on_their_tuning_data():
    train = load_sentiment("train").head(2000)
    scores = vader_compound(train.text)
    tuned = tune_vader_thresholds(scores, train.label)
    assert isinstance(tuned, VaderThresholds)
    assert -1 <= tuned.negative <= 0 <= tuned.positive <= 1
    tuned_f1 = sklearn_macro_f1(train.label, vader_labels(scores, tuned.negative, tuned.positive))
    assert tuned.macro_f1 == pytest.approx(tuned_f1, abs=1e-12)
    assert tuned_f1 >= sklearn_macro_f1(train.label, vader_labels(scores, VADER_NEGATIVE, VADER_POSITIVE))


@pytest.mark.parametrize("seed, n, step", [(0, 40, 0.05), (1, 25, 0.1), (2, 60, 0.25), (3, 7, 0.5)])
def test_grid_search_agrees_with_brute_force_sklearn(seed, n, step):
    rng = np.random.default_rng(seed)
    scores = np.round(rng.uniform(-1, 1, n), 2)  # rounded: many scores fall exactly on grid points
    scores[:3] = [-1.0, 0.0, 1.0]
    labels = list(rng.choice(SENTIMENT_LABELS, size=n))
    if seed == 3:
        labels = ["negative" if label == "neutral" else label for label in labels]  # a class absent
    surface, negatives, positives, negative, positive, best = brute_force_tuning(scores, labels, step)
    codes = np.array([SENTIMENT_LABELS.index(label) for label in labels])
    np.testing.assert_allclose(
        _threshold_grid_macro_f1(scores, codes, negatives, positives), surface, rtol=0, atol=1e-12
    )
    tuned = tune_vader_thresholds(scores, labels, step=step)
    assert (tuned.negative, tuned.positive) == (negative, positive)
    assert tuned.macro_f1 == pytest.approx(best, abs=1e-12)


def test_ties_go_to_the_narrowest_band_then_the_larger_negative_threshold():
    # Perfect for any negative in [-0.5, -0.01] and positive in [0.01, 0.5]: the narrowest wins.
    perfect = tune_vader_thresholds([-0.5, 0.0, 0.5], ["negative", "neutral", "positive"])
    assert (perfect.negative, perfect.positive, perfect.macro_f1) == (-0.01, 0.01, 1.0)
    # (-0.5, 0) and (0, 0.5) tie at 5/9 with the same width 0.5: the larger negative wins.
    tied = tune_vader_thresholds([-0.25, 0.0, 0.75], ["neutral", "negative", "positive"], step=0.5)
    assert (tied.negative, tied.positive) == (0.0, 0.5)
    assert tied.macro_f1 == pytest.approx(5 / 9)


@pytest.mark.parametrize(
    "compound, labels, step, error, message",
    [
        ([0.1, 0.2], ["positive"], 0.01, ValueError, "2 inputs but 1 labels"),
        ([0.1], ["good"], 0.01, ValueError, "unknown labels 'good'"),
        ([0.1], [None], 0.01, ValueError, "unknown labels None"),
        ([0.1], "positive", 0.01, TypeError, "labels must be a sequence"),
        ([], [], 0.01, ValueError, "no scores"),
        ([float("inf")], ["positive"], 0.01, ValueError, "finite"),
        ([0.1], ["positive"], 0.03, ValueError, "divide 1"),
        ([0.1], ["positive"], 0.0, ValueError, "step must be"),
        ([0.1], ["positive"], 2, ValueError, "step must be"),
        ([0.1], ["positive"], "0.1", TypeError, "step must be a number"),
    ],
)
def test_tuning_rejects_bad_input(compound, labels, step, error, message):
    with pytest.raises(error, match=message):
        tune_vader_thresholds(compound, labels, step=step)
