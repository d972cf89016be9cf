"""The multi-task training loop, with the extras a real run needs fenced off.

`train_epoch` is the loop notebook 04 prints: per batch, 1. data (`TaskBatchSampler`, the other
tasks' labels `IGNORE_INDEX`), 2. forward (`BatchEncoder.embed`, then every head in
`training_step`), 3. loss (`masked_task_losses`, combined by `LossCombiner`), 4. `backward`, 5.
`optimizer.step()`. Each extra is one named call: schedule, clipping and the divergence stop
(`helpers.optimization`), mixed precision, punctuation dropout. `train_multitask` sets a run up and
calls it once per epoch; evaluation, early stopping, `on_epoch_end` (where `helpers.tool.checkpoint`
saves the `TrainingState`) and heap trimming happen in its `after_step`; several processes in
`if ddp:` blocks (`helpers.distributed`). Frozen-prefix caches (`helpers.tool.prefix_cache`) are
passed in by the caller; the loop only reads them.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from helpers.distributed import (
    check_shardable,
    distributed_step,
    from_rank_zero,
    mean_over_processes,
    rank_and_size,
    shard,
)
from helpers.evaluation import check_caches, evaluate
from helpers.freezing import frozen_prefix_length
from helpers.losses import LossCombiner, batch_labels, class_weights, masked_task_losses
from helpers.memory import release_memory, trim_heap
from helpers.model import FrozenPrefixCache, MultiTaskModel, train_mode_above, training_settings
from helpers.optimization import check_divergence, clip_gradients, make_optimizer, make_scheduler
from helpers.punctuation import punctuation_dropout
from helpers.task_data import TaskBatchSampler, TaskData, check_task_data
from helpers.training_config import (
    EarlyStopping,
    EvaluationSchedule,
    TrainingConfig,
    TrainingResult,
    TrainingState,
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
    train_caches: Mapping[str, FrozenPrefixCache] | None = None,
    validation_caches: Mapping[str, FrozenPrefixCache] | None = None,
    stripped_caches: Mapping[str, FrozenPrefixCache] | None = None,
    resume: Mapping[str, Any] | None = None,
    on_epoch_end: Callable[[TrainingState], None] | None = None,
) -> TrainingResult:
    """Train `model` on several tasks at once (`train_epoch` per epoch); keep the best evaluation's weights.

    Evaluations (after each epoch, or `config.evaluations_per_epoch` times in it) score each task;
    the best model and early stopping follow the mean macro-F1. `keep_best=False`: one evaluation
    after the last epoch (none with `validation=None`), final weights. `on_step(step, model)` runs
    after every optimiser step; `*_caches` are prefix caches built earlier (`stripped_caches`: of
    the punctuation-stripped training sentences). Under `torchrun` each process trains its shard,
    rank 0 evaluates. `on_epoch_end(state)` runs on rank 0 after every epoch (e.g. to save the
    `TrainingState` as a checkpoint: `helpers.tool.checkpoint`); `resume`, such a state's
    `state_dict()`, goes on from it, bit for bit. TypeError/ValueError before any work.
    """
    config = _check_arguments(model, train, validation, config, on_step, resume, on_epoch_end)
    for caches, data in ((train_caches, train), (stripped_caches, train), (validation_caches, validation)):
        check_caches(frozen_prefix_length(model), caches, data or {})
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
    sampler = _sampler(train, config, rank, world_size)
    if ddp:  # each process trains on its shard of the data (and of the caches)
        train, train_caches, stripped_caches = (
            shard(part, rank, world_size) if part else part for part in (train, train_caches, stripped_caches)
        )
    scheduler = make_scheduler(optimizer, len(sampler) * config.epochs, config)
    state = TrainingState(model, combiner, optimizer, scheduler, sampler, rng, EarlyStopping(config.patience))
    start = time.perf_counter()
    with training_settings(model, config.gradient_checkpointing):
        stripped_tasks = config.punctuation_tasks if config.punctuation_dropout > 0 else ()
        batches = BatchEncoder(model, train, prefix, stripped_tasks, train_caches, stripped_caches)
        step = functools.partial(training_step, model, combiner, class_weights=weights)
        step = distributed_step(training_step, model, combiner, weights) if ddp else step
        schedule = EvaluationSchedule(  # keep_best=False: only after the last epoch, no selection
            len(sampler), config.evaluations_per_epoch, None if config.keep_best else config.epochs
        )
        if resume is not None:
            _resume(state, resume)
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
            if on_epoch_end is not None and rank == 0 and at_epoch_end:
                state.seconds = time.perf_counter() - start
                on_epoch_end(state)  # e.g. a checkpoint
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


class BatchEncoder:
    """Step 2's encoder half: a sampled batch `(task, rows)` to sentence embeddings (len(rows), width),
    through the task's prefix cache when one is given, else through the encoder (its frozen layers
    without gradients). `stripped_tasks` may lose their final punctuation (punctuation dropout); a
    cached one needs its stripped sentences cached too (`stripped_caches`)."""

    def __init__(self, model, data, prefix: int, stripped_tasks=(), caches=None, stripped_caches=None):
        self.model, self.data, self.prefix = model, data, prefix
        self.caches, self.stripped = dict(caches or {}), dict(stripped_caches or {})
        self.stripped_texts = {
            task: data[task].without_terminal_punctuation().texts for task in data if task in stripped_tasks
        }
        missing = [task for task in self.caches if task in self.stripped_texts and task not in self.stripped]
        if missing:
            raise ValueError(f"punctuation dropout on cached tasks {missing} needs stripped_caches for them")
        for task, examples in data.items():
            if task not in self.caches:  # (a cache counted its texts when it was built)
                model.warn_if_cut(examples.texts)

    def embed(self, task: str, rows: np.ndarray, stripped: np.ndarray | None = None) -> torch.Tensor:
        """Embeddings (len(rows), width) with gradients through the trainable layers; where the bool
        mask `stripped` (len(rows),) is True, of the sentence without its final punctuation."""
        drop = np.zeros(len(rows), dtype=bool) if stripped is None else stripped
        if task in self.caches:
            kept = self.caches[task].encode(self.model, rows[~drop]) if (~drop).any() else None
            dropped = self.stripped[task].encode(self.model, rows[drop]) if drop.any() else None
            embeddings = torch.cat([part for part in (kept, dropped) if part is not None])
            order = np.concatenate([np.flatnonzero(~drop), np.flatnonzero(drop)])
            return embeddings[torch.as_tensor(np.argsort(order), device=embeddings.device)]
        texts = [
            self.stripped_texts[task][i] if dropped else self.data[task].texts[i]
            for i, dropped in zip(rows, drop, strict=True)
        ]
        batch = self.model.tokenize(texts)
        if self.prefix == 0:
            return self.model.encode(batch)
        with torch.no_grad():
            hidden = self.model.hidden_states_at(batch, self.prefix)
        return self.model.encode_from_layer(hidden, batch["attention_mask"], self.prefix)


# ----- beside the loop: each extra, named --------------------------------------------------------
def _check_arguments(model, train, validation, config, on_step, resume, on_epoch_end):
    """The configuration (the default one for None); TypeError/ValueError before any work."""
    config = TrainingConfig() if config is None else config
    if not isinstance(model, MultiTaskModel):
        raise TypeError(f"model must be a MultiTaskModel, got {type(model).__name__}")
    if not isinstance(config, TrainingConfig):
        raise TypeError(f"config must be a TrainingConfig, got {type(config).__name__}")
    config.__post_init__()  # again: a field may have been changed since the config was made
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
    if on_epoch_end is not None and not callable(on_epoch_end):
        raise TypeError(f"on_epoch_end must be a function (state), got {type(on_epoch_end).__name__}")
    if resume is not None and not isinstance(resume, Mapping):
        raise TypeError(
            "resume must be a TrainingState.state_dict() (or helpers.tool.checkpoint.load_checkpoint(path)), "
            f"got {type(resume).__name__}"
        )
    if resume is not None and rank_and_size()[1] > 1:
        raise ValueError("resuming is supported in a single process only")
    config.check_tasks(list(model.task_labels))
    return config


def _resume(state: TrainingState, saved: Mapping[str, Any]) -> None:
    """Put a `state_dict()` back into `state`; ValueError when it does not fit the model and config,
    with the model's weights as they were (a part that fails may follow parts already loaded)."""
    weights = {name: tensor.clone() for name, tensor in state.model.state_dict().items()}
    try:
        state.load_state_dict(saved)
    except (RuntimeError, ValueError, KeyError) as error:
        state.model.load_state_dict(weights)
        raise ValueError(
            f"the state to resume from does not fit this model and configuration ({error}); resume takes "
            "a TrainingState.state_dict() or helpers.tool.checkpoint.load_checkpoint(path) of this run"
        ) from error


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


def _sampler(train, config: TrainingConfig, rank: int, world_size: int) -> TaskBatchSampler:
    """This process's batch sampler over its shard of `train` (length-grouped batches).

    All processes draw the same task at every step (probabilities from the global sizes, the same
    number of steps); each shuffles its own shard.
    """
    global_sizes = {task: len(examples) for task, examples in train.items()}
    mine = shard(train, rank, world_size)
    return TaskBatchSampler(
        {task: len(examples) for task, examples in mine.items()},
        config.batch_size,
        config.sampling,
        config.temperature,
        config.seed,
        probability_sizes=global_sizes,
        steps_per_epoch=max(1, math.ceil(sum(global_sizes.values()) / (config.batch_size * world_size))),
        index_seed=None if world_size == 1 else config.seed * 1000 + rank + 1,
        lengths={task: [len(text) for text in examples.texts] for task, examples in mine.items()},
        processes=world_size,
    )


def _progress_bar(sampler: TaskBatchSampler, epoch: int, config: TrainingConfig):
    """The epoch's batches, behind a progress bar on rank 0 when `config.progress`."""
    show = config.progress and rank_and_size()[0] == 0
    return tqdm(sampler, desc=f"epoch {epoch}", disable=not show, leave=False)
