"""Scoring a model: the metrics (accuracy, macro-F1) and predictions on task data.

Each task is scored on its own examples, in length-sorted batches, through the prefix cache when
one is given. Macro-F1 has two definitions in use, each with its own name: the mean F1 over a
fixed list of classes (`macro_f1_over_all_classes`, what `classification_scores` reports when given
the labels), and over the classes that occur in the truth or the prediction
(`macro_f1_over_present_classes`, scikit-learn's default).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from helpers.checks import check_int
from helpers.encoder import batch_order
from helpers.freezing import frozen_prefix_length
from helpers.memory import trim_heap
from helpers.model import FrozenPrefixCache, MultiTaskModel, eval_mode
from helpers.task_data import TaskData, check_task_data

CLASSIFICATION_METRICS = ("accuracy", "macro_f1")  # the keys of `classification_scores`


def confusion_counts(truth: np.ndarray, predicted: np.ndarray, k: int) -> np.ndarray:
    """Counts [..., true class, predicted class], shape (..., k, k), of class codes 0..k-1;
    `predicted` (..., n) may hold several rows of predictions for one `truth` (n,)."""
    predicted = np.asarray(predicted, dtype=np.int64)
    rows = predicted.reshape(-1, predicted.shape[-1])
    cells = (
        np.arange(len(rows))[:, None] * k * k + np.asarray(truth, dtype=np.int64)[None] * k + rows
    ).ravel()
    counts = np.bincount(cells, minlength=len(rows) * k * k)
    return counts.reshape(*predicted.shape[:-1], k, k)


def _f1_per_class(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """F1 per class = 2 TP / (true + predicted), 0 where both are 0; and where either is not 0."""
    true_positive = np.diagonal(confusion, axis1=-2, axis2=-1)
    denominator = confusion.sum(axis=-1) + confusion.sum(axis=-2)
    present = denominator > 0
    f1 = np.divide(2.0 * true_positive, denominator, out=np.zeros(denominator.shape), where=present)
    return f1, present


def macro_f1_over_all_classes(confusion: np.ndarray) -> np.ndarray:
    """Macro-F1 from counts (..., k, k): the mean F1 over all k classes, an absent class scoring 0."""
    return _f1_per_class(confusion)[0].mean(axis=-1)


def macro_f1_over_present_classes(confusion: np.ndarray) -> np.ndarray:
    """Macro-F1 from counts (..., k, k): the mean F1 over the classes that occur in the truth or the
    prediction (scikit-learn's `f1_score(average="macro")` without `labels`)."""
    f1, present = _f1_per_class(confusion)
    return f1.sum(axis=-1) / present.sum(axis=-1)


def classification_scores(y_true: Sequence, y_pred: Sequence, labels: Sequence | None = None) -> dict:
    """Accuracy and macro-F1 (every class counts the same, so minority classes are not drowned out).

    With `labels`, macro-F1 averages over exactly those classes (`macro_f1_over_all_classes`);
    without, over the classes that occur in `y_true` or `y_pred` (`macro_f1_over_present_classes`).
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(
            f"y_true and y_pred must be 1-D of one length, got {y_true.shape} and {y_pred.shape}"
        )
    classes = np.unique(np.concatenate([y_true, y_pred])) if labels is None else list(labels)
    index = {value: code for code, value in enumerate(np.asarray(classes).tolist())}
    k = len(index)  # a class not in `labels` gets code k: it counts against the listed ones only
    truth = np.array([index.get(value, k) for value in y_true.tolist()], dtype=np.int64)
    predicted = np.array([index.get(value, k) for value in y_pred.tolist()], dtype=np.int64)
    f1, present = _f1_per_class(confusion_counts(truth, predicted, k + 1))
    macro_f1 = f1[:k].sum() / present[:k].sum() if labels is None else f1[:k].mean()
    return {"accuracy": float(np.mean(y_true == y_pred)), "macro_f1": float(macro_f1)}


Caches = Mapping[str, FrozenPrefixCache] | None  # one per task (`helpers.tool.prefix_cache`), or none


def check_caches(prefix: int, caches: Caches, data: Mapping[str, TaskData]) -> None:
    """TypeError for a cache without `encode`, ValueError for the cache of a task without data, or of
    another frozen prefix than `prefix` (the model's) or another number of sentences than its data."""
    for task, cache in (caches or {}).items():
        if not hasattr(cache, "encode"):
            raise TypeError(f"the cache for {task!r} must be a PrefixCache, got {type(cache).__name__}")
        if task not in data:
            raise ValueError(f"there is a cache for {task!r}, but no data for that task")
        if cache.prefix != prefix or len(cache) != len(data[task]):
            raise ValueError(
                f"the cache for {task!r} holds {len(cache)} sentences after layer {cache.prefix}, but the "
                f"model's frozen prefix is {prefix} and the data has {len(data[task])} sentences; "
                "build the caches again for this model and data (helpers.tool.prefix_cache)"
            )


def _batched_outputs(model, data, batch_size, caches, output) -> dict[str, np.ndarray]:
    """`output(task, sentence embeddings)` for each task's examples, in length-sorted batches."""
    check_int("batch_size", batch_size, 1)
    check_task_data(model, data, "data", check_labels=False)  # predicting needs no labels
    check_caches(frozen_prefix_length(model), caches, data)
    results = {}
    with eval_mode(model), torch.inference_mode():
        for task, examples in data.items():
            parts, order = [], batch_order(examples.texts)
            if caches is None or task not in caches:
                model.warn_if_cut(examples.texts)
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
