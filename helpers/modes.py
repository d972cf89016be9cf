"""Train and eval mode, switched for a block and restored afterwards, submodule by submodule.

`model.train()` / `model.eval()` set one mode for every submodule. A model whose frozen part runs
in eval mode while the rest trains has mixed modes, and `modes_restored` / `eval_mode` put each
submodule's own mode back, also when the block raises.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from torch import nn

if TYPE_CHECKING:
    from helpers.model import MultiTaskModel


@contextmanager
def modes_restored(module: nn.Module) -> Iterator[nn.Module]:
    """On exit, put every submodule back into its own train/eval mode, whatever the body switched.

    `module.train(was_training)` is not enough: it sets one mode for all submodules, so a frozen
    backbone that was in eval mode would come back with dropout on.
    """
    modes = [(submodule, submodule.training) for submodule in module.modules()]
    try:
        yield module
    finally:
        for submodule, training in modes:
            submodule.training = training


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Eval mode (dropout off) inside the block; every submodule's own mode is restored afterwards."""
    with modes_restored(module):
        module.eval()
        yield module


def train_mode_above(model: MultiTaskModel, prefix: int) -> None:
    """Training mode (dropout on) above the frozen `prefix` layers; the frozen prefix (and the embeddings,
    when `prefix` > 0) runs as in inference."""
    model.train()
    if prefix > 0:
        model.backbone.embeddings.eval()
        for layer in model.layers[:prefix]:
            layer.eval()


@contextmanager
def training_settings(model: MultiTaskModel, gradient_checkpointing: bool) -> Iterator[None]:
    """The run's gradient-checkpointing setting inside; the model's modes and setting restored after,
    also when training is interrupted."""
    before = model.gradient_checkpointing
    model.gradient_checkpointing = gradient_checkpointing
    try:
        with modes_restored(model):
            yield
    finally:
        model.gradient_checkpointing = before
