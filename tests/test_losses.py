"""helpers.losses: masked per-task losses, class weights, loss weighting."""

import numpy as np
import pytest
import torch

from helpers.losses import IGNORE_INDEX, LossCombiner, batch_labels, class_weights, masked_task_losses
from tests.conftest import SIX_TEXTS


def test_combining_no_losses_is_a_clear_error():
    logits = {"a": torch.zeros(2, 3)}
    losses = masked_task_losses(logits, {"a": torch.tensor([IGNORE_INDEX, IGNORE_INDEX])})
    assert losses == {}
    with pytest.raises(ValueError, match="no task has a labelled example"):
        LossCombiner(["a"])(losses)


def test_a_batch_with_one_tasks_labels_gives_the_other_head_no_gradient(make_model):
    model = make_model()
    labels = batch_labels(list(model.task_labels), "sentence_type", np.array([2, 1, 3, 0, 2, 1]))
    assert (labels["sentiment"] == IGNORE_INDEX).all()
    losses = masked_task_losses(model(model.tokenize(SIX_TEXTS)), labels)
    assert list(losses) == ["sentence_type"]
    sum(losses.values()).backward()
    assert model.heads["sentiment"].layers[-1].weight.grad is None
    assert model.heads["sentence_type"].layers[-1].weight.grad.abs().sum() > 0


def test_partially_labelled_batches_average_over_labelled_examples_only():
    logits = {"a": torch.tensor([[2.0, 0.0], [0.0, 2.0], [5.0, -5.0]])}
    labels = {"a": torch.tensor([0, 1, IGNORE_INDEX])}
    expected = torch.nn.functional.cross_entropy(logits["a"][:2], labels["a"][:2])
    torch.testing.assert_close(masked_task_losses(logits, labels)["a"], expected)


def test_uncertainty_weights_receive_gradients_and_fixed_weights_apply():
    combiner = LossCombiner(["a", "b"], "uncertainty")
    total = combiner({"a": torch.tensor(2.0), "b": torch.tensor(0.8)})  # d/ds = 1/2 - L, zero at L = 1/2
    total.backward()
    assert all(p.grad is not None and p.grad.abs() > 0 for p in combiner.parameters())
    assert combiner.task_weights() == {"a": 1.0, "b": 1.0}
    fixed = LossCombiner(["a", "b"], "fixed", {"a": 2.0, "b": 0.5})
    assert float(fixed({"a": torch.tensor(1.0), "b": torch.tensor(4.0)})) == pytest.approx(4.0)
    with pytest.raises(ValueError):
        LossCombiner(["a", "b"], "fixed", {"a": 1.0})


def test_balanced_class_weights_follow_scikit_learn_and_weigh_every_class_equally():
    labels = {"t": np.array([0, 0, 0, 0, 0, 0, 1, 1, 2, 2])}  # class 3 absent
    weights = class_weights(labels, {"t": 4})["t"]
    expected = [10 / (3 * 6), 10 / (3 * 2), 10 / (3 * 2), 1.0]  # n / (classes present * count)
    assert torch.allclose(weights, torch.tensor(expected))
    per_class_total = [float(weights[c]) * int((labels["t"] == c).sum()) for c in range(3)]
    assert np.allclose(per_class_total, per_class_total[0])
    assert class_weights(labels, {"t": 4}, "none") is None
    with pytest.raises(ValueError, match="class weighting"):
        class_weights(labels, {"t": 4}, "inverse")
    with pytest.raises(ValueError, match="0..1, got 2"):
        class_weights(labels, {"t": 2})
    whole = class_weights({"t": labels["t"].astype(float).tolist()}, {"t": 4})["t"]
    assert torch.equal(whole, weights)  # whole-number floats in a list, as TaskData accepts them
    with pytest.raises(ValueError, match="whole numbers"):
        class_weights({"t": [0.5, 1.0]}, {"t": 2})
    with pytest.raises(TypeError, match="n_classes"):
        class_weights(labels, {"other": 4})


def test_class_weighted_loss_is_the_weighted_mean_over_labelled_examples():
    torch.manual_seed(0)
    logits = {"t": torch.randn(5, 3)}
    labels = {"t": torch.tensor([0, 0, 1, IGNORE_INDEX, 2])}
    weight = torch.tensor([0.5, 2.0, 4.0])
    loss = masked_task_losses(logits, labels, {"t": weight})["t"]
    kept = torch.tensor([0, 1, 2, 4])
    per_example = torch.nn.functional.cross_entropy(logits["t"][kept], labels["t"][kept], reduction="none")
    example_weight = weight[labels["t"][kept]]
    assert torch.isclose(loss, (example_weight * per_example).sum() / example_weight.sum())
    with pytest.raises(KeyError, match="unknown tasks"):
        masked_task_losses(logits, labels, {"T": weight})  # a misspelt task is not silently unweighted
