"""The linear-probe stage of LP-FT (linear probing, then fine-tuning), exact.

Kumar et al. (2022) train the heads on the frozen features before the encoder moves. A trained
head only approximates the best linear read-out; here the read-out *is* the best one found: a
logistic-regression probe with its penalty chosen by cross-validation on the training features,
copied into the heads (`heads_from_probes`). Fine-tuning then starts from heads
whose predictions equal the tuned probe's, checked here sentence by sentence.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from torch import nn

from helpers.analysis.probes import fit_tuned_probe
from helpers.evaluation import sentence_embeddings
from helpers.freezing import freeze_backbone
from helpers.model import MultiTaskModel, eval_mode
from helpers.task_data import TaskData
from helpers.tool.prefix_cache import PrefixCache
from helpers.training import train_multitask
from helpers.training_config import TrainingConfig


def linear_probe_stage(
    model: MultiTaskModel,
    features: Mapping[str, np.ndarray],
    labels: Mapping[str, np.ndarray],
    seed: int = 0,
    probes: Mapping[str, LogisticRegression] | None = None,
) -> dict[str, LogisticRegression]:
    """Fit a tuned probe per task on `features[task]` (n, width), the model's own frozen sentence
    embeddings (pooled and normalised, float32: what its heads read), copy it into the head, and
    check that the head predicts what the probe predicts on every one of those sentences.

    `probes`: already fitted ones (the same for every seed of an experiment) to copy instead.
    Returns the probes (`probe.C` is the penalty cross-validation chose). RuntimeError when a head
    and its probe disagree on a sentence.
    """
    probes = dict(probes) if probes is not None else {}
    for task in features:
        if task not in probes:
            probes[task] = fit_tuned_probe(features[task], labels[task], seed=seed)
    heads_from_probes(model, {task: probes[task] for task in features})
    for task, values in features.items():
        disagree = int(
            (head_predictions(model, task, values) != probe_predictions(probes[task], values)).sum()
        )
        if disagree:
            raise RuntimeError(
                f"the {task!r} head disagrees with its probe on {disagree} of {len(values)} sentences"
            )
    return probes


def probe_heads(
    model: MultiTaskModel, train: Mapping[str, TaskData], seed: int = 0, batch_size: int = 64
) -> dict[str, LogisticRegression]:
    """The linear-probe stage on the model as it is now (pre-trained, before fine-tuning): embed
    each task's training sentences, fit a tuned probe per task and copy it into the heads
    (`linear_probe_stage`). What `python -m helpers.tool.cli --probe-heads` runs. Returns the probes."""
    features = sentence_embeddings(model, train, batch_size)
    return linear_probe_stage(model, features, {task: train[task].labels for task in train}, seed=seed)


def head_predictions(model: MultiTaskModel, task: str, features: np.ndarray) -> np.ndarray:
    """The label indices (n,) a head predicts from sentence embeddings (n, width), in eval mode."""
    values = torch.as_tensor(np.asarray(features, dtype=np.float32), device=model.device)
    with eval_mode(model), torch.inference_mode():
        return model.classify(values, [task])[task].argmax(dim=-1).cpu().numpy()


def probe_predictions(probe: LogisticRegression, features: np.ndarray) -> np.ndarray:
    """The label indices (n,) a probe predicts, from the same (float32) features in float64."""
    return np.asarray(probe.predict(np.asarray(features, dtype=np.float64)), dtype=np.int64)


def heads_from_probes(model: MultiTaskModel, probes: Mapping[str, Any]) -> None:
    """The linear-probe stage of LP-FT, exact: copy fitted probes' weights into the model's heads.

    `probes[task]` is a fitted (multinomial or binary) logistic regression on the model's own
    sentence embeddings (pooled, normalised if the model normalises: what `classify` reads), e.g.
    `helpers.analysis.probes.fit_tuned_probe`; anything with `coef_` (n_classes, width) or, for two
    classes, (1, width), `intercept_` and `classes_` (label indices or label names) will do. The
    head's logits then equal the probe's decision function up to float32 rounding, its softmax the
    probe's probabilities, so its predictions are the probe's. Sklearn's classes are sorted; row
    `i` of the head is the model's label `i`. Heads not named are left alone. ValueError, before
    any head changes, for an unknown task, a non-linear head, a width or class set that does not
    match; the binary case writes logits (0, z), whose softmax is the probe's sigmoid(z).
    """
    weights = {}
    for task, probe in probes.items():
        if task not in model.heads:
            raise ValueError(f"no head for task {task!r}; the model has {list(model.heads)}")
        linear = model.heads[task].layers[-1]
        if len(model.heads[task].layers) != 2 or not isinstance(linear, nn.Linear):
            raise ValueError(f"the head of {task!r} is not linear: a probe fits only a linear head")
        labels = model.task_labels[task]
        classes = [labels[c] if isinstance(c, (int, np.integer)) else str(c) for c in probe.classes_]
        if sorted(classes) != sorted(labels):
            raise ValueError(f"the probe for {task!r} knows the classes {classes}, the head {labels}")
        coef = np.asarray(probe.coef_, dtype=np.float64)
        intercept = np.asarray(probe.intercept_, dtype=np.float64).reshape(-1)
        if len(classes) == 2 and coef.shape[0] == 1:  # binary: one row, for the second class
            coef = np.vstack([np.zeros_like(coef), coef])
            intercept = np.concatenate([[0.0], intercept])
        if coef.shape != (len(classes), linear.in_features) or intercept.shape != (len(classes),):
            raise ValueError(
                f"the probe for {task!r} has coef_ {coef.shape} and intercept_ {intercept.shape}; "
                f"the head needs ({len(classes)}, {linear.in_features}) and ({len(classes)},)"
            )
        order = [classes.index(label) for label in labels]  # the probe's row of each head row
        weights[task] = (coef[order], intercept[order])
    with torch.no_grad():
        for task, (coef, intercept) in weights.items():
            linear = model.heads[task].layers[-1]
            linear.weight.copy_(torch.as_tensor(coef, dtype=linear.weight.dtype))
            linear.bias.copy_(torch.as_tensor(intercept, dtype=linear.bias.dtype))


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
