"""helpers.evaluation: the metrics (one implementation per definition of macro-F1) and scoring."""

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score

from helpers import evaluation as evaluation_module
from helpers import freezing
from helpers.evaluation import (
    classification_scores,
    confusion_counts,
    evaluate,
    macro_f1_over_all_classes,
    macro_f1_over_present_classes,
    predict_labels,
    predict_probabilities,
    sentence_embeddings,
)
from helpers.task_data import (
    TaskData,
)
from helpers.tool.prefix_cache import build_prefix_caches
from tests.conftest import (
    FOUR_TEXTS,
    SIX_TEXTS,
    TINY_MOODS,
    TWO_TASKS,
    submodule_modes,
    tiny_examples,
)


def test_vectorised_macro_f1_matches_sklearn_with_absent_classes():
    rng = np.random.default_rng(4)
    truth = rng.choice([0, 2], size=30).astype(np.int8)  # no neutral in the truth
    predicted = rng.integers(0, 3, size=(6, 30)).astype(np.int8)
    predicted[0] = truth  # perfect row
    predicted[1] = 0  # a row that never predicts two of the classes
    expected = [f1_score(truth, row, average="macro") for row in predicted]
    assert macro_f1_over_present_classes(confusion_counts(truth, predicted, 3)) == pytest.approx(
        expected, abs=1e-12
    )


# --- model errors by rater disagreement -----------------------------------------------------


@pytest.mark.parametrize("labels", [None, "all", "more"])
def test_classification_scores_match_sklearn(labels):
    rng = np.random.default_rng(0)
    for _ in range(100):
        k, n = int(rng.integers(2, 5)), int(rng.integers(1, 40))
        truth, predicted = rng.integers(0, k, n), rng.integers(0, k + 1, n)
        given = {None: None, "all": list(range(k)), "more": list(range(k + 2))}[labels]
        scores = classification_scores(truth, predicted, given)
        assert scores["macro_f1"] == f1_score(
            truth, predicted, labels=given, average="macro", zero_division=0
        )
        assert scores["accuracy"] == accuracy_score(truth, predicted)


def test_the_two_macro_f1_definitions_differ_only_on_absent_classes():
    confusion = confusion_counts(np.array([0, 0, 1]), np.array([0, 0, 1]), 3)  # class 2 never occurs
    assert macro_f1_over_present_classes(confusion) == 1.0
    assert macro_f1_over_all_classes(confusion) == pytest.approx(2 / 3)
    assert classification_scores(["a", "b"], ["a", "b"])["macro_f1"] == 1.0


def test_every_inference_path_leaves_each_submodule_in_its_own_mode(make_model):
    model = make_model()
    freezing.unfreeze_top_k(model, 1)
    model.heads.train()  # a mixed state: heads training, backbone in eval
    before = submodule_modes(model)
    data = tiny_examples()
    first = model.predict_proba(FOUR_TEXTS)
    evaluate(model, data)
    assert submodule_modes(model) == before
    build_prefix_caches(model, data)
    build_prefix_caches(model, data, 6)
    assert submodule_modes(model) == before
    evaluation_module.predict_probabilities(model, data)
    evaluation_module.sentence_embeddings(model, data)
    assert submodule_modes(model) == before
    second = model.predict_proba(FOUR_TEXTS)
    for task in TWO_TASKS:
        assert np.array_equal(first[task], second[task])


def test_caches_of_another_frozen_prefix_or_size_are_refused(make_model):
    model = make_model()
    data = tiny_examples()
    caches = build_prefix_caches(model, data, 6)  # all six layers frozen when built
    freezing.unfreeze_top_k(model, 1)  # now layer 5 trains: those caches would skip it
    with pytest.raises(ValueError, match="frozen prefix is 5"):
        evaluate(model, data, caches=caches)
    fewer = {task: examples.subset([0, 1]) for task, examples in data.items()}
    with pytest.raises(ValueError, match="the data has 2 sentences"):
        evaluate(model, fewer, caches=build_prefix_caches(model, data))


def test_predicting_needs_no_valid_labels(make_model):
    data = {"sentiment": TaskData(TINY_MOODS, [9] * len(TINY_MOODS))}  # placeholder labels
    assert evaluation_module.predict_labels(make_model(), data)["sentiment"].shape == (len(TINY_MOODS),)


def test_predicting_labels_for_a_task_without_examples_is_a_clear_error(make_model):
    empty = {"sentiment": TaskData([], np.zeros(0, dtype=np.int64))}
    with pytest.raises(ValueError, match=r"\['sentiment'\] has no examples"):
        predict_labels(make_model(), empty)


def test_predictions_and_embeddings_come_back_in_the_datas_order(make_model):
    model = make_model().eval()
    data = {"sentence_type": TaskData(SIX_TEXTS, np.zeros(len(SIX_TEXTS)))}
    probabilities = predict_probabilities(model, data, batch_size=4)["sentence_type"]
    embeddings = sentence_embeddings(model, data, batch_size=4)["sentence_type"]
    with torch.no_grad():
        for i, text in enumerate(SIX_TEXTS):  # one sentence at a time: no batching, no reordering
            single = model.encode(model.tokenize([text]))
            np.testing.assert_allclose(embeddings[i], single[0].numpy(), atol=1e-5)
            expected = model.classify(single, ["sentence_type"])["sentence_type"].softmax(-1)[0].numpy()
            np.testing.assert_allclose(probabilities[i], expected, atol=1e-5)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
    assert (predict_labels(model, data, batch_size=4)["sentence_type"] == probabilities.argmax(axis=1)).all()
