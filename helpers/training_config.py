"""A training run: what defines it (`TrainingConfig`), what it decides as it goes (when to evaluate,
`EvaluationSchedule`; when to stop, `EarlyStopping`), its resumable state (`TrainingState`) and
what it leaves behind (`TrainingResult`).

`TrainingState` holds the weights, the optimiser, the schedule, the sampler, the random number
generators, early stopping and the history so far, so that a run resumed from its `state_dict()`
ends exactly where an uninterrupted run would have (bit for bit); `helpers.tool.checkpoint` writes
it to a file after every epoch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from helpers.checks import check_bool, check_int, check_number
from helpers.evaluation import CLASSIFICATION_METRICS
from helpers.losses import CLASS_WEIGHTINGS, LOSS_WEIGHTINGS, LossCombiner
from helpers.task_data import SAMPLING_STRATEGIES, TaskBatchSampler


@dataclass
class TrainingConfig:
    """Everything that defines a training run (saved next to the model by the CLI)."""

    epochs: int = 3
    batch_size: int = 32
    encoder_lr: float = 5e-5
    head_lr: float = 1e-3
    layer_decay: float = 1.0  # < 1: lower layers learn slower (layer-wise learning-rate decay)
    weight_decay: float = 0.01
    warmup_fraction: float = 0.1
    max_grad_norm: float = 1.0
    sampling: str = "proportional"
    temperature: float = 2.0
    loss_weighting: str = "sum"
    loss_weights: dict[str, float] | None = None
    loss_weight_lr: float | None = None  # uncertainty weighting: the log-variances' own rate (None: head_lr)
    class_weighting: str = "none"  # 'balanced': each class weighs the same in a task's loss (as the probe)
    punctuation_dropout: float = 0.0  # probability of stripping a sentence-type example's final punctuation
    punctuation_tasks: tuple[str, ...] = ("sentence_type",)
    patience: int = 2  # early stopping: evaluations without a better validation score before stopping
    evaluations_per_epoch: int = 1  # > 1: also evaluate (and keep the best model) within each epoch
    keep_best: bool = True  # False: a fixed budget, evaluated once after the last epoch; final weights
    eval_batch_size: int = 32  # larger batches are no faster on a CPU and their activations cost memory
    gradient_checkpointing: bool = False  # recompute activations in the backward pass: less memory, slower
    seed: int = 0
    progress: bool = True
    amp: bool | None = None  # mixed precision; None = on when training on CUDA

    def __post_init__(self):
        """Check every field once, here: TypeError/ValueError naming the field, the value and the range.

        Task names (`loss_weights`, `punctuation_tasks`) are checked against the model's tasks by
        `train_multitask`; `loss_weights` is refused (ValueError) unless `loss_weighting` is 'fixed'.
        """
        for name, value in vars(self).items():  # numpy scalars become Python numbers (checkpoints hold those)
            if isinstance(value, np.generic):
                setattr(self, name, value.item())
        if isinstance(self.loss_weights, Mapping):
            self.loss_weights = {
                task: weight.item() if isinstance(weight, np.generic) else weight
                for task, weight in self.loss_weights.items()
            }
        for name in ("epochs", "batch_size", "patience", "evaluations_per_epoch", "eval_batch_size"):
            check_int(f"TrainingConfig.{name}", getattr(self, name), 1)
        check_int("TrainingConfig.seed", self.seed, 0, 2**32 - 1)  # what numpy and torch accept
        for name in (
            "encoder_lr",
            "head_lr",
            "weight_decay",
            *(("loss_weight_lr",) if self.loss_weight_lr else ()),
        ):
            check_number(f"TrainingConfig.{name}", getattr(self, name), 0.0)
        check_number("TrainingConfig.layer_decay", self.layer_decay, 0.0, low_open=True)
        check_number("TrainingConfig.warmup_fraction", self.warmup_fraction, 0.0, 1.0)
        check_number("TrainingConfig.max_grad_norm", self.max_grad_norm, 0.0, low_open=True)
        check_number("TrainingConfig.temperature", self.temperature, 0.0, low_open=True)
        check_number("TrainingConfig.punctuation_dropout", self.punctuation_dropout, 0.0, 1.0)
        for name in ("keep_best", "gradient_checkpointing", "progress"):
            check_bool(f"TrainingConfig.{name}", getattr(self, name))
        if not self.keep_best and self.evaluations_per_epoch != 1:
            raise ValueError(
                "TrainingConfig.keep_best=False evaluates once, after the last epoch: "
                f"evaluations_per_epoch must be 1, got {self.evaluations_per_epoch}"
            )
        if self.amp is not None:
            check_bool("TrainingConfig.amp", self.amp)
        choices = {"sampling strategy": (self.sampling, SAMPLING_STRATEGIES)}
        choices |= {"class weighting": (self.class_weighting, CLASS_WEIGHTINGS)}
        choices |= {"loss weighting": (self.loss_weighting, LOSS_WEIGHTINGS)}
        for what, (value, allowed) in choices.items():
            if value not in allowed:
                raise ValueError(f"unknown {what} {value!r}; choose one of {allowed}")
        if self.loss_weights is not None:
            if not isinstance(self.loss_weights, Mapping):
                raise TypeError(
                    f"TrainingConfig.loss_weights must map tasks to weights, got {self.loss_weights!r}"
                )
            for task, weight in self.loss_weights.items():
                check_number(f"TrainingConfig.loss_weights[{task!r}]", weight, 0.0)
        if self.loss_weights is not None and self.loss_weighting != "fixed":
            raise ValueError(
                f"TrainingConfig.loss_weights is used with loss_weighting='fixed' only, "
                f"got loss_weighting={self.loss_weighting!r}; drop loss_weights or set loss_weighting='fixed'"
            )
        if self.loss_weighting == "fixed" and not self.loss_weights:
            raise ValueError("TrainingConfig.loss_weighting='fixed' needs loss_weights, one per task")
        if (
            not isinstance(self.punctuation_tasks, Iterable)
            or isinstance(self.punctuation_tasks, str)
            or not all(isinstance(task, str) for task in self.punctuation_tasks)
        ):
            raise TypeError(
                "TrainingConfig.punctuation_tasks must be a tuple of task names, "
                f"got {self.punctuation_tasks!r}"
            )
        self.punctuation_tasks = tuple(self.punctuation_tasks)

    def check_tasks(self, tasks: Sequence[str]) -> None:
        """ValueError when `loss_weights` or (with punctuation dropout) `punctuation_tasks` name a task
        not in `tasks`, or `loss_weights` lacks one of them."""
        named = {"loss_weights": list(self.loss_weights or {})}
        if self.punctuation_dropout > 0:
            named["punctuation_tasks"] = list(self.punctuation_tasks)
        for field_name, names in named.items():
            unknown = [task for task in names if task not in tasks]
            if unknown:
                raise ValueError(
                    f"TrainingConfig.{field_name} names task(s) {unknown} the model lacks; "
                    f"its tasks: {list(tasks)}"
                )
        missing = [task for task in tasks if self.loss_weights is not None and task not in self.loss_weights]
        if missing:
            raise ValueError(
                f"TrainingConfig.loss_weights lacks a weight for task(s) {missing}; give one per task"
            )


@dataclass
class TrainingResult:
    """What a run leaves behind: the validation history, a per-step log, the best epoch, the loss combiner.

    `history` has one row per evaluation (after every epoch, or more often), `steps` one row per
    optimiser step: the batch's task, that task's loss, the learning rate and the loss weights.
    """

    history: pd.DataFrame
    steps: pd.DataFrame
    best_epoch: float
    best_score: float
    stopped_early: bool
    loss_combiner: LossCombiner
    seconds: float
    examples_seen: int
    config: dict = field(default_factory=dict)

    @property
    def examples_per_second(self) -> float:
        return self.examples_seen / self.seconds if self.seconds else float("nan")

    def best_scores(self) -> dict[str, dict[str, float]]:
        """Validation accuracy and macro-F1 per task at the kept (best) evaluation: what `evaluate`
        on the validation split returns for the model the run ends with, without encoding it again."""
        if self.history.empty:
            raise ValueError("this run was not evaluated (validation=None): score the model with evaluate()")
        best = self.history[self.history["epoch"] == self.best_epoch].iloc[0]
        tasks = [
            column.removesuffix("_macro_f1")
            for column in self.history.columns
            if column.endswith("_macro_f1") and column != "mean_macro_f1"
        ]
        return {
            task: {metric: float(best[f"{task}_{metric}"]) for metric in CLASSIFICATION_METRICS}
            for task in tasks
        }


class EvaluationSchedule:
    """When to evaluate: after the epoch's last step, and `per_epoch - 1` times evenly within it;
    with `only_after_epoch`, only after that epoch's last step (a fixed budget, no selection)."""

    def __init__(self, steps_per_epoch: int, per_epoch: int, only_after_epoch: int | None = None):
        self.per_epoch = per_epoch
        self.only_after_epoch = only_after_epoch
        self.steps = {  # steps within an epoch after which to evaluate; the last is the epoch's end
            round(j * steps_per_epoch / per_epoch): j for j in range(1, per_epoch + 1)
        }

    def when(self, epoch: int, step_in_epoch: int) -> float | None:
        """The evaluation's place in epochs (`epoch` itself, or e.g. 1.5), or None: no evaluation now."""
        evaluation = self.steps.get(step_in_epoch)  # 1, 2, ... within the epoch
        if evaluation is None or self.only_after_epoch not in (None, epoch):
            return None
        return epoch if self.per_epoch == 1 else epoch - 1 + evaluation / self.per_epoch


class EarlyStopping:
    """Stop when the score has not improved for `patience` evaluations; remember the best state."""

    def __init__(self, patience: int):
        self.patience = check_int("patience", patience, 1)
        self.best_score = -math.inf
        self.best_epoch = 0
        self.best_state: dict | None = None
        self.bad_epochs = 0

    def update(self, score: float, epoch: int, model: nn.Module) -> bool:
        """Record one evaluation; True: stop training. Copies the trainable parameters only."""
        if score > self.best_score:
            self.best_score, self.best_epoch, self.bad_epochs = score, epoch, 0
            self.best_state = {
                name: parameter.detach().clone()
                for name, parameter in model.named_parameters()
                if parameter.requires_grad
            }
        else:
            self.bad_epochs += 1
        return self.bad_epochs >= self.patience

    def restore_best(self, model: nn.Module) -> None:
        """Put the parameters of the best evaluation back into `model`."""
        parameters = dict(model.named_parameters())
        with torch.no_grad():
            for name, value in (self.best_state or {}).items():
                parameters[name].copy_(value)

    def state_dict(self) -> dict:
        return dict(vars(self))

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        vars(self).update(state)


@dataclass
class TrainingState:
    """Everything a run needs to go on from where it is: its parts (each with a state dict), the
    random number generators and the progress so far. A checkpoint holds its `state_dict()`."""

    model: nn.Module
    combiner: LossCombiner
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    sampler: TaskBatchSampler
    rng: np.random.Generator  # punctuation dropout's draws
    stopper: EarlyStopping
    epoch: int = 0  # epochs completed
    step: int = 0  # optimiser steps taken
    examples_seen: int = 0  # by this process
    records: list[dict] = field(default_factory=list)  # one per evaluation
    step_records: list[dict] = field(default_factory=list)  # one per optimiser step
    losses: list[float] = field(default_factory=list)  # training losses since the last evaluation
    stopped_early: bool = False  # early stopping ended the run (a resumed run then trains no more)
    seconds: float = 0.0  # training time up to the last checkpoint

    PARTS = ("model", "combiner", "optimizer", "scheduler", "sampler", "stopper")  # each has a state dict
    PROGRESS = (
        "epoch",
        "step",
        "examples_seen",
        "records",
        "step_records",
        "losses",
        "stopped_early",
        "seconds",
    )

    def state_dict(self) -> dict:
        """Tensors and plain values only (what `torch.load(weights_only=True)` reads)."""
        return {
            **{name: getattr(self, name).state_dict() for name in self.PARTS},
            **{name: getattr(self, name) for name in self.PROGRESS},
            "rng": self.rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Put a `state_dict()` back; RuntimeError/ValueError/KeyError when it does not fit the parts."""
        for name in self.PARTS:
            getattr(self, name).load_state_dict(state[name])
        for name in self.PROGRESS:
            setattr(self, name, state[name])
        self.rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"]:  # dropout on a GPU draws from the GPU's own generator
            torch.cuda.set_rng_state_all(state["cuda_rng"])
