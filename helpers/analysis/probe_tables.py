"""Probe results as tables, for notebook 01: one tuned probe per feature set scored with intervals,
and scores put on one scale across tasks (how far above chance).

The bookkeeping around `helpers.analysis.probes` (fitting) and `helpers.analysis.intervals`
(bootstrap intervals), so that a notebook cell shows the experiment and not the loops.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from helpers.analysis.intervals import macro_f1_intervals
from helpers.analysis.probes import (
    cross_validated_probe_predictions,
    fit_tuned_probe,
    nearest_neighbour_scores,
)
from helpers.evaluation import classification_scores


def above_chance(score: float | np.ndarray, n_classes: int) -> float | np.ndarray:
    """`(score - chance) / (1 - chance)` with chance = 1 / `n_classes`: 0 at random guessing among
    equally frequent classes, 1 when perfect; comparable across tasks with different class counts.
    It is linear, so it maps an interval's ends to the interval of the rescaled score."""
    if n_classes < 2:
        raise ValueError(f"need at least two classes, got {n_classes}")
    chance = 1 / n_classes
    return (score - chance) / (1 - chance)


def tuned_probe_table(
    feature_sets: Mapping[str, np.ndarray],
    labels: Sequence,
    train: Sequence[bool],
    seed: int = 0,
    **probe_options,
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """One `fit_tuned_probe` per feature set (each (n, d), rows aligned with `labels` (n,)), fitted on
    the rows where `train` is True and scored on the others.

    Returns a frame with one row per feature set (`configuration`, the chosen `C`, `macro-F1` and its
    95 % bootstrap interval `low`, `high`, all on the same resampled sentences) and the held-out
    predictions `{configuration: (m,)}`, for paired comparisons. `probe_options` go to
    `fit_tuned_probe` (`grid`, `folds`, `stop_at_decline`, `class_weighting`).
    """
    labels, train = np.asarray(labels), np.asarray(train, dtype=bool)
    if labels.ndim != 1 or train.shape != labels.shape:
        raise ValueError(f"labels {labels.shape} and train {train.shape} must both be (n,)")
    if not train.any() or train.all():
        raise ValueError("train must mark some rows for training and leave some for scoring")
    rows, predictions = [], {}
    for name, features in feature_sets.items():
        features = np.asarray(features, dtype=np.float64)
        if len(features) != len(labels):
            raise ValueError(f"feature set {name!r} has {len(features)} rows for {len(labels)} labels")
        probe = fit_tuned_probe(features[train], labels[train], seed=seed, **probe_options)
        predictions[name] = probe.predict(features[~train])
        score = classification_scores(labels[~train], predictions[name])["macro_f1"]
        rows.append({"configuration": name, "C": probe.C, "macro-F1": score})
    intervals = macro_f1_intervals(labels[~train], predictions, seed=seed)
    table = pd.DataFrame(rows)
    table[["low", "high"]] = [intervals[name] for name in table.configuration]
    return table, predictions


def separability_table(
    questions: Mapping[str, tuple[np.ndarray, Sequence]], seed: int = 0
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """For each question `{name: (embeddings (n, d), labels (n,))}`: the macro-F1 of a 5-nearest-
    neighbour vote and of a linear probe at C = 1 (both 5-fold cross-validated), the probe's 95 %
    bootstrap interval, random guessing (1 / classes), and both scores `above_chance`.

    Meant for samples with equally many sentences per class (where random guessing scores about
    1 / classes); the rescaled scores are what can be compared across questions. Returns the table
    (one row per question) and the probe's out-of-fold predictions `{question: (n,)}`.
    """
    rows, predictions = {}, {}
    for name, (embeddings, labels) in questions.items():
        labels = np.asarray(labels)
        n_classes = len(np.unique(labels))
        predicted = predictions[name] = cross_validated_probe_predictions(embeddings, labels, seed=seed)
        low, high = macro_f1_intervals(labels, {name: predicted}, seed=seed)[name]
        neighbours = nearest_neighbour_scores(embeddings, labels, seed=seed)["macro_f1"]
        probe = classification_scores(labels, predicted)["macro_f1"]
        rows[name] = {
            "nearest neighbours": neighbours,
            "linear probe": probe,
            "probe low": low,
            "probe high": high,
            "random guessing": 1 / n_classes,
            "neighbours above chance": above_chance(neighbours, n_classes),
            "probe above chance": above_chance(probe, n_classes),
            "probe above chance, low": above_chance(low, n_classes),
            "probe above chance, high": above_chance(high, n_classes),
        }
    return pd.DataFrame.from_dict(rows, orient="index"), predictions
