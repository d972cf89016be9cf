"""helpers.training_config: TrainingConfig's checks, early stopping, checkpoints."""

import math

import pytest
import torch

from helpers import training as training_module
from helpers.training import train_multitask
from helpers.training_config import EarlyStopping, TrainingConfig
from tests.conftest import (
    quick_config,
    tiny_examples,
)


def _no_embedding(*args, **kwargs):
    raise AssertionError("no embedding work may start")


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("patience", 0, "TrainingConfig.patience must be at least 1, got 0"),
        ("patience", -1, "TrainingConfig.patience must be at least 1, got -1"),
        ("warmup_fraction", -0.1, r"TrainingConfig.warmup_fraction must be a finite number in \[0.0, 1.0\]"),
        ("warmup_fraction", 1.5, "warmup_fraction"),
        ("epochs", 0, "TrainingConfig.epochs must be at least 1"),
        ("epochs", 2.5, "TrainingConfig.epochs must be an integer"),
        ("batch_size", True, "TrainingConfig.batch_size must be an integer"),
        ("eval_batch_size", 0, "eval_batch_size"),
        ("evaluations_per_epoch", 0, "evaluations_per_epoch"),
        ("encoder_lr", -1e-5, "encoder_lr"),
        ("head_lr", math.nan, "head_lr must be a finite number"),
        ("weight_decay", -0.01, "weight_decay"),
        ("layer_decay", 0.0, "layer_decay"),
        ("max_grad_norm", 0.0, "max_grad_norm"),
        ("temperature", 0.0, "temperature"),
        ("punctuation_dropout", 1.5, "punctuation_dropout"),
        ("seed", -3, "seed must be between 0 and 4294967295"),
        ("progress", "yes", "progress must be True or False"),
        ("amp", 1, "amp must be True or False"),
        ("sampling", "random", "unknown sampling"),
        ("loss_weighting", "mean", "unknown loss weighting"),
        ("loss_weights", {"sentiment": -1.0}, "loss_weights"),
        ("punctuation_tasks", "sentence_type", "punctuation_tasks must be a tuple"),
    ],
)
def test_training_config_names_the_field_the_value_and_the_range(field, value, message):
    with pytest.raises((TypeError, ValueError), match=message):
        TrainingConfig(**{field: value})


def test_fixed_weighting_needs_weights():
    with pytest.raises(ValueError, match="needs loss_weights"):
        TrainingConfig(loss_weighting="fixed")


def test_patience_one_keeps_going_while_the_score_improves():
    stopper = EarlyStopping(patience=1)
    module = torch.nn.Linear(1, 1)
    assert not any(stopper.update(score, epoch, module) for epoch, score in enumerate([0.1, 0.2, 0.3], 1))
    assert stopper.update(0.3, 4, module)
    with pytest.raises(ValueError, match="patience must be at least 1"):
        EarlyStopping(0)


def test_loss_weights_are_refused_unless_the_weighting_is_fixed():
    with pytest.raises(ValueError, match="loss_weighting='fixed'.*'sum'"):
        TrainingConfig(loss_weights={"sentiment": 1.0}, loss_weighting="sum")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"loss_weighting": "fixed", "loss_weights": {"sentence_type": 1.0, "sentimnet": 1.0}}, "sentimnet"),
        ({"loss_weighting": "fixed", "loss_weights": {"sentence_type": 1.0}}, "lacks a weight .*sentiment"),
        ({"punctuation_dropout": 0.5, "punctuation_tasks": ("sentence_typ",)}, "sentence_typ"),
    ],
)
def test_task_names_in_the_config_must_be_the_models(make_model, monkeypatch, options, message):
    monkeypatch.setattr(training_module, "make_optimizer", _no_embedding)
    with pytest.raises(ValueError, match=message):
        train_multitask(make_model(), tiny_examples(), tiny_examples(), quick_config(**options))


def test_punctuation_tasks_none_is_a_clear_error():
    with pytest.raises(TypeError, match="punctuation_tasks must be a tuple of task names"):
        TrainingConfig(punctuation_tasks=None)


def test_early_stopping_keeps_the_best_state_and_stops_after_patience():
    module = torch.nn.Linear(1, 1)
    stopper = EarlyStopping(patience=2)
    assert not stopper.update(0.5, 1, module)
    with torch.no_grad():
        module.weight.fill_(3.0)
    assert not stopper.update(0.7, 2, module)
    assert not stopper.update(0.6, 3, module)
    assert stopper.update(0.65, 4, module)
    assert stopper.best_epoch == 2 and float(stopper.best_state["weight"]) == 3.0
    with torch.no_grad():
        module.weight.fill_(-1.0)
    stopper.restore_best(module)
    assert float(module.weight.detach()) == 3.0


def test_config_rejects_bad_values():
    with pytest.raises(ValueError):
        TrainingConfig(sampling="random")
    with pytest.raises(ValueError):
        TrainingConfig(punctuation_dropout=1.5)
    with pytest.raises(ValueError):
        TrainingConfig(epochs=0)


def test_a_config_changed_after_it_was_made_is_checked_again(make_model):
    config = quick_config()
    config.epochs = 0  # a plain dataclass: nothing stops the assignment itself
    with pytest.raises(ValueError, match="TrainingConfig.epochs must be at least 1"):
        train_multitask(make_model(), tiny_examples(), tiny_examples(), config)
