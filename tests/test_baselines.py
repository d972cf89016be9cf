"""Baselines and evaluation helpers: VADER thresholds, the rule-based tagger, confident mistakes, k-NN."""

import numpy as np
import pytest

from helpers.baselines import rule_based_sentence_type, rule_based_sentence_types, vader_sentiment
from helpers.metrics import confident_mistakes


def test_vader_uses_the_compound_thresholds():
    labels = vader_sentiment(
        ["I love this wonderful phone!", "This is a terrible, awful mess.", "It is a table."]
    )
    assert labels == ["positive", "negative", "neutral"]
    assert vader_sentiment([]) == []
    with pytest.raises(TypeError, match="item 0"):
        vader_sentiment([None])


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Where is the station?", "question"),
        ("where is the station", "question"),
        ("Close the door.", "command"),
        ("Please send it tomorrow", "command"),
        ("Stop!", "command"),
        ("What a game!", "exclamation"),
        ("The game ended late.", "statement"),
        ("It rained all day", "statement"),
        ('"Is it true?"', "question"),
        ("", "statement"),
    ],
)
def test_rule_based_tagger(text, expected):
    assert rule_based_sentence_type(text) == expected


def test_rule_based_tagger_on_many():
    assert rule_based_sentence_types(["Go.", "Why?"]) == ["command", "question"]


def test_confident_mistakes_are_wrong_and_sorted():
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    table = confident_mistakes(["a", "b", "c", "d"], ["x", "x", "y", "y"], probabilities, ["x", "y"], n=5)
    assert list(table.text) == ["b", "c"]
    assert (table.true != table.predicted).all()
    assert table.confidence.is_monotonic_decreasing


def test_nearest_neighbour_scores_see_clusters_and_not_noise():
    from helpers.metrics import nearest_neighbour_scores

    rng = np.random.default_rng(0)
    labels = np.repeat(["a", "b", "c"], 40)
    centres = rng.normal(size=(3, 16)) * 5
    clustered = centres[np.repeat([0, 1, 2], 40)] + rng.normal(size=(120, 16))
    assert nearest_neighbour_scores(clustered, labels)["macro_f1"] > 0.95
    assert nearest_neighbour_scores(rng.normal(size=(120, 16)), labels)["macro_f1"] < 0.6
