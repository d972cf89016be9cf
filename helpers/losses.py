"""Losses for examples that carry one task's label: masking the missing labels, combining the tasks.

Every batch holds a label tensor per task with `IGNORE_INDEX` where the label is missing
(`batch_labels`), and the loss of each task is computed over the examples that have its label
(`masked_task_losses`); a task with no labels in a batch adds nothing and its head gets no
gradient. `LossCombiner` turns the task losses into the one number to minimise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

IGNORE_INDEX = -100  # PyTorch's cross-entropy default: a label the loss skips
LOSS_WEIGHTINGS = ("sum", "fixed", "uncertainty")
CLASS_WEIGHTINGS = ("none", "balanced")


def batch_labels(tasks: Sequence[str], task: str, labels: np.ndarray) -> dict[str, torch.Tensor]:
    """Label tensors for every task; only `task`'s are known, the others are IGNORE_INDEX."""
    known = torch.as_tensor(labels, dtype=torch.long)
    return {other: known if other == task else torch.full_like(known, IGNORE_INDEX) for other in tasks}


def class_weights(
    labels: Mapping[str, Sequence[int]], n_classes: Mapping[str, int], strategy: str = "balanced"
) -> dict[str, torch.Tensor] | None:
    """Per-task class weights for the cross-entropy, from the training labels; None for 'none'.

    `labels[task]`: the task's integer class indices, shape (n,), in 0..n_classes[task]-1 (a list,
    array, Series or tensor). 'balanced' is scikit-learn's rule (`compute_class_weight`, the same as
    the linear probe's `class_weight="balanced"`): weight_c = n / (n_present_classes * n_c), a
    dimensionless multiplier, so every class present contributes the same total weight and the
    weights average 1 over the examples. A class absent from the labels gets weight 1 (it has no
    examples to weigh). Returns {task: float32 tensor of shape (n_classes[task],)}.
    Raises ValueError for an unknown strategy or non-integer or out-of-range labels; TypeError for
    a task whose `n_classes` entry is missing or not a positive int.
    """
    from sklearn.utils.class_weight import compute_class_weight

    if strategy not in CLASS_WEIGHTINGS:
        raise ValueError(f"unknown class weighting {strategy!r}; choose one of {CLASS_WEIGHTINGS}")
    if strategy == "none":
        return None
    weights = {}
    for task, task_labels in labels.items():
        count = n_classes.get(task) if isinstance(n_classes, Mapping) else None
        if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 1:
            raise TypeError(f"n_classes[{task!r}] must be a positive int, got {count!r}")
        values = np.asarray(task_labels.cpu() if isinstance(task_labels, torch.Tensor) else task_labels)
        if values.ndim != 1 or values.dtype == bool or not np.issubdtype(values.dtype, np.number):
            raise ValueError(f"task {task!r}: labels must be a 1-D sequence of class indices")
        if values.size and (not np.all(np.isfinite(values)) or np.any(values != np.round(values))):
            raise ValueError(f"task {task!r}: labels must be whole numbers (class indices)")
        values = values.astype(np.int64)
        if values.size and (values.min() < 0 or values.max() >= count):
            bad = values[(values < 0) | (values >= count)][0]
            raise ValueError(f"task {task!r}: labels must lie in 0..{count - 1}, got {bad}")
        present = np.unique(values)
        weight = np.ones(int(count))
        if present.size:
            weight[present] = compute_class_weight("balanced", classes=present, y=values)
        weights[task] = torch.as_tensor(weight, dtype=torch.float32)
    return weights


def masked_task_losses(
    logits: Mapping[str, torch.Tensor],
    labels: Mapping[str, torch.Tensor],
    weights: Mapping[str, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """Cross-entropy per task over the examples that carry its label; tasks with none are left out.

    `logits[task]`: shape (n, n_classes); `labels[task]`: long, shape (n,), `IGNORE_INDEX` where
    the example has no label for that task. `weights` (from `class_weights`): {task: float tensor
    of shape (n_classes,)}; the loss is then the weighted mean, as PyTorch's
    `cross_entropy(weight=...)` defines it. A task missing from `weights` is unweighted; a key that
    is not a task of `logits` raises KeyError. Returns {task: scalar tensor}.
    """
    if weights is not None and set(weights) - set(logits):
        raise KeyError(f"class weights for unknown tasks: {sorted(set(weights) - set(logits))}")
    losses = {}
    for task, task_logits in logits.items():
        task_labels = labels[task].to(task_logits.device)
        if (task_labels != IGNORE_INDEX).any():
            weight = None if weights is None or task not in weights else weights[task].to(task_logits.device)
            losses[task] = nn.functional.cross_entropy(
                task_logits.float(), task_labels, weight=weight, ignore_index=IGNORE_INDEX
            )
    return losses


class LossCombiner(nn.Module):
    """Combine per-task losses into one number to minimise.

    - `sum`: L = sum_t L_t;
    - `fixed`: L = sum_t w_t L_t with given weights;
    - `uncertainty`: L = sum_t exp(-s_t) L_t + s_t / 2, with s_t = log sigma_t^2 learned
      (Kendall, Gal & Cipolla, 2018): a task whose loss stays noisy is down-weighted automatically,
      and the s_t / 2 term stops the weights from collapsing to zero.
    """

    def __init__(
        self, tasks: Sequence[str], strategy: str = "sum", weights: Mapping[str, float] | None = None
    ):
        super().__init__()
        if strategy not in LOSS_WEIGHTINGS:
            raise ValueError(f"unknown loss weighting {strategy!r}; choose one of {LOSS_WEIGHTINGS}")
        if strategy == "fixed" and (weights is None or set(weights) != set(tasks)):
            raise ValueError("fixed loss weighting needs one weight per task")
        self.strategy = strategy
        self.tasks = list(tasks)
        self.weights = dict(weights) if weights else {task: 1.0 for task in tasks}
        self.log_variances = nn.ParameterDict(
            {task: nn.Parameter(torch.zeros(())) for task in tasks} if strategy == "uncertainty" else {}
        )

    def forward(self, task_losses: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The combined loss (a scalar tensor); ValueError when no task has a loss (no labels at all)."""
        if not task_losses:
            raise ValueError("no task has a labelled example in this batch, so there is no loss to combine")
        total = 0.0
        for task, loss in task_losses.items():
            if self.strategy == "uncertainty":
                log_variance = self.log_variances[task]
                total = total + torch.exp(-log_variance) * loss + 0.5 * log_variance
            else:
                total = total + self.weights[task] * loss
        return total

    def task_weights(self) -> dict[str, float]:
        """The current effective weight of each task's loss."""
        if self.strategy == "uncertainty":
            return {task: float(torch.exp(-value.detach())) for task, value in self.log_variances.items()}
        return dict(self.weights)
