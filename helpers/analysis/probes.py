"""Linear probes and nearest-neighbour votes on frozen embeddings, and a model's most confident
mistakes: how the notebooks judge what an embedding space holds."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from helpers.evaluation import classification_scores

PROBE_CLASS_WEIGHTS = {"balanced": "balanced", "none": None}  # the names of TrainingConfig.class_weighting


def linear_probe(seed: int = 0, C: float = 1.0, class_weighting: str = "balanced") -> LogisticRegression:
    """An unfitted linear probe: multinomial logistic regression with L2 penalty `C`.

    By default (`class_weighting="balanced"`) classes are weighted inversely to their frequency so
    the probe optimises for every class, which is what macro-F1 rewards; "none" weighs every example
    the same, as an unweighted cross-entropy does (ValueError for another name).

    It is solved by Newton-CG to a tight tolerance (in float64, see `fit_linear_probe`): the optimum is
    unique, and a solver that reaches it gives the same probabilities, to about 1e-7, on any CPU, BLAS
    and thread count. L-BFGS at scikit-learn's default tolerance stopped early on these ill-conditioned
    features, at a point that depended on the thread count (probabilities moved by up to 0.02, and 2 of
    637 predictions flipped).
    """
    if class_weighting not in PROBE_CLASS_WEIGHTS:
        raise ValueError(
            f"unknown class weighting {class_weighting!r}; choose one of {tuple(PROBE_CLASS_WEIGHTS)}"
        )
    return LogisticRegression(
        C=C,
        solver="newton-cg",
        tol=1e-8,
        max_iter=1000,
        class_weight=PROBE_CLASS_WEIGHTS[class_weighting],
        random_state=seed,
    )


def fit_linear_probe(
    features: np.ndarray, labels: Sequence, seed: int = 0, C: float = 1.0, class_weighting: str = "balanced"
) -> LogisticRegression:
    """Fit a `linear_probe` on frozen features (n, d): how much of a task is linearly readable."""
    return linear_probe(seed, C, class_weighting).fit(np.asarray(features, dtype=np.float64), labels)


PROBE_C_GRID = tuple(float(c) for c in np.logspace(-2, 3, 11))  # 0.01 ... 1000, half a decade apart


def fit_tuned_probe(
    features: np.ndarray,
    labels: Sequence,
    seed: int = 0,
    class_weighting: str = "balanced",
    grid: Sequence[float] = PROBE_C_GRID,
    folds: int = 5,
    stop_at_decline: bool = False,
) -> LogisticRegression:
    """A `linear_probe` whose penalty `C` is chosen by stratified k-fold cross-validation (macro-F1)
    on the training features (n, d) alone, then refitted on all of them; `probe.C` is the choice.

    Compare feature sets with tuned probes: with one fixed `C`, features whose scales differ (mean
    pooling's norms are about 4, CLS's 7, max pooling's 16) are regularised differently, and the
    comparison measures the penalty instead of the features.

    `stop_at_decline`: walk up the grid from the smallest `C` and, once the best is no longer the
    smallest `C` (the score has risen), stop at the first value that scores below the best (for a
    score that rises to one peak and falls, the same choice without the slow fits at large `C`; a
    dip before the first rise, seen at very strong penalties, does not stop the walk). The chosen
    `C` is then the grid's largest only if no value after the rise scored lower. By default every
    value of the grid is tried.
    """
    features, labels = np.asarray(features, dtype=np.float64), np.asarray(labels)
    grid = sorted(float(C) for C in grid)
    splits = list(StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(features, labels))
    # one probe per fold, refitted along the grid from the strongest penalty up, each fit starting
    # from the previous solution: the optimum is unique, so this only saves Newton steps
    probes = [linear_probe(seed, grid[0], class_weighting).set_params(warm_start=True) for _ in splits]
    best_C, best_score = grid[0], -np.inf
    for C in grid:  # ties keep the strongest penalty (the smallest C)
        predicted = np.empty(len(labels), dtype=labels.dtype)
        for probe, (train, held_out) in zip(probes, splits, strict=True):
            probe.set_params(C=C).fit(features[train], labels[train])
            predicted[held_out] = probe.predict(features[held_out])
        score = classification_scores(labels, predicted)["macro_f1"]
        if score > best_score + 1e-12:
            best_C, best_score = C, score
        elif stop_at_decline and best_C != grid[0] and score < best_score - 1e-12:
            break
    return linear_probe(seed, best_C, class_weighting).fit(features, labels)


def linear_probe_scores(
    train_features: np.ndarray,
    train_labels: Sequence,
    eval_features: np.ndarray,
    eval_labels: Sequence,
    seed: int = 0,
    class_weighting: str = "balanced",
    tune_C: bool = False,
) -> dict:
    """Fit a linear probe on the training features (n, d) and score it on held-out features (m, d):
    accuracy and macro-F1, as `classification_scores`. `tune_C`: choose C by cross-validation on the
    training features (`fit_tuned_probe`) instead of C = 1."""
    fit = fit_tuned_probe if tune_C else fit_linear_probe
    probe = fit(train_features, train_labels, seed=seed, class_weighting=class_weighting)
    return classification_scores(eval_labels, probe.predict(np.asarray(eval_features, dtype=np.float64)))


def cross_validated_probe_predictions(features: np.ndarray, labels: Sequence, folds: int = 5, seed: int = 0):
    """Out-of-fold linear-probe predictions (stratified k-fold), for a sample with no split of its own."""
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    features = np.asarray(features, dtype=np.float64)
    return cross_val_predict(linear_probe(seed), features, labels, cv=splitter)


def confident_mistakes(
    texts: Sequence[str], y_true: Sequence[str], probabilities: np.ndarray, labels: Sequence[str], n: int = 8
):
    """The `n` wrong predictions the model was most sure of, most confident first."""
    import pandas as pd

    probabilities = np.asarray(probabilities)
    if probabilities.ndim != 2 or probabilities.shape[1] != len(labels):
        raise ValueError(f"probabilities must have shape (n, {len(labels)}), got {probabilities.shape}")
    if not len(texts) == len(y_true) == len(probabilities):
        raise ValueError(
            f"{len(texts)} texts, {len(y_true)} true labels and {len(probabilities)} rows of probabilities"
        )
    predicted = np.asarray(labels)[probabilities.argmax(axis=1)]
    table = pd.DataFrame(
        {
            "text": list(texts),
            "true": list(y_true),
            "predicted": predicted,
            "confidence": probabilities.max(axis=1),
        }
    )
    wrong = table[table.true != table.predicted]
    return wrong.sort_values("confidence", ascending=False, kind="stable").head(n).reset_index(drop=True)


def nearest_neighbour_scores(
    embeddings: np.ndarray, labels: Sequence, neighbours: int = 5, folds: int = 5, seed: int = 0
) -> dict:
    """Accuracy and macro-F1 of a k-nearest-neighbour vote (cosine, k-fold): how well classes cluster.

    Unlike a linear probe this needs no training, so it scores the geometry of the space itself,
    the same geometry a t-SNE map draws.
    """
    from sklearn.neighbors import KNeighborsClassifier

    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    vote = KNeighborsClassifier(n_neighbors=neighbours, metric="cosine")
    return classification_scores(labels, cross_val_predict(vote, embeddings, labels, cv=splitter))
