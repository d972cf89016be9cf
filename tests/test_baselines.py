"""Baselines and evaluation helpers: VADER thresholds, the rule-based tagger, confident mistakes, k-NN."""

import itertools

import numpy as np
import pytest
from sklearn.metrics import f1_score

from helpers.baselines import (
    TAGGER_MIN_COUNT,
    TAGGER_MIN_SHARE,
    VADER_NEGATIVE,
    VADER_POSITIVE,
    RuleBasedTagger,
    VaderThresholds,
    _threshold_grid_macro_f1,
    first_word,
    tune_rule_based_tagger,
    tune_vader_thresholds,
    vader_compound,
    vader_labels,
    vader_sentiment,
)
from helpers.data import SENTIMENT_LABELS, load_sentence_types, load_sentiment
from helpers.metrics import confident_mistakes


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


# --- VADER -------------------------------------------------------------------------------------


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
        (lambda: vader_labels([0.1], negative=float("nan")), ValueError, "negative must be finite"),
        (lambda: vader_labels([0.1], positive=float("inf")), ValueError, "positive must be finite"),
        (lambda: vader_labels([0.1], positive="0.5"), TypeError, "real number"),
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
        ([0.1], ["positive"], "0.1", TypeError, "step must be a real number"),
    ],
)
def test_tuning_rejects_bad_input(compound, labels, step, error, message):
    with pytest.raises(error, match=message):
        tune_vader_thresholds(compound, labels, step=step)


# --- rule-based tagger ---------------------------------------------------------------------------

TINY_TRAIN = [
    ("Open the window.", "command"),
    ("Open the box!", "command"),
    ("Open doors are rare.", "statement"),
    ("Why is it late?", "question"),
    ("Why did he go?", "question"),
    ("Wow, what a day!", "exclamation"),
    ("Wow, look at that!", "exclamation"),
    ("The cat sat.", "statement"),
    ("The dog ran.", "statement"),
    ("Maybe he left.", "statement"),
    ("Maybe he left?", "question"),
    ('"Stop that," she said.', "statement"),
]


def tiny_tagger(**kwargs):
    texts, labels = zip(*TINY_TRAIN, strict=True)
    return RuleBasedTagger.fit(list(texts), list(labels), **kwargs)


def test_tagger_learns_openers_from_its_training_sentences():
    tagger = tiny_tagger(min_count=2, min_share=0.6)
    assert tagger.command_openers == frozenset({"open"})  # 2 of 3
    assert tagger.question_openers == frozenset({"why"})
    assert tagger.exclamation_openers == frozenset({"wow"})  # "maybe" is a tie, "the" statements
    assert tagger.openers() == {
        "command": tagger.command_openers,
        "question": tagger.question_openers,
        "exclamation": tagger.exclamation_openers,
    }
    assert tiny_tagger(min_count=2, min_share=0.7).command_openers == frozenset()  # 2/3 < 0.7
    assert tiny_tagger(min_count=3, min_share=0.6).openers() == {
        "command": {"open"},
        "question": set(),
        "exclamation": set(),
    }
    assert tiny_tagger(min_count=1, min_share=1.0).command_openers == frozenset()


def test_tagger_learns_statement_words_as_no_opener():
    tagger = tiny_tagger(min_count=1, min_share=0.3)
    assert "stop" not in set().union(*tagger.openers().values())  # its one sentence is a statement
    assert "the" not in set().union(*tagger.openers().values())


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Why is it late?", "question"),  # rule 1
        ("why is it late", "question"),  # rule 4: no final mark
        ("Why is it late.", "statement"),  # rule 4 needs no final "."
        ("Open the door.", "command"),  # rule 2
        ("open the door", "command"),
        ("Open it?", "question"),  # rule 1 before rule 2
        ("Open it now!", "command"),  # rule 2 before rule 3
        ("The game ended!", "exclamation"),  # rule 3
        ("wow what a day", "exclamation"),  # rule 5
        ("Wow, what a day.", "statement"),
        ("The game ended late.", "statement"),
        ("It rained all day", "statement"),
        ('"Why not?"', "question"),
        ("'Open it,' he said (angrily).", "command"),  # first word after the quote; final mark "."
        ("", "statement"),
    ],
)
def test_tagger_predicts_as_its_rules_say(text, expected):
    tagger = tiny_tagger(min_count=2, min_share=0.6)
    assert tagger.predict_one(text) == expected
    assert tagger.predict([text]) == [expected]


def test_tagger_handles_many_texts_and_rejects_non_strings():
    tagger = RuleBasedTagger(command_openers={"go"}, question_openers=["why"])
    assert tagger.predict(["Go.", "Why?", "why not"]) == ["command", "question", "question"]
    assert tagger.predict("Go home") == ["command"]
    assert tagger.predict([]) == []
    assert isinstance(tagger.command_openers, frozenset)
    with pytest.raises(TypeError, match="text must be a string, got NoneType"):
        tagger.predict_one(None)
    with pytest.raises(TypeError, match="item 1"):
        tagger.predict(["Go.", None])


def test_first_word():
    assert first_word('"Let\'s go," she said.') == "let's"
    assert first_word("'Do it now.") == "do"
    assert first_word("Don\u2019t!") == "don't"
    assert first_word("12 apples") == "apples"
    assert first_word("...") == ""


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"command_openers": {"go"}, "question_openers": {"go"}}, ValueError, "both"),
        ({"command_openers": {"Go"}}, ValueError, "not a lower-case word"),
        ({"command_openers": {"go away"}}, ValueError, "not a lower-case word"),
        ({"command_openers": {3}}, TypeError, "expected str"),
        ({"command_openers": "go"}, TypeError, "iterable of words"),
    ],
)
def test_hand_made_tagger_lists_are_checked(kwargs, error, message):
    with pytest.raises(error, match=message):
        RuleBasedTagger(**kwargs)


@pytest.mark.parametrize(
    "texts, labels, kwargs, error, message",
    [
        (["Go.", "Why?"], ["command"], {}, ValueError, "2 inputs but 1 labels"),
        (["Go."], ["imperative"], {}, ValueError, "unknown labels 'imperative'"),
        (["Go."], ["command"], {"min_count": 0}, ValueError, "min_count"),
        (["Go."], ["command"], {"min_count": 1.5}, ValueError, "min_count"),
        (["Go."], ["command"], {"min_share": 0}, ValueError, "min_share"),
        (["Go."], ["command"], {"min_share": 1.5}, ValueError, "min_share"),
        ([None], ["command"], {}, TypeError, "item 0"),
    ],
)
def test_fit_rejects_bad_input(texts, labels, kwargs, error, message):
    with pytest.raises(error, match=message):
        RuleBasedTagger.fit(texts, labels, **kwargs)


def test_tuning_the_tagger_checks_its_input():
    texts, labels = zip(*TINY_TRAIN, strict=True)
    groups = [f"file{i % 4}" for i in range(len(texts))]
    grid = {"min_counts": [1, 2], "min_shares": [0.5]}
    tagger, table = tune_rule_based_tagger(texts, labels, groups, n_splits=2, **grid)
    columns = ["min_count", "min_share", "macro_f1", "macro_f1_stripped", "score", "selected"]
    assert list(table.columns) == columns
    assert len(table) == 2 and table.selected.sum() == 1
    chosen = table[table.selected].iloc[0]
    assert chosen.score == table.score.max()
    assert tagger == RuleBasedTagger.fit(texts, labels, int(chosen.min_count), float(chosen.min_share))
    with pytest.raises(ValueError, match="groups"):
        tune_rule_based_tagger(texts, labels, groups[:-1])
    with pytest.raises(ValueError, match="distinct groups"):
        tune_rule_based_tagger(texts, labels, groups, n_splits=5)
    with pytest.raises(ValueError, match="must not be empty"):
        tune_rule_based_tagger(texts, labels, groups, min_counts=[], n_splits=2)


@pytest.fixture(scope="module")
def brown_train():
    return load_sentence_types("train")


def test_tagger_fitted_on_the_training_split_only_knows_its_first_words(brown_train):
    tagger = RuleBasedTagger.fit(brown_train.text, brown_train.label)
    words = brown_train.text.map(first_word)
    train_first_words = set(words)
    learned = set().union(*tagger.openers().values())
    assert learned and learned <= train_first_words
    for word in ["click", "stir", "kindly", "pour", "yay", "hooray"]:  # challenge-set openers
        if word not in train_first_words:
            assert word not in learned
    for label, openers in tagger.openers().items():  # each opener's class leads in the training split
        for word in openers:
            starts = brown_train.label[words == word]
            assert starts.value_counts().index[0] == label


def test_default_tagger_hyperparameters_are_what_cross_validation_selects(brown_train):
    tagger, table = tune_rule_based_tagger(brown_train.text, brown_train.label, brown_train.file_id)
    chosen = table[table.selected].iloc[0]
    assert (chosen.min_count, chosen.min_share) == (TAGGER_MIN_COUNT, TAGGER_MIN_SHARE)
    assert tagger == RuleBasedTagger.fit(brown_train.text, brown_train.label)


# --- metrics -------------------------------------------------------------------------------------


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
