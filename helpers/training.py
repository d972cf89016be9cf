"""The multi-task training loop: notebook 04's sketch, with the extras a real run needs beside it.

Every step is the sketch's five steps:

1. data: sample a task and a batch of its examples; the other tasks' labels are `IGNORE_INDEX`
   (`TaskBatchSampler`, `batch_labels`);
2. forward: the shared encoder and every head (`_TrainingStep`, through `BatchEncoder`);
3. loss: each task's loss over the examples that carry its label, combined into one
   (`masked_task_losses`, `LossCombiner`);
4. backward: `loss.backward()`, only trainable parameters get gradients;
5. step: `optimizer.step()`.

The extras each live in a named function or object beside the loop: the learning-rate schedule and
gradient clipping (`helpers.optimization`), mixed precision (`_mixed_precision`), several processes
(`helpers.distributed`), the evaluation schedule and early stopping (`helpers.evaluation`),
checkpoints and resuming (`helpers.checkpointing`), and heap trimming (`helpers.memory`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from helpers import distributed
from helpers.checkpointing import (
    PROGRESS_KEYS,
    restore_training_state,
    save_checkpoint,
    training_state,
)
from helpers.evaluation import EarlyStopping, EvaluationSchedule, evaluate
from helpers.freezing import frozen_prefix_length
from helpers.losses import LossCombiner, batch_labels, class_weights, masked_task_losses
from helpers.memory import release_memory, trim_heap
from helpers.model import MultiTaskModel
from helpers.modes import train_mode_above, training_settings
from helpers.optimization import clip_gradients, make_optimizer, make_scheduler
from helpers.prefix_cache import BatchEncoder, PrefixCache, build_prefix_caches, check_caches
from helpers.sampling import TaskBatchSampler
from helpers.task_data import TaskData
from helpers.timing import Stopwatch
from helpers.training_checks import check_arguments, check_checkpoint_path, checkpoint_to_resume
from helpers.training_config import TrainingConfig, TrainingResult

TRIM_EVERY_STEPS = 5  # how often the loop hands freed memory back to the operating system


def train_multitask(
    model: MultiTaskModel,
    train: Mapping[str, TaskData],
    validation: Mapping[str, TaskData] | None,
    config: TrainingConfig | None = None,
    *,
    on_step: Callable[[int, MultiTaskModel], None] | None = None,
    train_caches: Mapping[str, PrefixCache] | None = None,
    validation_caches: Mapping[str, PrefixCache] | None = None,
    stripped_caches: Mapping[str, PrefixCache] | None = None,
    checkpoint: str | Path | None = None,
    resume: bool = False,
    run_options: Mapping[str, Any] | None = None,
) -> TrainingResult:
    """Train `model` on several tasks at once; keep the weights of the best validation epoch.

    Per step: draw a task and a batch (the sampler), encode it (through the prefix cache when the
    lower layers are frozen), compute the masked loss of each task present and combine them, step
    AdamW with warm-up/decay and clipping. After each epoch (and `evaluations_per_epoch - 1` times
    within it): accuracy and macro-F1 per task on the validation split; the criterion for the best
    model and early stopping is the mean macro-F1 over the tasks. With `config.keep_best=False` the
    run is a fixed budget instead: one evaluation, after the last epoch, and the final weights are
    kept (no model selection on the validation split); with `validation=None` as well, the run does
    not evaluate at all (an empty history: score the model yourself, e.g. with `evaluate`).
    `on_step(step, model)` is called after every optimiser step (for drift tracking).
    `train_caches` / `validation_caches` reuse prefix caches built earlier (`build_prefix_caches`),
    and `stripped_caches` those of the punctuation-stripped training sentences (for punctuation
    dropout), so that several runs from the same pre-trained weights pay for the frozen layers only
    once.

    Under `torch.distributed` (e.g. `torchrun`), each process trains on a disjoint shard of every
    task through DistributedDataParallel, the training loss is averaged over the processes, and
    rank 0 evaluates and decides when to stop for all of them.

    With `checkpoint`, the complete training state (weights, optimiser, schedule, random number
    generators, history) is written there after every epoch, atomically; `resume=True` continues
    from it and ends exactly where an uninterrupted run would have. `run_options` (plain values,
    e.g. the CLI's options) are stored in the checkpoint too. Raises TypeError/ValueError before any
    work for wrong arguments: task names in `config` the model lacks, a `checkpoint` that is a folder
    or lies in a missing one, a `resume` that is not a bool.
    """
    config = check_arguments(model, train, validation, config, on_step)  # the default config if None
    check_checkpoint_path(checkpoint, resume)
    rank, world_size = distributed.rank_and_size()
    state = checkpoint_to_resume(checkpoint, resume, config, world_size)  # before any expensive work
    distributed.check_shardable(train, world_size)  # the same error on every process, before any work
    torch.manual_seed(config.seed)
    rng = np.random.default_rng([config.seed, rank])
    tasks, prefix = list(model.task_labels), frozen_prefix_length(model)
    combiner = LossCombiner(tasks, config.loss_weighting, config.loss_weights).to(model.device)
    weights = class_weights(  # from all the training labels, before sharding: the same on every process
        {task: examples.labels for task, examples in train.items()},
        {task: len(labels) for task, labels in model.task_labels.items()},
        config.class_weighting,
    )
    optimizer = make_optimizer(model, combiner, config)
    train, sampler = _shard_and_sampler(train, config, rank, world_size, train_caches, stripped_caches)
    scheduler = make_scheduler(optimizer, len(sampler) * config.epochs, config)
    parts = dict(model=model, combiner=combiner, optimizer=optimizer, scheduler=scheduler, sampler=sampler)
    check_caches(
        prefix, (train_caches, train), (validation_caches, validation or {}), (stripped_caches, train)
    )
    with Stopwatch() as clock, training_settings(model, config.gradient_checkpointing):
        batches = BatchEncoder(model, train, prefix, config, rng, train_caches, stripped_caches)
        if rank == 0 and prefix > 0 and config.use_prefix_cache and validation_caches is None and validation:
            validation_caches = build_prefix_caches(model, validation, prefix)
        step_fn = _TrainingStep(model, combiner, batches, weights)
        training_step = distributed.wrap(step_fn, world_size, model.device)
        stopper, stop = EarlyStopping(config.patience), False
        schedule = EvaluationSchedule(  # keep_best=False: only after the last epoch, no selection
            len(sampler), config.evaluations_per_epoch, None if config.keep_best else config.epochs
        )
        validate = _Validation(model, validation, validation_caches, config, prefix, combiner, stopper)
        run = _Progress(**restore_training_state(state, checkpoint, parts, rng, stopper))  # {} if new
        for epoch in range(run.epoch + 1, config.epochs + 1):
            train_mode_above(model, prefix)
            for step_in_epoch, (task, rows) in enumerate(_progress_bar(sampler, epoch, config, rank), 1):
                labels = batch_labels(tasks, task, train[task].labels[rows])  # 1. data: others IGNORE_INDEX
                with _mixed_precision(model, config):
                    loss = training_step(task, rows, labels)  # 2. forward, every head; 3. masked, combined
                optimizer.zero_grad(set_to_none=True)
                loss.backward()  # 4. backward: only trainable parameters get gradients
                clip_gradients(optimizer, config.max_grad_norm)
                optimizer.step()  # 5. step
                scheduler.step()
                run.log_step(epoch - 1 + step_in_epoch / len(sampler), task, rows, loss, step_fn, optimizer)
                if run.step % TRIM_EVERY_STEPS == 0:
                    trim_heap()  # activations of varying batch shapes fragment the heap as training runs
                if on_step is not None:
                    on_step(run.step, model)
                when = schedule.when(epoch, step_in_epoch)
                at_epoch_end = step_in_epoch == len(sampler)
                if when is not None and validation is not None:
                    record = run.start_evaluation(when, world_size, model.device)  # the mean training loss
                    # the next step recomputes the gradients: free them meanwhile
                    optimizer.zero_grad(set_to_none=True)
                    stop = validate(record, run)  # validation scores, the best model so far, stop or not
                if checkpoint is not None and rank == 0 and at_epoch_end:
                    save_checkpoint(
                        checkpoint,
                        training_state(run.progress(epoch), config, parts, rng, stopper, run_options),
                    )
                if stop:
                    run.stopped_early = not (epoch == config.epochs and at_epoch_end)
                    break
            if stop:
                break
    stopper.restore_best(model)
    del optimizer, scheduler, training_step, step_fn, batches, parts
    release_memory()
    return run.result(stopper, combiner, clock.seconds, config, world_size, model.device)


# ----- beside the loop: each extra, named --------------------------------------------------------
class _TrainingStep(nn.Module):
    """Steps 2 and 3 of one training step, as a module so DistributedDataParallel can wrap it:
    the batch's sentence embeddings, every head's logits, the masked task losses, combined."""

    def __init__(self, model: MultiTaskModel, combiner: LossCombiner, batches: BatchEncoder, weights=None):
        super().__init__()
        self.model, self.combiner, self.batches, self.weights = model, combiner, batches, weights

    def forward(self, task: str, rows: np.ndarray, labels: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = self.model.classify(self.batches.embed(task, rows))  # {task: (batch, n_labels)}
        task_losses = masked_task_losses(logits, labels, self.weights)  # class-weighted if configured
        self.last_task_losses = {name: loss.detach() for name, loss in task_losses.items()}
        return self.combiner(task_losses)


def _mixed_precision(model: MultiTaskModel, config: TrainingConfig) -> torch.autocast:
    """bfloat16 autocast when `config.amp` (by default: when training on CUDA), else a no-op."""
    use_amp = config.amp if config.amp is not None else model.device.type == "cuda"
    return torch.autocast(model.device.type, dtype=torch.bfloat16, enabled=use_amp)


@dataclass
class _Progress:
    """The run so far: what a checkpoint saves besides the state dicts, and what the result reports."""

    epoch: int = 0  # the last epoch completed before this call (when resuming)
    step: int = 0  # optimiser steps taken
    examples_seen: int = 0  # by this process
    records: list[dict] = field(default_factory=list)  # one per evaluation
    step_records: list[dict] = field(default_factory=list)  # one per optimiser step
    stopped_early: bool = False
    losses: list[float] = field(default_factory=list)  # the training losses since the last evaluation

    def log_step(
        self,
        epoch: float,
        task: str,
        rows: np.ndarray,
        loss: torch.Tensor,
        step: _TrainingStep,
        optimizer: torch.optim.Optimizer,
    ) -> None:
        """Count the step and its examples; log its task, that task's loss, the rate and the loss weights."""
        self.losses.append(float(loss.detach()))
        self.examples_seen += len(rows)
        self.step += 1
        self.step_records.append(
            {
                "step": self.step, "epoch": epoch, "task": task,
                "loss": float(step.last_task_losses[task]), "lr": optimizer.param_groups[0]["lr"],
                **{f"{name}_loss_weight": weight for name, weight in step.combiner.task_weights().items()},
            }
        )  # fmt: skip

    def start_evaluation(self, when: float, world_size: int, device: torch.device) -> dict:
        """An evaluation's record, begun: where it happens and the mean training loss since the last one."""
        train_loss = distributed.mean_over_processes(float(np.mean(self.losses)), world_size, device)
        self.losses = []
        return {"epoch": when, "step": self.step, "train_loss": train_loss}

    def progress(self, epoch: int) -> dict:
        """What a checkpoint at the end of `epoch` saves of the run so far (`PROGRESS_KEYS`)."""
        return {key: getattr(self, key) for key in PROGRESS_KEYS} | {"epoch": epoch}

    def result(self, stopper, combiner, seconds, config, world_size, device) -> TrainingResult:
        """The run's `TrainingResult` (examples counted over all processes)."""
        return TrainingResult(
            history=pd.DataFrame(self.records),
            steps=pd.DataFrame(self.step_records),
            best_epoch=stopper.best_epoch,
            best_score=stopper.best_score,
            stopped_early=self.stopped_early,
            loss_combiner=combiner,
            seconds=seconds,
            examples_seen=int(
                distributed.mean_over_processes(self.examples_seen, world_size, device) * world_size
            ),
            config=asdict(config),
        )


class _Validation:
    """Evaluation during training, and the choice of the best model.

    Rank 0 scores the validation split (the criterion is the mean macro-F1 over the tasks); every
    process takes rank 0's mean macro-F1, so all keep the same best model and stop together.
    """

    def __init__(self, model, data, caches, config: TrainingConfig, prefix: int, combiner, stopper):
        self.model, self.data, self.caches, self.config, self.prefix = model, data, caches, config, prefix
        self.combiner, self.stopper = combiner, stopper
        self.rank, self.world_size = distributed.rank_and_size()

    def __call__(self, record: dict, run: _Progress) -> bool:
        """Complete an evaluation's record (scores, loss weights), keep it, report it; True: stop now."""
        scores = {}
        if self.rank == 0:
            per_task = evaluate(self.model, self.data, self.config.eval_batch_size, self.caches)
            scores["mean_macro_f1"] = float(np.mean([s["macro_f1"] for s in per_task.values()]))
            for name, task_scores in per_task.items():
                scores.update({f"{name}_{metric}": value for metric, value in task_scores.items()})
            train_mode_above(self.model, self.prefix)
        mean_macro_f1 = scores.get("mean_macro_f1", 0.0)
        scores["mean_macro_f1"] = distributed.from_rank_zero(
            mean_macro_f1, self.world_size, self.model.device
        )
        record.update(scores)
        weights = self.combiner.task_weights()
        record.update({f"{name}_loss_weight": weight for name, weight in weights.items()})
        run.records.append(record)
        if self.config.progress and self.rank == 0:
            tqdm.write(
                f"epoch {record['epoch']:g}: "
                + ", ".join(f"{k}={v:.3f}" for k, v in record.items() if k != "epoch")
            )
        return self.stopper.update(record["mean_macro_f1"], record["epoch"], self.model)


def _shard_and_sampler(
    train: Mapping[str, TaskData],
    config: TrainingConfig,
    rank: int,
    world_size: int,
    train_caches: Mapping[str, PrefixCache] | None,
    stripped_caches: Mapping[str, PrefixCache] | None,
) -> tuple[Mapping[str, TaskData], TaskBatchSampler]:
    """This process's shard of the training data and its batch sampler (length-grouped batches).

    All processes draw the same task at every step (probabilities from the global sizes, the same
    number of steps); each shuffles its own shard.
    """
    global_sizes = {task: len(examples) for task, examples in train.items()}
    if world_size > 1:
        if train_caches is not None or stripped_caches is not None:
            raise ValueError("prebuilt training caches cannot be sharded; let each process build its own")
        train = distributed.shard(train, rank, world_size)
    sampler = TaskBatchSampler(
        {task: len(examples) for task, examples in train.items()},
        config.batch_size,
        config.sampling,
        config.temperature,
        config.seed,
        probability_sizes=global_sizes,
        steps_per_epoch=max(1, math.ceil(sum(global_sizes.values()) / (config.batch_size * world_size))),
        index_seed=None if world_size == 1 else config.seed * 1000 + rank + 1,
        lengths={task: [len(text) for text in examples.texts] for task, examples in train.items()},
    )
    return train, sampler


def _progress_bar(sampler: TaskBatchSampler, epoch: int, config: TrainingConfig, rank: int):
    """The epoch's batches, behind a progress bar on rank 0 when `config.progress`."""
    return tqdm(sampler, desc=f"epoch {epoch}", disable=not (config.progress and rank == 0), leave=False)
