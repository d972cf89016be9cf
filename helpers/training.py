"""The multi-task training loop, with the extras a real run needs fenced off.

`train_epoch` is the loop notebook 04 prints: per batch, 1. data (`TaskBatchSampler`, the other
tasks' labels `IGNORE_INDEX`), 2. forward (`BatchEncoder.embed`, then every head in
`training_step`), 3. loss (`masked_task_losses`, combined by `LossCombiner`), 4. `backward`, 5.
`optimizer.step()`. Each extra is one named call: schedule, clipping and the divergence stop
(`helpers.optimization`), mixed precision, punctuation dropout. `train_multitask` sets a run up and
calls it once per epoch; evaluation, early stopping, checkpoints (`TrainingState`) and heap
trimming happen in its `after_step`; several processes in `if ddp:` blocks and the helpers at the end.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from helpers.evaluation import evaluate
from helpers.freezing import freeze_backbone, frozen_prefix_length
from helpers.losses import LossCombiner, batch_labels, class_weights, masked_task_losses
from helpers.memory import release_memory, trim_heap
from helpers.model import MultiTaskModel, train_mode_above, training_settings
from helpers.optimization import check_divergence, clip_gradients, make_optimizer, make_scheduler
from helpers.prefix_cache import BatchEncoder, PrefixCache, build_prefix_caches, check_caches
from helpers.task_data import TaskBatchSampler, TaskData, check_task_data, punctuation_dropout
from helpers.training_config import (
    EarlyStopping,
    EvaluationSchedule,
    TrainingConfig,
    TrainingResult,
    TrainingState,
    checkpoint_to_resume,
    resume_from,
    save_checkpoint,
)

TRIM_EVERY_STEPS = 5  # how often the loop hands freed memory back to the operating system


def training_step(
    model: MultiTaskModel,
    combiner: LossCombiner,
    sentence_embeddings: torch.Tensor,
    labels: Mapping[str, torch.Tensor],
    class_weights: Mapping[str, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Steps 2 and 3 of one training step: every head, the masked task losses, their combination.

    `sentence_embeddings`: (batch, width); `labels[task]`: (batch,) class indices, `IGNORE_INDEX`
    where an example has no label for that task. Returns the combined loss (a scalar tensor, what
    `backward` starts from) and `{task: scalar loss}` for the tasks with a label in the batch.
    """
    logits = model.classify(sentence_embeddings)  # every head: {task: (batch, n_labels)}
    task_losses = masked_task_losses(logits, labels, class_weights)  # over the labelled examples only
    return combiner(task_losses), task_losses


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
    resume: bool | Mapping[str, Any] = False,
    run_options: Mapping[str, Any] | None = None,
) -> TrainingResult:
    """Train `model` on several tasks at once (`train_epoch` per epoch); keep the best evaluation's weights.

    Evaluations (after each epoch, or `config.evaluations_per_epoch` times in it) score each task;
    the best model and early stopping follow the mean macro-F1. `keep_best=False`: one evaluation
    after the last epoch (none with `validation=None`), final weights. `on_step(step, model)` runs
    after every optimiser step; `*_caches` are prefix caches built earlier (`stripped_caches`: of
    the punctuation-stripped training sentences). Under `torchrun` each process trains its shard,
    rank 0 evaluates. `checkpoint`: the `TrainingState` is written there after every epoch;
    `resume=True` (or a checkpoint read with `load_checkpoint`) goes on from it, bit for bit, and
    `run_options` are stored in it. TypeError/ValueError/CheckpointError before any work.
    """
    config, state_read = _check_arguments(model, train, validation, config, on_step, checkpoint, resume)
    check_caches(
        frozen_prefix_length(model), (train_caches, train), (validation_caches, validation or {}),
        (stripped_caches, train),
    )  # fmt: skip
    rank, world_size = rank_and_size()
    if ddp := world_size > 1:
        check_shardable(train, world_size)  # the same error on every process, before any work
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
    state = TrainingState(model, combiner, optimizer, scheduler, sampler, rng, EarlyStopping(config.patience))
    start = time.perf_counter()
    with training_settings(model, config.gradient_checkpointing):
        stripped_tasks = config.punctuation_tasks if config.punctuation_dropout > 0 else ()
        batches = BatchEncoder(
            model, train, prefix, config.use_prefix_cache, stripped_tasks, train_caches, stripped_caches
        )
        if rank == 0 and prefix > 0 and config.use_prefix_cache and validation_caches is None and validation:
            validation_caches = build_prefix_caches(model, validation, prefix)
        step = functools.partial(training_step, model, combiner, class_weights=weights)
        step = distributed_step(model, combiner, weights) if ddp else step
        schedule = EvaluationSchedule(  # keep_best=False: only after the last epoch, no selection
            len(sampler), config.evaluations_per_epoch, None if config.keep_best else config.epochs
        )
        if state_read is not None:
            resume_from(state, state_read, checkpoint)
            start -= state.seconds  # the time of the interrupted session counts too
        last_epoch = state.epoch if state.stopped_early else config.epochs  # a run that stopped is done

        def after_step(epoch: int, step_in_epoch: int) -> bool:  # the machinery; True: stop now
            if state.step % TRIM_EVERY_STEPS == 0:
                trim_heap()  # activations of varying batch shapes fragment the heap as training runs
            if on_step is not None:
                on_step(state.step, model)
            when, at_epoch_end = schedule.when(epoch, step_in_epoch), step_in_epoch == len(sampler)
            stop = False
            if when is not None and validation is not None:
                optimizer.zero_grad(set_to_none=True)  # the next step recomputes the gradients
                stop = _validate(state, when, validation, validation_caches, config, prefix)
            state.epoch = epoch if at_epoch_end else state.epoch
            if stop:  # (before the checkpoint, which must remember it: a resumed run stays stopped)
                state.stopped_early = not (epoch == config.epochs and at_epoch_end)
            if checkpoint is not None and rank == 0 and at_epoch_end:
                state.seconds = time.perf_counter() - start
                save_checkpoint(checkpoint, state, config, run_options)
            return stop

        for epoch in range(state.epoch + 1, last_epoch + 1):
            if train_epoch(state, train, batches, step, config, epoch, after_step):
                break
    return _result(state, config, time.perf_counter() - start, world_size)


def train_epoch(
    state: TrainingState,
    train: Mapping[str, TaskData],
    batches: BatchEncoder,
    step: Callable[..., tuple[torch.Tensor, dict[str, torch.Tensor]]],
    config: TrainingConfig,
    epoch: int,
    after_step: Callable[[int, int], bool] | None = None,
) -> bool:
    """One epoch of the loop: for every batch of `state.sampler`, data, forward, loss, backward, step.

    `step(embeddings, labels)` is `training_step` with the model and combiner bound (or its
    DistributedDataParallel wrapper); `batches` turns sampled rows into sentence embeddings
    (batch, width). `after_step(epoch, step_in_epoch)` runs after every optimiser step (evaluation,
    checkpoints); the epoch ends early, returning True, when it returns True.
    """
    model, optimizer, tasks = state.model, state.optimizer, list(state.model.task_labels)
    train_mode_above(model, batches.prefix)  # dropout on in the trained layers only
    for step_in_epoch, (task, rows) in enumerate(_progress_bar(state.sampler, epoch, config), 1):
        labels = batch_labels(tasks, task, train[task].labels[rows])  # 1. data: others IGNORE_INDEX
        drop = task in batches.stripped_texts  # punctuation dropout: these lose their final mark
        stripped = punctuation_dropout(state.rng, len(rows), config.punctuation_dropout) if drop else None
        with _mixed_precision(model, config):
            embeddings = batches.embed(task, rows, stripped)  # 2. forward: the shared encoder
            loss, task_losses = step(embeddings, labels)  # 2. every head; 3. masked losses, combined
        check_divergence(state, config, loss, task_losses[task], len(model.task_labels[task]))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # 4. backward: only trainable parameters get gradients
        clip_gradients(optimizer, config.max_grad_norm)
        optimizer.step()  # 5. step
        state.scheduler.step()
        _log_step(state, epoch - 1 + step_in_epoch / len(state.sampler), task, len(rows), loss, task_losses)
        if after_step is not None and after_step(epoch, step_in_epoch):
            return True
    return False


def train_heads_first(
    model: MultiTaskModel,
    train: Mapping[str, TaskData],
    config: TrainingConfig,
    caches: Mapping[str, PrefixCache] | None = None,
) -> None:
    """The first stage of LP-FT (notebook 03's recipe): train the heads alone on the frozen encoder
    (`config` a fixed budget, e.g. `keep_best=False`), then give the encoder back its trainable
    layers; fine-tune with `train_multitask` next. `caches`: the training data's prefix caches at
    any layer, moved up to the last one here, so the encoder runs once more over the top layers only.
    """
    trainable = {name: parameter.requires_grad for name, parameter in model.named_parameters()}
    freeze_backbone(model)
    top = len(model.layers)
    top_caches = {task: cache.advanced(model, top) for task, cache in caches.items()} if caches else None
    train_multitask(model, train, None, config, train_caches=top_caches)
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(trainable[name])


# ----- beside the loop: each extra, named --------------------------------------------------------
def _check_arguments(model, train, validation, config, on_step, checkpoint, resume):
    """The configuration (the default one for None) and the checkpoint's state when resuming (else
    None); TypeError/ValueError/CheckpointError before any work."""
    config = TrainingConfig() if config is None else config
    if not isinstance(model, MultiTaskModel):
        raise TypeError(f"model must be a MultiTaskModel, got {type(model).__name__}")
    if not isinstance(config, TrainingConfig):
        raise TypeError(f"config must be a TrainingConfig, got {type(config).__name__}")
    check_task_data(model, train, "train", require_examples=True)
    if not train:
        raise ValueError("train data is empty: give at least one task with examples")
    if validation is None and config.keep_best:
        raise ValueError("validation=None trains without evaluating, which needs TrainingConfig("
                         "keep_best=False); choosing the best epoch needs validation data")  # fmt: skip
    if validation is not None:
        check_task_data(model, validation, "validation", require_examples=True)
        if not validation:
            raise ValueError(
                "validation data is empty: choosing the best epoch and early stopping need a task"
            )
    if on_step is not None and not callable(on_step):
        raise TypeError(f"on_step must be a function (step, model), got {type(on_step).__name__}")
    config.check_tasks(list(model.task_labels))
    return config, checkpoint_to_resume(checkpoint, resume, config, rank_and_size()[1])


def _mixed_precision(model: MultiTaskModel, config: TrainingConfig) -> torch.autocast:
    """bfloat16 autocast when `config.amp` (by default: when training on CUDA), else a no-op."""
    use_amp = config.amp if config.amp is not None else model.device.type == "cuda"
    return torch.autocast(model.device.type, dtype=torch.bfloat16, enabled=use_amp)


def _log_step(state: TrainingState, epoch: float, task: str, examples: int, loss, task_losses) -> None:
    """Count the step and its examples; log its task, that task's loss, the rate and the loss weights."""
    state.losses.append(float(loss.detach()))
    state.examples_seen += examples
    state.step += 1
    state.step_records.append(
        {
            "step": state.step, "epoch": epoch, "task": task, "loss": float(task_losses[task].detach()),
            "lr": state.optimizer.param_groups[0]["lr"],
            **{f"{name}_loss_weight": weight for name, weight in state.combiner.task_weights().items()},
        }
    )  # fmt: skip


def _validate(state: TrainingState, when: float, data, caches, config: TrainingConfig, prefix: int) -> bool:
    """One evaluation: rank 0 scores the validation split, every process takes its mean macro-F1 (so
    all keep the same best model); the record is kept and reported. True: stop now."""
    rank, world_size = rank_and_size()
    model, device = state.model, state.model.device
    train_loss = mean_over_processes(float(np.mean(state.losses)), world_size, device)
    state.losses = []
    record, scores = {"epoch": when, "step": state.step, "train_loss": train_loss}, {}
    if rank == 0:
        per_task = evaluate(model, data, config.eval_batch_size, caches)
        scores["mean_macro_f1"] = float(np.mean([s["macro_f1"] for s in per_task.values()]))
        for name, task_scores in per_task.items():
            scores.update({f"{name}_{metric}": value for metric, value in task_scores.items()})
        train_mode_above(model, prefix)
    scores["mean_macro_f1"] = from_rank_zero(scores.get("mean_macro_f1", 0.0), world_size, device)
    record.update(scores)
    record.update({f"{name}_loss_weight": w for name, w in state.combiner.task_weights().items()})
    state.records.append(record)
    if config.progress and rank == 0:
        tqdm.write(
            f"epoch {record['epoch']:g}: "
            + ", ".join(f"{k}={v:.3f}" for k, v in record.items() if k != "epoch")
        )
    return state.stopper.update(record["mean_macro_f1"], record["epoch"], model)


def _result(state: TrainingState, config: TrainingConfig, seconds: float, world_size: int) -> TrainingResult:
    """The best weights put back, memory freed; the run's `TrainingResult` (examples: all processes)."""
    state.stopper.restore_best(state.model)
    state.optimizer = state.scheduler = None
    release_memory()
    examples = mean_over_processes(state.examples_seen, world_size, state.model.device) * world_size
    return TrainingResult(
        history=pd.DataFrame(state.records),
        steps=pd.DataFrame(state.step_records),
        best_epoch=state.stopper.best_epoch,
        best_score=state.stopper.best_score,
        stopped_early=state.stopped_early,
        loss_combiner=state.combiner,
        seconds=seconds,
        examples_seen=int(examples),
        config=asdict(config),
    )


def _shard_and_sampler(
    train, config: TrainingConfig, rank: int, world_size: int, train_caches, stripped_caches
):
    """This process's shard of the training data and its batch sampler (length-grouped batches).

    All processes draw the same task at every step (probabilities from the global sizes, the same
    number of steps); each shuffles its own shard.
    """
    global_sizes = {task: len(examples) for task, examples in train.items()}
    if world_size > 1:
        if train_caches is not None or stripped_caches is not None:
            raise ValueError("prebuilt training caches cannot be sharded; let each process build its own")
        train = shard(train, rank, world_size)
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
        processes=world_size,
    )
    return train, sampler


def _progress_bar(sampler: TaskBatchSampler, epoch: int, config: TrainingConfig):
    """The epoch's batches, behind a progress bar on rank 0 when `config.progress`."""
    show = config.progress and rank_and_size()[0] == 0
    return tqdm(sampler, desc=f"epoch {epoch}", disable=not show, leave=False)


# ----- several processes (DistributedDataParallel); in one process each is a no-op -----------------
def rank_and_size() -> tuple[int, int]:
    """(rank, number of processes) under `torch.distributed` (e.g. `torchrun`), else (0, 1)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def shard(data: Mapping[str, TaskData], rank: int, world_size: int) -> dict[str, TaskData]:
    """Every `world_size`-th example of each task, starting at `rank`: disjoint shards that cover the data."""
    return {task: examples.subset(range(rank, len(examples), world_size)) for task, examples in data.items()}


def check_shardable(train: Mapping[str, TaskData], world_size: int) -> None:
    """The same ValueError on every process when the processes' data differ or a shard would be empty."""
    sizes = {task: len(examples) for task, examples in train.items()}
    everyone = [None] * world_size
    torch.distributed.all_gather_object(everyone, sizes)
    if any(other != everyone[0] for other in everyone):
        raise ValueError(f"the processes were given different training data (sizes per process: {everyone})")
    short = {task: size for task, size in everyone[0].items() if size < world_size}
    if short:
        raise ValueError(
            f"with {world_size} processes every task needs at least {world_size} training examples (one "
            f"per process), but {short} has fewer; add data, leave the task out or use fewer processes"
        )


class _TrainingStepModule(nn.Module):
    """`training_step` as a module holding the model and the combiner, for DistributedDataParallel."""

    def __init__(self, model: MultiTaskModel, combiner: LossCombiner, weights):
        super().__init__()
        self.model, self.combiner, self.weights = model, combiner, weights

    def forward(self, embeddings: torch.Tensor, labels: Mapping[str, torch.Tensor]):
        return training_step(self.model, self.combiner, embeddings, labels, self.weights)


def distributed_step(model: MultiTaskModel, combiner: LossCombiner, weights) -> nn.Module:
    """`training_step` under DistributedDataParallel: the gradients are averaged over the processes."""
    device_ids = [model.device.index] if model.device.type == "cuda" else None
    step = _TrainingStepModule(model, combiner, weights)
    return nn.parallel.DistributedDataParallel(step, device_ids=device_ids, find_unused_parameters=True)


def mean_over_processes(value: float, world_size: int, device: torch.device | None = None) -> float:
    """The mean of `value` over all processes (every process must call it); `value` itself in one."""
    if world_size == 1:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    torch.distributed.all_reduce(tensor)
    return float(tensor.item()) / world_size


def from_rank_zero(value: float, world_size: int, device: torch.device | None = None) -> float:
    """Rank 0's `value`, on every process (every process must call it); `value` itself in one."""
    if world_size == 1:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    torch.distributed.broadcast(tensor, src=0)
    return float(tensor.item())
