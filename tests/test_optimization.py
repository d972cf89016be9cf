"""helpers.optimization: parameter groups with layer-wise rates, the schedule, divergence."""

import pytest
import torch

from helpers import freezing
from helpers import optimization as optimization_module
from helpers.optimization import parameter_groups
from helpers.training import train_multitask
from tests.conftest import (
    quick_config,
    tiny_examples,
)


def test_layer_wise_learning_rates_decay_downwards(make_model):
    model = make_model()
    groups = parameter_groups(model, encoder_lr=1e-4, head_lr=1e-3, layer_decay=0.5)
    rates = {group["name"]: group["lr"] for group in groups}
    assert rates["layer 5"] == pytest.approx(1e-4)
    assert rates["layer 4"] == pytest.approx(5e-5)
    assert rates["layer 0"] == pytest.approx(1e-4 * 0.5**5)
    assert rates["embeddings"] == pytest.approx(1e-4 * 0.5**6)
    assert rates["head: sentiment"] == pytest.approx(1e-3)
    blocks = {group["name"]: group["block"] for group in groups}
    assert blocks["embeddings"] == 0 and blocks["layer 0"] == 1 and blocks["layer 5 (no decay)"] == 6
    assert blocks["head: sentiment"] is None
    assert all(group["weight_decay"] == 0.0 for group in groups if "no decay" in group["name"])
    grouped = sum(p.numel() for group in groups for p in group["params"])
    assert grouped == freezing.count_parameters(model)


def test_the_uncertainty_weights_get_no_weight_decay(make_model, monkeypatch):
    created = []
    real_adamw = torch.optim.AdamW

    def recording_adamw(groups, *args, **kwargs):
        optimizer = real_adamw(groups, *args, **kwargs)
        created.append(optimizer)
        return optimizer

    monkeypatch.setattr(optimization_module.torch.optim, "AdamW", recording_adamw)
    model = make_model()
    freezing.freeze_backbone(model)
    train_multitask(model, tiny_examples(), tiny_examples(), quick_config(loss_weighting="uncertainty"))
    groups = {group["name"]: group for group in created[0].param_groups}
    assert groups["loss weights"]["weight_decay"] == 0.0
    assert groups["head: sentiment"]["weight_decay"] == 0.01


def test_the_uncertainty_weights_keep_a_constant_rate_while_the_rest_decays():
    weights, layer, head = (torch.nn.Parameter(torch.zeros(2)) for _ in range(3))
    optimizer = torch.optim.AdamW(
        [
            {"params": [layer], "lr": 1e-4, "name": "layer 5", "block": 6},
            {"params": [head], "lr": 1e-3, "name": "head: sentiment", "block": None},
            {"params": [weights], "lr": 0.1, "name": optimization_module.LOSS_WEIGHTS, "block": None},
        ]
    )
    config = quick_config(loss_weighting="uncertainty", warmup_fraction=0.1)
    scheduler = optimization_module.make_scheduler(optimizer, 20, config)
    rates = []
    for _ in range(20):
        rates.append([group["lr"] for group in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    assert all(step[2] == pytest.approx(0.1) for step in rates)  # constant, warm-up and decay included
    assert rates[-1][1] < 0.2 * max(step[1] for step in rates)  # the head's rate decays
    assert rates[0][1] == 0.0  # ... after a warm-up from zero
