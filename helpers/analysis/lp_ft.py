"""The linear-probe stage of LP-FT (linear probing, then fine-tuning), exact.

Kumar et al. (2022) train the heads on the frozen features before the encoder moves. A trained
head only approximates the best linear read-out; here the read-out *is* the best one found: a
logistic-regression probe with its penalty chosen by cross-validation on the training features,
copied into the heads (`helpers.freezing.heads_from_probes`). Fine-tuning then starts from heads
whose predictions equal the tuned probe's, checked here sentence by sentence.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from helpers.analysis.probes import fit_tuned_probe
from helpers.evaluation import sentence_embeddings
from helpers.freezing import heads_from_probes
from helpers.model import MultiTaskModel, eval_mode
from helpers.task_data import TaskData


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
