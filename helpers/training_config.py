"""A training run's configuration (`TrainingConfig`) and what the run leaves behind (`TrainingResult`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from helpers.encoder import check_bool, check_int, check_number
from helpers.losses import CLASS_WEIGHTINGS, LOSS_WEIGHTINGS, LossCombiner
from helpers.metrics import CLASSIFICATION_METRICS
from helpers.sampling import SAMPLING_STRATEGIES


@dataclass
class TrainingConfig:
    """Everything that defines a training run (saved next to the model by the CLI)."""

    epochs: int = 3
    batch_size: int = 32
    encoder_lr: float = 5e-5
    head_lr: float = 1e-3
    layer_decay: float = 1.0  # < 1: lower layers learn slower (layer-wise learning-rate decay)
    gradual_unfreezing: bool = False  # trainable layers join one by one, top first (ULMFiT)
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
    keep_best: bool = (
        True  # False: a fixed budget; evaluate once, after the last epoch, keep the final weights
    )
    use_prefix_cache: bool = True
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
        check_number("TrainingConfig.encoder_lr", self.encoder_lr, 0.0)
        check_number("TrainingConfig.head_lr", self.head_lr, 0.0)
        if self.loss_weight_lr is not None:
            check_number("TrainingConfig.loss_weight_lr", self.loss_weight_lr, 0.0)
        check_number("TrainingConfig.layer_decay", self.layer_decay, 0.0, low_open=True)
        check_number("TrainingConfig.weight_decay", self.weight_decay, 0.0)
        check_number("TrainingConfig.warmup_fraction", self.warmup_fraction, 0.0, 1.0)
        check_number("TrainingConfig.max_grad_norm", self.max_grad_norm, 0.0, low_open=True)
        check_number("TrainingConfig.temperature", self.temperature, 0.0, low_open=True)
        check_number("TrainingConfig.punctuation_dropout", self.punctuation_dropout, 0.0, 1.0)
        for name in (
            "gradual_unfreezing",
            "keep_best",
            "use_prefix_cache",
            "gradient_checkpointing",
            "progress",
        ):
            check_bool(f"TrainingConfig.{name}", getattr(self, name))
        if not self.keep_best and self.evaluations_per_epoch != 1:
            raise ValueError(
                "TrainingConfig.keep_best=False evaluates once, after the last epoch: "
                f"evaluations_per_epoch must be 1, got {self.evaluations_per_epoch}"
            )
        if self.amp is not None:
            check_bool("TrainingConfig.amp", self.amp)
        if self.sampling not in SAMPLING_STRATEGIES:
            raise ValueError(
                f"unknown sampling strategy {self.sampling!r}; choose one of {SAMPLING_STRATEGIES}"
            )
        if self.class_weighting not in CLASS_WEIGHTINGS:
            raise ValueError(
                f"unknown class weighting {self.class_weighting!r}; choose one of {CLASS_WEIGHTINGS}"
            )
        if self.loss_weighting not in LOSS_WEIGHTINGS:
            raise ValueError(
                f"unknown loss weighting {self.loss_weighting!r}; choose one of {LOSS_WEIGHTINGS}"
            )
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
        """Validation accuracy and macro-F1 per task at the kept (best) evaluation.

        The model ends the run with exactly these weights, so this is what `evaluate` on the
        validation split would return, without encoding it once more.
        """
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
