"""Evaluation and prediction on task data, the evaluation schedule, and early stopping.

Each task is scored on its own examples (accuracy and macro-F1), in length-sorted batches, through
the prefix cache when one is given. During training, `EvaluationSchedule` says after which steps
to evaluate and `EarlyStopping` keeps the best weights and says when to stop.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from helpers.encoder import batch_order, check_int
from helpers.memory import trim_heap
from helpers.metrics import classification_scores
from helpers.model import MultiTaskModel
from helpers.modes import eval_mode
from helpers.prefix_cache import PrefixCache
from helpers.task_data import TaskData, check_task_data

Caches = Mapping[str, PrefixCache] | None  # one prefix cache per task (see `build_prefix_caches`), or none


def _batched_outputs(model, data, batch_size, caches, output) -> dict[str, np.ndarray]:
    """`output(task, sentence embeddings)` for each task's examples, in length-sorted batches."""
    check_int("batch_size", batch_size, 1)
    check_task_data(model, data, "data", check_labels=False)  # predicting needs no labels
    for task, cache in (caches or {}).items():
        if task in data and len(cache) != len(data[task]):
            raise ValueError(
                f"the cache for {task!r} holds {len(cache)} sentences, the data {len(data[task])}"
            )
    results = {}
    with eval_mode(model), torch.inference_mode():
        for task, examples in data.items():
            parts, order = [], batch_order(examples.texts)
            for start in range(0, len(examples), batch_size):
                rows = order[start : start + batch_size]
                if caches is not None and task in caches:
                    embeddings = caches[task].encode(model, rows)
                else:
                    embeddings = model.encode(model.tokenize([examples.texts[i] for i in rows]))
                parts.append(output(task, embeddings).float().cpu().numpy())
                trim_heap()  # batch shapes vary, and glibc would keep each batch's activations
            stacked = np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)
            results[task] = stacked[np.argsort(order, kind="stable")]  # back to the data's order
    return results


def sentence_embeddings(
    model: MultiTaskModel, data: Mapping[str, TaskData], batch_size: int = 32, caches: Caches = None
) -> dict[str, np.ndarray]:
    """The model's (pooled, and normalised if the model normalises) sentence embeddings per task."""
    return _batched_outputs(model, data, batch_size, caches, lambda task, embeddings: embeddings)


def predict_probabilities(
    model: MultiTaskModel, data: Mapping[str, TaskData], batch_size: int = 32, caches: Caches = None
) -> dict[str, np.ndarray]:
    """Class probabilities per task for each task's own examples, shape (examples, classes)."""

    def probabilities(task, embeddings):
        return model.classify(embeddings, [task])[task].float().softmax(dim=-1)

    return _batched_outputs(model, data, batch_size, caches, probabilities)


def predict_labels(
    model: MultiTaskModel, data: Mapping[str, TaskData], batch_size: int = 32, caches: Caches = None
) -> dict[str, np.ndarray]:
    """Predicted label indices per task for each task's own examples (length-sorted batches).

    Raises ValueError, before any work, for a task without examples (leave it out instead).
    """
    empty = [task for task, examples in data.items() if hasattr(examples, "__len__") and len(examples) == 0]
    if empty:
        raise ValueError(
            f"data for task(s) {empty} has no examples: there is nothing to predict; leave them out"
        )
    probabilities = predict_probabilities(model, data, batch_size, caches)
    return {task: values.argmax(axis=1).astype(np.int64) for task, values in probabilities.items()}


def evaluate(
    model: MultiTaskModel, data: Mapping[str, TaskData], batch_size: int = 32, caches: Caches = None
) -> dict[str, dict[str, float]]:
    """Accuracy and macro-F1 per task, each task scored on its own examples.

    Runs in eval mode and leaves the model's modes as they were. Raises ValueError for a task the
    model has no head for, a task without examples, or a label outside the task's labels.
    """
    check_task_data(model, data, "data", require_examples=True)
    predictions = predict_labels(model, data, batch_size, caches)
    return {
        task: classification_scores(
            data[task].labels, predictions[task], labels=list(range(len(model.task_labels[task])))
        )
        for task in data
    }


class EvaluationSchedule:
    """When to evaluate: after the epoch's last step, and `per_epoch - 1` times evenly within it.

    With `only_after_epoch`, only once: after that epoch's last step (a fixed budget, no selection).
    """

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
        """Record one evaluation; return True when training should stop.

        Only trainable parameters are copied: frozen ones cannot have changed since.
        """
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
