"""Freezing utilities and layer-wise learning rates: frozen parameters get no gradient and stay put."""

import pytest
import torch

from helpers import freezing
from helpers.optimization import parameter_groups

TEXTS = ["Stop that.", "Why not?", "It works!", "The sky is grey."]


def train_step(model):
    """One AdamW step on both tasks; returns {name: (before, after)} for every parameter."""
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    groups = parameter_groups(model, encoder_lr=1e-3, head_lr=1e-2)
    optimizer = torch.optim.AdamW(groups)
    logits = model(model.tokenize(TEXTS))
    loss = sum(
        torch.nn.functional.cross_entropy(task_logits, torch.arange(len(TEXTS)) % task_logits.shape[1])
        for task_logits in logits.values()
    )
    loss.backward()
    optimizer.step()
    return {name: (before[name], p) for name, p in model.named_parameters()}


def assert_frozen_exactly(model, is_frozen):
    moved = train_step(model)
    for name, (before, parameter) in moved.items():
        if is_frozen(name):
            assert not parameter.requires_grad, name
            assert parameter.grad is None, name
            assert torch.equal(before, parameter.detach()), name
        else:
            assert parameter.requires_grad, name
            assert not torch.equal(before, parameter.detach()), name


def test_freeze_all_leaves_nothing_to_train(make_model):
    model = make_model()
    freezing.freeze_all(model)
    assert freezing.count_parameters(model) == 0
    assert parameter_groups(model, encoder_lr=1e-3) == []


def test_freeze_backbone_trains_only_the_heads(make_model):
    model = make_model()
    freezing.freeze_backbone(model)
    assert_frozen_exactly(model, lambda name: name.startswith("backbone."))


def test_freeze_head_trains_everything_but_that_head(make_model):
    model = make_model()
    freezing.freeze_head(model, "sentiment")
    assert_frozen_exactly(model, lambda name: name.startswith("heads.sentiment."))
    with pytest.raises(KeyError, match="no head"):
        freezing.freeze_head(model, "topic")


@pytest.mark.parametrize("k", [0, 2, 6])
def test_unfreeze_top_k(make_model, k):
    model = make_model()
    freezing.unfreeze_top_k(model, k)
    top = {f"backbone.encoder.layer.{i}." for i in range(6 - k, 6)}
    assert_frozen_exactly(
        model, lambda name: name.startswith("backbone.") and not any(name.startswith(t) for t in top)
    )
    assert freezing.frozen_prefix_length(model) == 6 - k


def test_unfreeze_top_k_with_embeddings_and_bounds(make_model):
    model = make_model()
    freezing.unfreeze_top_k(model, 6, embeddings=True)
    assert freezing.count_parameters(model) == freezing.count_parameters(model, trainable_only=False)
    assert freezing.frozen_prefix_length(model) == 0
    with pytest.raises(ValueError):
        freezing.unfreeze_top_k(model, 7)


def test_a_copy_shares_the_frozen_part_and_trains_its_own(make_model):
    import numpy as np

    from helpers.task_data import TaskData
    from helpers.training import train_multitask
    from helpers.training_config import TrainingConfig

    original = make_model()
    freezing.unfreeze_top_k(original, 1)
    before = {name: p.detach().clone() for name, p in original.named_parameters()}
    twin = freezing.copy_sharing_frozen(original)
    pairs = list(zip(original.named_parameters(), twin.named_parameters(), strict=True))
    for (name, mine), (_, theirs) in pairs:
        assert (mine is theirs) == (not mine.requires_grad), name
    data = {"sentence_type": TaskData(["Go home.", "Is it late?", "It rained."], np.array([2, 1, 0]))}
    train_multitask(twin, data, data, TrainingConfig(epochs=1, batch_size=3, head_lr=0.1, progress=False))
    for name, parameter in original.named_parameters():
        assert torch.equal(parameter, before[name]), name  # training the copy left the original alone
    top = "backbone.encoder.layer.5.output.dense.weight"
    assert not torch.equal(twin.layers[-1].output.dense.weight, before[top])  # the copy did train
