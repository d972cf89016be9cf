"""`train_multitask`'s argument checks, all made before any work: the model, the configuration
(task names included), the data, the callback, the checkpoint path and the state to resume from."""

from __future__ import annotations

import os
from pathlib import Path

from helpers.checkpointing import load_checkpoint
from helpers.encoder import check_bool
from helpers.model import MultiTaskModel
from helpers.task_data import check_task_data
from helpers.training_config import TrainingConfig


def check_arguments(model, train, validation, config, on_step) -> TrainingConfig:
    """The configuration (the default one for None); TypeError/ValueError for a wrong model,
    configuration, data or callback, before any work."""
    config = TrainingConfig() if config is None else config
    if not isinstance(model, MultiTaskModel):
        raise TypeError(f"model must be a MultiTaskModel, got {type(model).__name__}")
    if not isinstance(config, TrainingConfig):
        raise TypeError(f"config must be a TrainingConfig, got {type(config).__name__}")
    check_task_data(model, train, "train", require_examples=True)
    if not train:
        raise ValueError("train data is empty: give at least one task with examples")
    if validation is None and config.keep_best:
        raise ValueError(
            "validation=None trains without evaluating, which needs TrainingConfig(keep_best=False); "
            "choosing the best epoch needs validation data"
        )
    if validation is not None:
        check_task_data(model, validation, "validation", require_examples=True)
        if not validation:
            raise ValueError(
                "validation data is empty: choosing the best epoch and early stopping need at least one task"
            )
    if on_step is not None and not callable(on_step):
        raise TypeError(f"on_step must be a function (step, model), got {type(on_step).__name__}")
    tasks = list(model.task_labels)
    named = {"loss_weights": list(config.loss_weights or {})}
    if config.punctuation_dropout > 0:
        named["punctuation_tasks"] = list(config.punctuation_tasks)
    for field_name, names in named.items():
        unknown = [task for task in names if task not in tasks]
        if unknown:
            raise ValueError(
                f"TrainingConfig.{field_name} names task(s) {unknown} the model lacks; its tasks: {tasks}"
            )
    missing = [task for task in tasks if config.loss_weights is not None and task not in config.loss_weights]
    if missing:
        raise ValueError(
            f"TrainingConfig.loss_weights lacks a weight for task(s) {missing}; give one per task"
        )
    return config


def check_checkpoint_path(checkpoint, resume) -> None:
    """TypeError/ValueError for a `resume` that is not a bool or a `checkpoint` that cannot be written."""
    check_bool("resume", resume)
    if checkpoint is None:
        return
    if not isinstance(checkpoint, str | os.PathLike):
        raise TypeError(f"checkpoint must be a file path (str or Path), got {type(checkpoint).__name__}")
    path = Path(checkpoint)  # as `save_checkpoint` writes it
    if path.is_dir():
        raise ValueError(
            f"checkpoint={str(checkpoint)!r} is a folder; name a file in it, e.g. {path / 'run.pt'}"
        )
    existing = path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"checkpoint={str(checkpoint)!r}: {existing} is a file, not a folder")


def checkpoint_to_resume(checkpoint, resume: bool, config: TrainingConfig, world_size: int) -> dict | None:
    """The checkpoint's state when resuming (checked against `config`), else None."""
    if resume and checkpoint is None:
        raise ValueError("resume=True needs the checkpoint to resume from (checkpoint=...)")
    if resume and world_size > 1:
        raise ValueError("resuming is supported in a single process only")
    return load_checkpoint(checkpoint, config) if resume else None
