"""Freezing parts of the multi-task model.

A frozen parameter has `requires_grad = False`: it gets no gradient and the optimiser leaves it
alone. These functions only flip that flag; build the optimiser after calling them
(`helpers.optimization.parameter_groups` hands it the trainable parameters only).
"""

from __future__ import annotations

import copy

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
