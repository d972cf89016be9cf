"""helpers.training: the loop learns, keeps the best weights, resumes bit for bit, checks first."""

import numpy as np
import pandas as pd
import pytest
import torch

from helpers import freezing
from helpers import training as training_module
from helpers.evaluation import evaluate
from helpers.task_data import TaskData
from helpers.tool.prefix_cache import build_prefix_caches
from helpers.training import train_multitask
from helpers.training_config import (
    TrainingConfig,
)
from tests.conftest import (
    FOUR_TEXTS,
    TINY_MOOD_LABELS,
    TINY_MOODS,
    TWO_TASKS,
    quick_config,
    submodule_modes,
    tiny_examples,
    tiny_split,
)


def _no_embedding(*args, **kwargs):
    raise AssertionError("no embedding work may start")


class Interrupt(Exception):
    pass


def test_training_restores_modes_and_predictions_repeat(make_model):
    model = make_model()
    freezing.unfreeze_top_k(model, 1)
    before = submodule_modes(model)
    train_multitask(model, tiny_examples(), tiny_examples(), quick_config())
    assert submodule_modes(model) == before
    first, second = model.predict_proba(FOUR_TEXTS), model.predict_proba(FOUR_TEXTS)
    for task in TWO_TASKS:
        assert np.array_equal(first[task], second[task])


def test_an_interrupted_run_restores_modes_and_gradient_checkpointing(make_model):
    model = make_model()
    freezing.unfreeze_top_k(model, 1)
    before = submodule_modes(model)

    def interrupt(step, _model):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_multitask(
            model,
            tiny_examples(),
            tiny_examples(),
            quick_config(gradient_checkpointing=True),
            on_step=interrupt,
        )
    assert submodule_modes(model) == before and model.gradient_checkpointing is False


def test_empty_validation_data_is_refused(make_model):
    model = make_model()
    with pytest.raises(ValueError, match="validation data is empty"):
        train_multitask(model, tiny_examples(), {}, quick_config())
    empty_task = {**tiny_examples(), "sentiment": TaskData([], [])}
    with pytest.raises(ValueError, match="validation data for task 'sentiment' has no examples"):
        train_multitask(model, tiny_examples(), empty_task, quick_config())
    with pytest.raises(ValueError, match="train data for task 'sentiment' has no examples"):
        train_multitask(model, empty_task, tiny_examples(), quick_config())
    with pytest.raises(ValueError, match="has no examples"):
        evaluate(model, empty_task)


def test_labels_beyond_the_heads_labels_are_refused_before_training(make_model):
    data = {**tiny_examples(), "sentiment": TaskData(TINY_MOODS, [0, 1, 2, 3, 0, 1])}
    with pytest.raises(ValueError, match=r"'sentiment' has label 3 at position 3.*3 labels \(0..2\)"):
        train_multitask(make_model(), data, tiny_examples(), quick_config())
    with pytest.raises(ValueError, match="has label 3"):
        evaluate(make_model(), data)


def test_train_multitask_checks_its_arguments_before_working(make_model):
    model, data = make_model(), tiny_examples()
    with pytest.raises(TypeError, match="config must be a TrainingConfig"):
        train_multitask(model, data, data, {"epochs": 1})
    with pytest.raises(TypeError, match="train must map task names to TaskData"):
        train_multitask(model, [("sentiment", data["sentiment"])], data, quick_config())
    with pytest.raises(TypeError, match=r"train\['sentiment'\] must be TaskData"):
        train_multitask(model, {"sentiment": (TINY_MOODS, TINY_MOOD_LABELS)}, data, quick_config())
    with pytest.raises(TypeError, match="on_step must be a function"):
        train_multitask(model, data, data, quick_config(), on_step=3)
    with pytest.raises(TypeError, match="model must be a MultiTaskModel"):
        train_multitask(model.backbone, data, data, quick_config())


@pytest.mark.parametrize("k, weighting", [(6, "sum"), (1, "uncertainty"), (1, "fixed")])
def test_training_runs_learns_and_keeps_the_best_epoch(make_model, k, weighting):
    model = make_model()
    freezing.unfreeze_top_k(model, k)
    train, validation = tiny_split()
    weights = {"sentence_type": 1.0, "sentiment": 0.5} if weighting == "fixed" else None
    config = TrainingConfig(
        epochs=4,
        batch_size=4,
        encoder_lr=1e-4,
        head_lr=5e-2,
        loss_weighting=weighting,
        loss_weights=weights,
        progress=False,
        patience=4,
    )
    result = train_multitask(model, train, validation, config)
    history = result.history
    assert len(history) == 4 and result.best_epoch == int(history.mean_macro_f1.idxmax()) + 1
    assert history.mean_macro_f1.max() > 0.5  # memorising six examples per task is easy
    assert history.train_loss.iloc[-1] < history.train_loss.iloc[0]
    assert result.best_scores() == evaluate(model, validation, config.eval_batch_size)  # the kept weights


def test_a_fixed_budget_run_evaluates_once_and_keeps_the_final_weights(make_model):
    config = TrainingConfig(
        epochs=3, batch_size=4, encoder_lr=1e-4, head_lr=5e-2, patience=1, progress=False, keep_best=False
    )
    final = {}

    def on_step(step, m):  # the trainable weights after every step; the last call holds the final ones
        final.update({n: p.detach().clone() for n, p in m.named_parameters() if p.requires_grad})

    def trained(evaluated: bool):
        torch.manual_seed(0)  # the same initial heads in both runs
        model = make_model()
        freezing.unfreeze_top_k(model, 1)
        train, validation = tiny_split()
        result = train_multitask(model, train, validation if evaluated else None, config, on_step=on_step)
        return model, result, validation

    model, result, validation = trained(evaluated=True)
    assert list(result.history.epoch) == [3] and result.best_epoch == 3 and not result.stopped_early
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            assert torch.equal(parameter, final[name]), name
    assert result.best_scores() == evaluate(model, validation, config.eval_batch_size)
    unevaluated, quiet, _ = trained(evaluated=False)  # validation=None: no evaluation, the same run
    assert quiet.history.empty
    for name, parameter in unevaluated.state_dict().items():
        assert torch.equal(parameter, model.state_dict()[name]), name
    with pytest.raises(ValueError, match="not evaluated"):
        quiet.best_scores()
    with pytest.raises(ValueError, match="needs TrainingConfig\\(keep_best=False\\)"):
        train_multitask(make_model(), tiny_split()[0], None, TrainingConfig(progress=False))
    with pytest.raises(ValueError, match="keep_best=False evaluates once"):
        TrainingConfig(keep_best=False, evaluations_per_epoch=2)
    with pytest.raises(TypeError, match="keep_best"):
        TrainingConfig(keep_best="no")


def test_data_for_a_task_without_a_head_is_refused(make_model):
    model = make_model()
    train, validation = tiny_split()
    extra = {**train, "topic": TaskData(["a b", "c d"], np.array([0, 1]))}
    with pytest.raises(ValueError, match="no head for"):
        train_multitask(model, extra, validation, TrainingConfig(epochs=1, progress=False))


def test_training_everything_frozen_is_refused(make_model):
    model = make_model()
    freezing.freeze_all(model)
    train, validation = tiny_split()
    with pytest.raises(ValueError, match="nothing to train"):
        train_multitask(model, train, validation, TrainingConfig(epochs=1, progress=False))


def test_class_weighting_changes_the_run_and_is_validated(make_model):
    train, validation = tiny_split()
    runs = {}
    for weighting in ("none", "balanced"):
        model = make_model()
        freezing.freeze_backbone(model)
        config = TrainingConfig(
            epochs=1, batch_size=4, head_lr=5e-2, class_weighting=weighting, progress=False
        )
        runs[weighting] = train_multitask(model, train, validation, config).steps["loss"].to_numpy()
    assert not np.allclose(runs["none"], runs["balanced"])  # the tiny sentence types are imbalanced
    with pytest.raises(ValueError, match="class weighting"):
        TrainingConfig(class_weighting="inverse")


def test_evaluating_within_epochs_and_the_step_log(make_model):
    model = make_model()
    freezing.unfreeze_top_k(model, 1)
    train, validation = tiny_split()
    config = TrainingConfig(
        epochs=2, batch_size=2, evaluations_per_epoch=3, loss_weighting="uncertainty", patience=10,
        progress=False,
    )  # fmt: skip
    result = train_multitask(model, train, validation, config)
    # 12 examples in batches of 2: 6 steps per epoch, evaluated after steps 2, 4 and 6 of each
    assert result.history.epoch.round(3).tolist() == [0.333, 0.667, 1.0, 1.333, 1.667, 2.0]
    assert result.history.step.tolist() == [2, 4, 6, 8, 10, 12]
    steps = result.steps
    assert steps.step.tolist() == list(range(1, 13)) and set(steps.task) <= set(model.task_labels)
    assert (steps.loss > 0).all() and steps.sentiment_loss_weight.nunique() > 1  # the weights learn
    assert result.best_epoch in result.history.epoch.tolist()


def test_a_run_with_gradient_checkpointing_ends_in_the_same_weights(make_model):
    weights, histories = [], []
    for checkpointing in (False, True):
        model = make_model()
        torch.manual_seed(0)
        for head in model.heads.values():
            head.layers[-1].reset_parameters()
        train, validation = tiny_split()
        config = TrainingConfig(
            epochs=2, batch_size=4, encoder_lr=1e-4, progress=False, gradient_checkpointing=checkpointing
        )
        histories.append(train_multitask(model, train, validation, config).history)
        assert model.gradient_checkpointing is False  # the setting lasts for the run only
        weights.append(model.layers[0].attention.self.query.weight.detach().clone())
    pd.testing.assert_frame_equal(histories[0], histories[1], atol=1e-5)
    torch.testing.assert_close(weights[0], weights[1], atol=1e-6, rtol=1e-5)
    assert not torch.equal(weights[0], make_model().layers[0].attention.self.query.weight)  # it trained


# ----- a run never silently loses or corrupts work (issue 29) --------------------------------------


def test_an_exploding_loss_stops_the_run_before_its_weights_are_used(make_model):
    from helpers.optimization import TrainingDiverged

    model = make_model()
    train, validation = tiny_split()
    with pytest.raises(TrainingDiverged, match="task loss reached|the loss is nan"):
        train_multitask(model, train, validation, quick_config(epochs=3, encoder_lr=1e3, head_lr=1e3))


def test_prefix_caches_are_a_speed_up_only(make_model):
    """The run through the caches (of the sentences and of their punctuation-stripped twins) is the run
    without them, to float precision. (Dropout rate 1: with a mixed batch the cached path runs the
    kept and the stripped sentences as two batches, which draw other dropout masks.)"""
    runs = []
    for cached in (False, True):
        model = make_model()
        torch.manual_seed(0)
        for head in model.heads.values():
            head.layers[-1].reset_parameters()
        freezing.unfreeze_top_k(model, 1)
        train, validation = tiny_split()
        caches = {}
        if cached:
            stripped = {"sentence_type": train["sentence_type"].without_terminal_punctuation()}
            caches = {
                "train_caches": build_prefix_caches(model, train),
                "validation_caches": build_prefix_caches(model, validation),
                "stripped_caches": build_prefix_caches(model, stripped),
            }
        config = TrainingConfig(epochs=2, batch_size=3, punctuation_dropout=1.0, progress=False)
        runs.append(train_multitask(model, train, validation, config, **caches))
    assert runs[0].examples_seen == runs[1].examples_seen == 24
    np.testing.assert_allclose(runs[0].steps["loss"], runs[1].steps["loss"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(runs[0].history["train_loss"], runs[1].history["train_loss"], rtol=1e-4)


def test_a_cached_task_under_punctuation_dropout_needs_its_stripped_caches(make_model, monkeypatch):
    model = make_model()
    freezing.unfreeze_top_k(model, 1)
    train, validation = tiny_split()
    caches = build_prefix_caches(model, train)
    config = TrainingConfig(epochs=1, batch_size=3, punctuation_dropout=1.0, progress=False)
    monkeypatch.setattr(training_module, "training_step", _no_embedding)
    with pytest.raises(ValueError, match=r"cached tasks \['sentence_type'\] needs stripped_caches"):
        train_multitask(model, train, validation, config, train_caches=caches)
