"""The test-split scoreboard shared by notebook 04 and `make train`: its pieces on small inputs."""

import numpy as np
import pytest

from helpers.analysis.reports import (
    STRIPPED,
    macro_f1_by_source,
    sentence_type_views,
    stripped_punctuation_ceiling,
)
from helpers.data import SENTENCE_TYPE_LABELS


def test_the_stripped_punctuation_ceiling_reads_exclamations_as_statements():
    labels = [
        SENTENCE_TYPE_LABELS.index(name) for name in ("statement", "question", "command", "exclamation")
    ]
    table = stripped_punctuation_ceiling(labels * 5)
    row = table.iloc[0]
    assert row["exclamation"] == 0.0 and row["question"] == 1.0 and row["command"] == 1.0
    assert row["statement"] == pytest.approx(2 / 3)  # precision 1/2, recall 1
    assert row["macro-F1"] == pytest.approx((2 / 3 + 1 + 1 + 0) / 4)


def test_macro_f1_by_source_scores_each_source_on_its_own_sentences():
    labels = ["positive", "negative", "positive", "neutral"]
    predicted = ["positive", "negative", "negative", "negative"]
    scores = macro_f1_by_source(labels, predicted, ["tweet", "tweet", "movie_review", "movie_review"])
    assert scores["tweet"] == 1.0 and scores["movie_review"] == 0.0


def test_sentence_type_views_strip_the_test_split_and_add_the_challenge_set():
    views = sentence_type_views()
    assert list(views) == ["test", STRIPPED, "challenge set"]
    assert len(views[STRIPPED]) == len(views["test"]) and len(views["challenge set"]) == 144
    assert np.array_equal(views[STRIPPED].labels, views["test"].labels)
    assert not any(text.rstrip().endswith(("?", "!", ".")) for text in views[STRIPPED].texts)
