"""The test-split scoreboard that notebook 04 and the full run (`make train`) share.

The same test sentences, scored the same way, for a trained model and for what it is compared
with: the VADER lexicon with its default and with tuned thresholds, the rule-based tagger with
opener lists learned from the training split, the label-noise ceiling of the sentiment labels
(`helpers.analysis.label_noise`), and the ceiling that the sentence-type label rule leaves once the final
punctuation is gone (`stripped_punctuation_ceiling`). Every score is a macro-F1 in 0..1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score

from helpers.analysis.label_noise import label_noise_ceiling
from helpers.analysis.tagger import RuleBasedTagger
from helpers.analysis.vader import tune_vader_thresholds, vader_compound, vader_labels
from helpers.data import (
    SENTENCE_TYPE_LABELS,
    TASK_LABELS,
    load_challenge_set,
    load_sentence_types,
    load_sentiment,
)
from helpers.data.tasks import load_task_data, task_data
from helpers.evaluation import Caches, classification_scores, predict_labels
from helpers.model import MultiTaskModel
from helpers.task_data import TaskData

STRIPPED = "test, punctuation stripped"
SENTENCE_TYPE_VIEWS = ("test", STRIPPED, "challenge set")  # the three ways sentence type is scored


def sentence_type_views(test: TaskData | None = None) -> dict[str, TaskData]:
    """The sentence-type sentences a model is scored on: the test split as written, the same
    sentences without their final punctuation, and the hand-written challenge set (144 sentences,
    written and labelled by a single annotator of this project; see data/README.md)."""
    test = load_task_data("test")["sentence_type"] if test is None else test
    challenge = task_data(load_challenge_set(), TASK_LABELS["sentence_type"])
    return {"test": test, STRIPPED: test.without_terminal_punctuation(), "challenge set": challenge}


def stripped_punctuation_ceiling(labels: Sequence[int]) -> pd.DataFrame:
    """Per-class and macro F1 on punctuation-stripped sentences of a model that is right on every
    sentence except the exclamations, which it calls statements.

    By the label rule (data/README.md) an exclamation is a sentence that is not a command and ends
    in "!": the mark is part of the definition. Without it, an exclamation that is declarative in
    form ("He's here") reads as a statement, so this is an optimistic ceiling for a model that
    cannot see the mark (exclamatory syntax such as "What a day" is left recoverable, and questions
    are assumed recoverable from word order). `labels`: class indices into SENTENCE_TYPE_LABELS,
    shape (n,). Returns one row, columns: each class's F1 and "macro-F1".
    """
    truth = np.asarray(labels, dtype=np.int64)
    exclamation, statement = (SENTENCE_TYPE_LABELS.index(name) for name in ("exclamation", "statement"))
    predicted = np.where(truth == exclamation, statement, truth)
    classes = list(range(len(SENTENCE_TYPE_LABELS)))
    per_class = f1_score(truth, predicted, labels=classes, average=None, zero_division=0)
    row = dict(zip(SENTENCE_TYPE_LABELS, per_class.tolist(), strict=True))
    row["macro-F1"] = float(np.mean(per_class))
    return pd.DataFrame([row], index=["exclamations read as statements"])


def macro_f1_by_source(labels: Sequence, predicted: Sequence, sources: Sequence[str]) -> dict[str, float]:
    """Macro-F1 of `predicted` against `labels` within each sentiment source (tweet, movie_review,
    product_review, nyt_editorial); all three sequences have one entry per test sentence."""
    frame = pd.DataFrame({"label": list(labels), "predicted": list(predicted), "source": list(sources)})
    return {
        source: classification_scores(group.label, group.predicted)["macro_f1"]
        for source, group in frame.groupby("source")
    }


def model_test_scores(
    model: MultiTaskModel,
    test: Mapping[str, TaskData] | None = None,
    views: Mapping[str, TaskData] | None = None,
    caches: Caches = None,
    view_caches: Mapping[str, Caches] | None = None,
) -> dict:
    """A trained model's macro-F1 on the full test split: per task, sentiment per source, and
    sentence type on each of `sentence_type_views`.

    `test` defaults to `load_task_data("test")` (its sentiment rows in the order of
    `load_sentiment("test")`), `views` to `sentence_type_views(test["sentence_type"])`; `caches` /
    `view_caches[view]`: prefix caches of the same sentences (optional). Returns
    {"sentiment": f1, "sentence_type": f1, "sentiment_by_source": {source: f1},
    "sentence_type_views": {view: f1}}.
    """
    test = load_task_data("test") if test is None else test
    views = sentence_type_views(test["sentence_type"]) if views is None else views
    predicted = predict_labels(model, test, caches=caches)
    scores = {
        task: classification_scores(test[task].labels, predicted[task], labels=list(range(len(names))))[
            "macro_f1"
        ]
        for task, names in TASK_LABELS.items()
    }
    sources = load_sentiment("test")["source"].tolist()
    scores["sentiment_by_source"] = macro_f1_by_source(
        test["sentiment"].labels, predicted["sentiment"], sources
    )
    scores["sentence_type_views"] = {}
    for view, examples in views.items():
        cache = (view_caches or {}).get(view)
        indices = predict_labels(model, {"sentence_type": examples}, caches=cache)["sentence_type"]
        scores["sentence_type_views"][view] = classification_scores(
            examples.labels, indices, labels=list(range(len(SENTENCE_TYPE_LABELS)))
        )["macro_f1"]
    return scores


def baseline_test_scores(n_bootstrap: int = 200, seed: int = 0) -> dict:
    """What the data-only baselines score on the full test split, everything they tune or learn
    taken from the training split: VADER with its default thresholds (+-0.05) and with thresholds
    tuned on the training split, the rule-based tagger (opener lists learned from the training
    split), the label-noise ceiling of the sentiment labels (`n_bootstrap` rater resamples, seeded)
    and the stripped-punctuation ceiling of the sentence-type labels. Takes a few seconds.

    Returns {"VADER, default thresholds": {"sentiment": f1, "sentiment_by_source": {...}},
    "VADER, tuned on train": {... , "thresholds": [negative, positive]},
    "rule-based tagger": {"sentence_type_views": {view: f1}},
    "label-noise ceiling": {"sentiment": f1, "interval": [low, high], "sentiment_by_source": {...}},
    "stripped-punctuation ceiling": {"sentence_type_views": {STRIPPED: f1}}}.
    """
    sentiment_train, sentiment_test = load_sentiment("train"), load_sentiment("test")
    tuned = tune_vader_thresholds(vader_compound(sentiment_train.text), sentiment_train.label)
    compound = vader_compound(sentiment_test.text)
    scores = {}
    for name, cuts in (("VADER, default thresholds", {}), ("VADER, tuned on train", vars(tuned))):
        predicted = vader_labels(compound, **{k: v for k, v in cuts.items() if k != "macro_f1"})
        scores[name] = {
            "sentiment": classification_scores(sentiment_test.label, predicted)["macro_f1"],
            "sentiment_by_source": macro_f1_by_source(sentiment_test.label, predicted, sentiment_test.source),
        }
    scores["VADER, tuned on train"]["thresholds"] = [tuned.negative, tuned.positive]
    types_train = load_sentence_types("train")
    tagger = RuleBasedTagger.fit(types_train.text, types_train.label)
    scores["rule-based tagger"] = {
        "sentence_type_views": {
            view: classification_scores(
                [SENTENCE_TYPE_LABELS[i] for i in examples.labels], tagger.predict(examples.texts)
            )["macro_f1"]
            for view, examples in sentence_type_views().items()
        }
    }
    ceiling = label_noise_ceiling(sentiment_test, n_bootstrap=n_bootstrap, seed=seed)
    scores["label-noise ceiling"] = {
        "sentiment": float(ceiling.loc["all", "macro_f1"]),
        "interval": [float(ceiling.loc["all", "ci_low"]), float(ceiling.loc["all", "ci_high"])],
        "sentiment_by_source": {
            source: float(row.macro_f1) for source, row in ceiling.drop(index="all").iterrows()
        },
    }
    stripped = stripped_punctuation_ceiling(load_task_data("test")["sentence_type"].labels)
    scores["stripped-punctuation ceiling"] = {
        "sentence_type_views": {STRIPPED: float(stripped["macro-F1"].iloc[0])}
    }
    return scores
