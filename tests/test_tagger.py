"""helpers.analysis.tagger: the rule-based sentence-type tagger, learned from train."""

import pytest

from helpers.analysis.tagger import (
    TAGGER_MIN_COUNT,
    TAGGER_MIN_SHARE,
    RuleBasedTagger,
    first_word,
    tune_rule_based_tagger,
)
from helpers.data import load_sentence_types


def tiny_tagger(**kwargs):
    texts, labels = zip(*TINY_TRAIN, strict=True)
    return RuleBasedTagger.fit(list(texts), list(labels), **kwargs)


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


@pytest.fixture(scope="module")
def brown_train():
    return load_sentence_types("train")


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
        (["Go."], ["command"], {"min_count": 1.5}, TypeError, "min_count"),
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
