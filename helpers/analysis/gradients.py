"""Where each task's loss sends gradients in a multi-task model: one norm per component.

The picture of "shared encoder": a task's loss reaches every layer of the encoder and its own head,
and never the other tasks' heads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import torch
from torch import nn

from helpers.model import MultiTaskModel


def component_gradient_norms(model: MultiTaskModel) -> dict[str, float]:
    """L2 norm of the gradients now stored in each component (embeddings, each layer, each head);
    0.0 for a component whose parameters hold no gradient."""
    components = [("embeddings", model.backbone.embeddings)]
    components += [(f"layer {i}", layer) for i, layer in enumerate(model.layers)]
    components += [(f"head: {task}", head) for task, head in model.heads.items()]
    norms = {}
    for name, module in components:
        squares = [p.grad.detach().float().pow(2).sum() for p in module.parameters() if p.grad is not None]
        norms[name] = float(torch.stack(squares).sum().sqrt()) if squares else 0.0
    return norms


def per_task_gradient_norms(
    model: MultiTaskModel, texts: Sequence[str], labels: Mapping[str, Sequence[int]]
) -> pd.DataFrame:
    """Backpropagate each task's cross-entropy on `texts` alone and record `component_gradient_norms`.

    `labels`: {task: one label index per text}. Returns a frame with one row per component and one
    column per task. Gradients are cleared before and after; the weights do not change. ValueError
    for an unknown task or a label list of the wrong length.
    """
    unknown = set(labels) - set(model.task_labels)
    if unknown:
        raise ValueError(f"unknown task(s) {sorted(unknown)}; the model has {list(model.task_labels)}")
    for task, values in labels.items():
        if len(values) != len(texts):
            raise ValueError(f"task {task!r}: {len(values)} labels for {len(texts)} texts")
    batch = model.tokenize(list(texts))
    columns = {}
    for task, values in labels.items():
        model.zero_grad(set_to_none=True)
        logits = model(batch, tasks=[task])[task]
        nn.functional.cross_entropy(logits, torch.as_tensor(list(values), device=logits.device)).backward()
        columns[task] = component_gradient_norms(model)
    model.zero_grad(set_to_none=True)
    return pd.DataFrame(columns).rename_axis("component")
