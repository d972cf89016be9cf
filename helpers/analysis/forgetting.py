"""Scenario 3 with a task's data removed: train one task on, and protect the frozen one, or not.

A model already fine-tuned on every task keeps training on a `new` task alone; the `old` task's head
is frozen. Without protection the encoder drifts under the old head (forgetting). The two standard
protections, compared here on one hand-written loop so that only the protection differs:

- **rehearsal**: a small share of the old task's labelled sentences stays in the training mix;
- **Learning without Forgetting** (LwF; Li & Hoiem, 2017): no old data at all; on the new task's
  sentences the old head's outputs are distilled from the model as it was before this stage,
  `KL(softmax(old / T) || softmax(new / T))` added to the loss with weight `lwf_weight` (their
  softened cross-entropy up to a constant, T = 2 and weight 1 as in the paper; no T² factor). Unlike
  the paper, the old head stays frozen (the scenario) and there is no warm-up stage (the new head
  is trained already).

The loop is `helpers.training.train_epoch`'s five steps (data, forward, loss, backward, step) with
the same sampler, optimiser, schedule and clipping, and nothing else (no evaluation, checkpoints,
mixed precision or punctuation dropout).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F

from helpers.evaluation import sentence_embeddings
from helpers.freezing import frozen_prefix_length
from helpers.losses import LossCombiner, batch_labels, class_weights
from helpers.model import MultiTaskModel, eval_mode, train_mode_above
from helpers.optimization import clip_gradients, make_optimizer, make_scheduler
from helpers.task_data import TaskBatchSampler, TaskData
from helpers.tool.prefix_cache import PrefixCache
from helpers.training import BatchEncoder, training_step
from helpers.training_config import TrainingConfig

PROTECTIONS = ("none", "rehearsal", "lwf")
LWF_TEMPERATURE = 2.0  # Li & Hoiem's T and loss weight (lambda_o)
LWF_WEIGHT = 1.0


def old_head_logits(
    model: MultiTaskModel,
    old: str,
    new: str,
    data: TaskData,
    cache: PrefixCache | None = None,
    batch_size: int = 64,
) -> torch.Tensor:
    """The `old` head's logits (n, old task's labels) for the `new` task's sentences `data`, in eval
    mode: the targets LwF distils, recorded before the model trains on. `cache`: `data`'s prefix cache."""
    caches = {new: cache} if cache is not None else None
    values = torch.as_tensor(
        sentence_embeddings(model, {new: data}, batch_size, caches)[new], device=model.device
    )
    with eval_mode(model), torch.inference_mode():
        return model.classify(values, [old])[old].float()


def distillation_loss(new_logits: torch.Tensor, old_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """LwF's term: KL(softmax(old/T) || softmax(new/T)), mean over the batch (a scalar); logits
    (batch, labels). The same gradients as Li & Hoiem's softened cross-entropy."""
    log_new = F.log_softmax(new_logits.float() / temperature, dim=-1)
    old = F.softmax(old_logits.float() / temperature, dim=-1)
    return F.kl_div(log_new, old, reduction="batchmean")


def continue_training(
    model: MultiTaskModel,
    train: Mapping[str, TaskData],
    new: str,
    config: TrainingConfig,
    *,
    teacher: torch.Tensor | None = None,
    old: str | None = None,
    caches: Mapping[str, PrefixCache] | None = None,
    lwf_weight: float = LWF_WEIGHT,
    temperature: float = LWF_TEMPERATURE,
) -> int:
    """Train `model` on `train` (the `new` task's data, plus any rehearsed old data) for
    `config.epochs`; with `teacher` ((len(train[new]), old labels) logits of `old_head_logits`),
    add LwF's distillation of the `old` head on every `new` batch. Returns the optimiser steps taken.

    The frozen parts stay as the caller froze them (freeze the old head first). `caches`: prefix
    caches of `train` at the model's frozen depth.
    """
    if teacher is not None and (old is None or len(teacher) != len(train[new])):
        raise ValueError("LwF needs the old task's name and one row of teacher logits per new sentence")
    tasks = list(model.task_labels)
    torch.manual_seed(config.seed)
    combiner = LossCombiner(tasks, config.loss_weighting, config.loss_weights).to(model.device)
    weights = class_weights(
        {task: examples.labels for task, examples in train.items()},
        {task: len(labels) for task, labels in model.task_labels.items()},
        config.class_weighting,
    )
    optimizer = make_optimizer(model, combiner, config)
    sampler = TaskBatchSampler(
        {task: len(examples) for task, examples in train.items()},
        config.batch_size,
        config.sampling,
        config.temperature,
        config.seed,
        lengths={task: [len(text) for text in examples.texts] for task, examples in train.items()},
    )
    scheduler = make_scheduler(optimizer, len(sampler) * config.epochs, config)
    prefix = frozen_prefix_length(model)  # the lowest layers, frozen: their outputs are cached
    batches = BatchEncoder(model, train, prefix, caches=caches)
    step = functools.partial(training_step, model, combiner, class_weights=weights)
    steps = 0
    for _ in range(config.epochs):
        train_mode_above(model, prefix)
        for task, rows in sampler:
            labels = batch_labels(tasks, task, train[task].labels[rows])  # 1. data
            embeddings = batches.embed(task, rows)  # 2. forward: the shared encoder
            loss, _ = step(embeddings, labels)  # 2. every head; 3. masked losses, combined
            if teacher is not None and task == new:  # 3b. LwF: keep the old head's outputs
                new_logits = model.classify(embeddings, [old])[old]
                old_logits = teacher[torch.as_tensor(np.asarray(rows), device=teacher.device)]
                loss = loss + lwf_weight * distillation_loss(new_logits, old_logits, temperature)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # 4. backward
            clip_gradients(optimizer, config.max_grad_norm)
            optimizer.step()  # 5. step
            scheduler.step()
            steps += 1
    return steps
