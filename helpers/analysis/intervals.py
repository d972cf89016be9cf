"""Bootstrap intervals over test sentences: how far a macro-F1, or a gap between two classifiers
scored on the same sentences, could move with another draw of sentences of the same kind.

Each resample draws the evaluated sentences with replacement (Efron & Tibshirani, 1993, *An
Introduction to the Bootstrap*); every classifier is scored on the same resamples, so the interval
of a difference is paired. It shows the sampling noise of a fixed evaluation set, not the noise of
training (seeds; see `helpers.analysis.comparison`). For a few items (topics) there is a
t-interval, and for a share of a small audit a Wilson interval.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def bootstrap_weights(n: int, n_bootstrap: int = 1000, seed: int = 0) -> np.ndarray:
    """How often each of `n` items is drawn in each resample: int array (n_bootstrap, n), rows sum to n."""
    if n < 1 or n_bootstrap < 1:
        raise ValueError(f"need at least one item and one resample, got n={n}, n_bootstrap={n_bootstrap}")
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n, size=(n_bootstrap, n))
    return np.stack([np.bincount(row, minlength=n) for row in draws])


def resampled_macro_f1(
    y_true: Sequence, y_pred: Sequence, weights: np.ndarray, labels: Sequence | None = None
) -> np.ndarray:
    """Macro-F1 of `y_pred` against `y_true` (n items each) in every resample of `weights` (B, n): (B,).

    Classes are `labels`, or those present in either sequence (as scikit-learn's `f1_score`); a
    class with no true and no predicted item in a resample scores F1 = 0, as scikit-learn does.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    weights = np.asarray(weights, dtype=float)
    if (
        y_true.shape != y_pred.shape
        or y_true.ndim != 1
        or weights.ndim != 2
        or weights.shape[1] != len(y_true)
    ):
        raise ValueError(
            f"y_true {y_true.shape}, y_pred {y_pred.shape} must be (n,), weights (B, n): got {weights.shape}"
        )
    classes = np.unique(np.concatenate([y_true, y_pred])) if labels is None else np.asarray(labels)
    scores = np.zeros(len(weights))
    for cls in classes:
        true, pred = y_true == cls, y_pred == cls
        tp = weights @ (true & pred)
        denominator = weights @ true + weights @ pred  # 2 tp + fp + fn
        scores += np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)
    return scores / len(classes)


def macro_f1_intervals(
    y_true: Sequence,
    predictions: dict[str, Sequence],
    n_bootstrap: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap interval `(low, high)` of each classifier's macro-F1 on the same items."""
    weights = bootstrap_weights(len(y_true), n_bootstrap, seed)
    tail = (1 - level) / 2 * 100
    return {
        name: tuple(
            float(q) for q in np.percentile(resampled_macro_f1(y_true, pred, weights), [tail, 100 - tail])
        )
        for name, pred in predictions.items()
    }


def paired_difference_interval(
    y_true: Sequence,
    pred_a: Sequence,
    pred_b: Sequence,
    n_bootstrap: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float, float]:
    """Macro-F1 of `pred_a` minus that of `pred_b` on the same items: `(difference, low, high)`, the
    interval from resamples shared by both (paired)."""
    weights = bootstrap_weights(len(y_true), n_bootstrap, seed)
    full = np.ones((1, len(y_true)))
    difference = float(
        (resampled_macro_f1(y_true, pred_a, full) - resampled_macro_f1(y_true, pred_b, full))[0]
    )
    resampled = resampled_macro_f1(y_true, pred_a, weights) - resampled_macro_f1(y_true, pred_b, weights)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(resampled, [tail, 100 - tail])
    return difference, float(low), float(high)


def mean_interval(
    values: Sequence[float], n_bootstrap: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float, float]:
    """Mean of `values` (n,) with its percentile bootstrap interval: `(mean, low, high)`. For paired
    items pass their differences (item by item), and the interval is that of the mean difference."""
    values = np.asarray(values, dtype=float)
    if values.ndim != 1 or len(values) < 2 or not np.isfinite(values).all():
        raise ValueError(f"need a 1-D array of at least two finite values, got shape {values.shape}")
    resampled = bootstrap_weights(len(values), n_bootstrap, seed) @ values / len(values)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(resampled, [tail, 100 - tail])
    return float(values.mean()), float(low), float(high)


def t_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean of `values` (n,) with its Student-t interval: `(mean, low, high)`.

    For a handful of items (ten topics, say) a bootstrap has too few distinct resamples to trust its
    tails; the t-interval assumes the items are a random sample from roughly normal values, and
    widens with few items (t quantile with n - 1 degrees of freedom). Pass paired differences for a
    paired interval.
    """
    from scipy import stats

    values = np.asarray(values, dtype=float)
    if values.ndim != 1 or len(values) < 2 or not np.isfinite(values).all():
        raise ValueError(f"need a 1-D array of at least two finite values, got shape {values.shape}")
    if not 0 < level < 1:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level}")
    mean = float(values.mean())
    half = float(stats.t.ppf(0.5 + level / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values)))
    return mean, mean - half, mean + half


def proportion_interval(successes: int, n: int, level: float = 0.95) -> tuple[float, float, float]:
    """Share `successes / n` with its Wilson score interval: `(share, low, high)`, inside [0, 1] even
    when the share is 0 or 1 (Wilson, 1927)."""
    from scipy import stats

    if not (isinstance(n, int | np.integer) and isinstance(successes, int | np.integer)):
        raise TypeError(f"successes and n must be integers, got {successes!r} and {n!r}")
    if n < 1 or not 0 <= successes <= n:
        raise ValueError(f"need n >= 1 and 0 <= successes <= n, got successes={successes}, n={n}")
    interval = stats.binomtest(int(successes), int(n)).proportion_ci(confidence_level=level, method="wilson")
    return successes / n, float(interval.low), float(interval.high)


def recall_difference_intervals(
    y_true: Sequence,
    pred_a: Sequence,
    pred_b: Sequence,
    n_bootstrap: int = 1000,
    seed: int = 0,
    level: float = 0.95,
):
    """Per true class, the recall of `pred_a` and of `pred_b` on the same items and their paired
    bootstrap difference: a frame indexed by class with columns `a`, `b`, `a - b`, `low`, `high`."""
    import pandas as pd

    y_true, pred_a, pred_b = np.asarray(y_true), np.asarray(pred_a), np.asarray(pred_b)
    if y_true.ndim != 1 or not y_true.shape == pred_a.shape == pred_b.shape:
        raise ValueError(f"y_true {y_true.shape}, pred_a {pred_a.shape}, pred_b {pred_b.shape} must be (n,)")
    weights = bootstrap_weights(len(y_true), n_bootstrap, seed).astype(float)
    tail = (1 - level) / 2 * 100
    rows = {}
    for cls in np.unique(y_true):
        true = y_true == cls
        hits_a, hits_b = (true & (pred_a == cls)).astype(float), (true & (pred_b == cls)).astype(float)
        counts = weights @ true
        resampled = np.divide(
            weights @ (hits_a - hits_b), counts, out=np.zeros(len(weights)), where=counts > 0
        )
        low, high = np.percentile(resampled, [tail, 100 - tail])
        a, b = hits_a.sum() / true.sum(), hits_b.sum() / true.sum()
        rows[cls] = {"a": a, "b": b, "a - b": a - b, "low": float(low), "high": float(high)}
    return pd.DataFrame.from_dict(rows, orient="index")
