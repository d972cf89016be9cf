"""The forgetting study's loop (`helpers.analysis.forgetting`): the plain arm is the real loop, LwF
adds exactly its distillation term, the frozen head stays frozen."""

import copy

import pytest
import torch

from helpers import freezing
from helpers.analysis.forgetting import continue_training, distillation_loss, old_head_logits
from helpers.training import train_multitask
from tests.conftest import quick_config, tiny_examples

CONFIG = quick_config(epochs=2, keep_best=False, seed=3)


def top1_sentence_type_frozen(make_model):
    """A model training its top layer, the sentence-type head frozen, and the sentiment-only data."""
    model = make_model()
    freezing.unfreeze_top_k(model, 1)
    freezing.freeze_head(model, "sentence_type")
    return model, {"sentiment": tiny_examples()["sentiment"]}


def test_without_protection_the_loop_is_train_multitask_bit_for_bit(make_model):
    first, sentiment_only = top1_sentence_type_frozen(make_model)
    config = CONFIG
    second = copy.deepcopy(first)
    train_multitask(first, sentiment_only, None, config)
    steps = continue_training(second, sentiment_only, "sentiment", config)
    assert steps == 2 * 2  # six sentences in batches of 4, two epochs
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_lwf_changes_training_and_keeps_the_frozen_head_fixed(make_model):
    plain, sentiment_only = top1_sentence_type_frozen(make_model)
    config = CONFIG
    distilled = copy.deepcopy(plain)
    head = copy.deepcopy(plain.heads["sentence_type"].state_dict())
    teacher = old_head_logits(plain, "sentence_type", "sentiment", sentiment_only["sentiment"])
    assert teacher.shape == (6, 4)
    continue_training(plain, sentiment_only, "sentiment", config)
    continue_training(distilled, sentiment_only, "sentiment", config, teacher=teacher, old="sentence_type")
    assert any(not torch.equal(a, b) for a, b in zip(plain.parameters(), distilled.parameters(), strict=True))
    for name, value in distilled.heads["sentence_type"].state_dict().items():
        assert torch.equal(value, head[name]), name


def test_distillation_is_zero_for_the_teacher_itself_and_positive_otherwise():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
    assert distillation_loss(logits, logits, 2.0).item() == pytest.approx(0.0, abs=1e-7)
    assert distillation_loss(logits.flip(1), logits, 2.0).item() > 0.1


def test_lwf_refuses_teacher_logits_that_do_not_match_the_sentences(make_model):
    data = tiny_examples()
    with pytest.raises(ValueError, match="teacher"):
        continue_training(
            make_model(), {"sentiment": data["sentiment"]}, "sentiment", quick_config(),
            teacher=torch.zeros(5, 4), old="sentence_type",
        )  # fmt: skip
