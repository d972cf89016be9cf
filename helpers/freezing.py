"""Freezing parts of the multi-task model.

A frozen parameter has `requires_grad = False`: it gets no gradient and the optimiser leaves it
alone. These functions only flip that flag; build the optimiser after calling them
(`helpers.optimization.parameter_groups` hands it the trainable parameters only).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from helpers.checks import check_bool, check_int
from helpers.model import MultiTaskModel


def set_trainable(module: nn.Module, trainable: bool) -> None:
    """Freeze (`False`) or unfreeze (`True`) every parameter of a module."""
    for parameter in module.parameters():
        parameter.requires_grad_(trainable)


def freeze_all(model: MultiTaskModel) -> None:
    """Freeze the whole network: a fixed function, for inference or as a feature extractor."""
    set_trainable(model, False)


def unfreeze_all(model: MultiTaskModel) -> None:
    """Make every parameter trainable again (full fine-tuning)."""
    set_trainable(model, True)


def freeze_backbone(model: MultiTaskModel) -> None:
    """Freeze the shared encoder (embeddings and all layers); the heads stay trainable."""
    set_trainable(model.backbone, False)


def unfreeze_top_k(model: MultiTaskModel, k: int, embeddings: bool = False) -> None:
    """Freeze the encoder except its top `k` layers (and the embeddings if asked); heads stay trainable.

    `k = 0` is a frozen backbone, `k = number of layers` with `embeddings=True` is full fine-tuning.
    """
    n_layers = len(model.layers)
    check_int("k", k, 0, n_layers)
    check_bool("embeddings", embeddings)
    freeze_backbone(model)
    for layer in model.layers[n_layers - k :]:
        set_trainable(layer, True)
    set_trainable(model.backbone.embeddings, embeddings)


def freeze_head(model: MultiTaskModel, task: str) -> None:
    """Freeze one task's head: its weights stay fixed while the shared encoder moves under it."""
    if task not in model.heads:
        raise KeyError(f"no head for task {task!r}; the model has {list(model.heads)}")
    set_trainable(model.heads[task], False)


def copy_sharing_frozen(model: MultiTaskModel) -> MultiTaskModel:
    """A copy with its own trainable parameters and the frozen ones shared with `model`, not copied.

    Many runs that start from one pre-trained model then cost the memory of their trainable part
    only (for top-1 training: 8 MB instead of 90 MB per copy). The shared parameters are the same
    objects in both models, so do not unfreeze them in either: unfreeze before copying instead.
    """
    shared = {id(parameter): parameter for parameter in model.parameters() if not parameter.requires_grad}
    return copy.deepcopy(model, memo=shared)


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of a module."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def frozen_prefix_length(model: MultiTaskModel) -> int:
    """How many of the lowest encoder layers are frozen together with the embeddings.

    Their output never changes during training, so it can be computed once and cached; training
    then runs only the layers above. 0 when the embeddings are trainable.
    """
    if any(p.requires_grad for p in model.backbone.embeddings.parameters()):
        return 0
    prefix = 0
    for layer in model.layers:
        if any(p.requires_grad for p in layer.parameters()):
            break
        prefix += 1
    return prefix


def heads_from_probes(model: MultiTaskModel, probes: Mapping[str, Any]) -> None:
    """The linear-probe stage of LP-FT, exact: copy fitted probes' weights into the model's heads.

    `probes[task]` is a fitted (multinomial or binary) logistic regression on the model's own
    sentence embeddings (pooled, normalised if the model normalises: what `classify` reads), e.g.
    `helpers.analysis.probes.fit_tuned_probe`; anything with `coef_` (n_classes, width) or, for two
    classes, (1, width), `intercept_` and `classes_` (label indices or label names) will do. The
    head's logits then equal the probe's decision function up to float32 rounding, its softmax the
    probe's probabilities, so its predictions are the probe's. Sklearn's classes are sorted; row
    `i` of the head is the model's label `i`. Heads not named are left alone. ValueError, before
    any head changes, for an unknown task, a non-linear head, a width or class set that does not
    match; the binary case writes logits (0, z), whose softmax is the probe's sigmoid(z).
    """
    weights = {}
    for task, probe in probes.items():
        if task not in model.heads:
            raise ValueError(f"no head for task {task!r}; the model has {list(model.heads)}")
        linear = model.heads[task].layers[-1]
        if len(model.heads[task].layers) != 2 or not isinstance(linear, nn.Linear):
            raise ValueError(f"the head of {task!r} is not linear: a probe fits only a linear head")
        labels = model.task_labels[task]
        classes = [labels[c] if isinstance(c, (int, np.integer)) else str(c) for c in probe.classes_]
        if sorted(classes) != sorted(labels):
            raise ValueError(f"the probe for {task!r} knows the classes {classes}, the head {labels}")
        coef = np.asarray(probe.coef_, dtype=np.float64)
        intercept = np.asarray(probe.intercept_, dtype=np.float64).reshape(-1)
        if len(classes) == 2 and coef.shape[0] == 1:  # binary: one row, for the second class
            coef = np.vstack([np.zeros_like(coef), coef])
            intercept = np.concatenate([[0.0], intercept])
        if coef.shape != (len(classes), linear.in_features) or intercept.shape != (len(classes),):
            raise ValueError(
                f"the probe for {task!r} has coef_ {coef.shape} and intercept_ {intercept.shape}; "
                f"the head needs ({len(classes)}, {linear.in_features}) and ({len(classes)},)"
            )
        order = [classes.index(label) for label in labels]  # the probe's row of each head row
        weights[task] = (coef[order], intercept[order])
    with torch.no_grad():
        for task, (coef, intercept) in weights.items():
            linear = model.heads[task].layers[-1]
            linear.weight.copy_(torch.as_tensor(coef, dtype=linear.weight.dtype))
            linear.bias.copy_(torch.as_tensor(intercept, dtype=linear.bias.dtype))
