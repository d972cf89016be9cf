"""The sentiment baseline the trained model has to beat: the VADER lexicon, thresholds tuned on train.

The baseline gets the same chance as the model: whatever it tunes comes from the training split
only, never from the validation or test split (`helpers.analysis.tagger` is the sentence-type one).

* Sentiment: VADER's compound score (Hutto & Gilbert 2014) cut at two thresholds. The library's
  default cuts (+-0.05) were chosen for VADER's own use, not for this data set's labels (the mean
  human rating cut at +-0.5 on -4..+4, see ``data/README.md``), so `tune_vader_thresholds` picks
  the two cuts that maximise macro-F1 on the training split; report both.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from helpers.checks import check_number, check_texts
from helpers.data import SENTIMENT_LABELS
from helpers.evaluation import macro_f1_over_all_classes

VADER_POSITIVE = 0.05  # the thresholds VADER's authors recommend for the compound score
VADER_NEGATIVE = -0.05
# Two grid points whose macro-F1 differ by at most this much count as tied (float summation noise).
TIE_TOLERANCE = 1e-12


@dataclass(frozen=True)
class VaderThresholds:
    """Thresholds on VADER's compound score and the macro-F1 they reached on the data they were tuned on.

    A sentence is positive if its compound score is >= `positive`, otherwise negative if it is
    <= `negative`, otherwise neutral (see `vader_labels`). `macro_f1` is measured on the tuning
    data itself, so it is optimistic: evaluate on a held-out split for an honest number.
    """

    negative: float
    positive: float
    macro_f1: float


@lru_cache(maxsize=1)
def _vader_analyzer():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def vader_compound(texts: str | Iterable[str]) -> np.ndarray:
    """VADER's compound sentiment score of each sentence (Hutto & Gilbert 2014, ``vaderSentiment``).

    Returns a float64 array of shape (n,) with values in [-1, 1] (VADER rounds them to 4
    decimals); a single string counts as one sentence, no sentences give shape (0,). Raises
    TypeError (via `check_texts`) for None, bytes, a set, a DataFrame, or an item that is not a
    string.
    """
    texts = check_texts(texts)
    if not texts:
        return np.zeros(0, dtype=np.float64)
    analyzer = _vader_analyzer()
    return np.fromiter(
        (analyzer.polarity_scores(text)["compound"] for text in texts), dtype=np.float64, count=len(texts)
    )


def _check_thresholds(negative: float, positive: float) -> tuple[float, float]:
    negative = check_number("negative", negative)
    positive = check_number("positive", positive)
    if negative > positive:
        raise ValueError(f"negative ({negative}) must not exceed positive ({positive})")
    return negative, positive


def _check_scores(compound: Sequence[float] | np.ndarray) -> np.ndarray:
    scores = np.asarray(compound)
    if scores.dtype.kind not in "iuf":
        raise TypeError(f"compound scores must be real numbers, got an array of dtype {scores.dtype}")
    if scores.ndim != 1:
        raise ValueError(f"compound scores must have shape (n,), got shape {scores.shape}")
    scores = scores.astype(np.float64, copy=False)
    bad = np.flatnonzero(~np.isfinite(scores))
    if bad.size:
        raise ValueError(f"compound scores must be finite; item {bad[0]} is {scores[bad[0]]}")
    return scores


def _label_codes(labels: Iterable[str], classes: Sequence[str], n: int) -> np.ndarray:
    """`labels` as indices into `classes`; ValueError for a wrong count or an unknown label."""
    if isinstance(labels, str | Set | Mapping) or labels is None or not isinstance(labels, Iterable):
        raise TypeError(f"labels must be a sequence of strings, got {type(labels).__name__}")
    labels = list(labels)
    if len(labels) != n:
        raise ValueError(f"got {n} inputs but {len(labels)} labels; they must match one to one")
    index = {label: code for code, label in enumerate(classes)}
    unknown = sorted({repr(label) for label in labels if not isinstance(label, str) or label not in index})
    if unknown:
        raise ValueError(f"unknown labels {', '.join(unknown)}; expected one of {', '.join(classes)}")
    return np.array([index[label] for label in labels], dtype=np.int64)


def vader_labels(
    compound: Sequence[float] | np.ndarray,
    negative: float = VADER_NEGATIVE,
    positive: float = VADER_POSITIVE,
) -> list[str]:
    """Cut compound scores into 'negative' / 'neutral' / 'positive'.

    `compound` has shape (n,) (scores from `vader_compound`, in [-1, 1]). A score is 'positive'
    if >= `positive`, otherwise 'negative' if <= `negative`, otherwise 'neutral' (so with
    ``negative == positive`` a score equal to both is positive). The defaults are the cuts the
    VADER authors recommend (Hutto & Gilbert 2014; the ``vaderSentiment`` README). Returns a list
    of n strings. Raises TypeError for non-numeric scores or thresholds, ValueError for scores not
    of shape (n,), non-finite scores or thresholds, or ``negative > positive``.
    """
    negative, positive = _check_thresholds(negative, positive)
    scores = _check_scores(compound)
    out = np.full(scores.shape, "neutral", dtype=object)
    out[scores <= negative] = "negative"
    out[scores >= positive] = "positive"
    return out.tolist()


def vader_sentiment(
    texts: str | Iterable[str], negative: float = VADER_NEGATIVE, positive: float = VADER_POSITIVE
) -> list[str]:
    """Label sentences negative / neutral / positive: `vader_labels` of `vader_compound`.

    Pass the thresholds of `tune_vader_thresholds` to use tuned cuts. Errors as in both.
    """
    negative, positive = _check_thresholds(negative, positive)
    return vader_labels(vader_compound(texts), negative, positive)


def _threshold_grid_macro_f1(
    scores: np.ndarray, codes: np.ndarray, negatives: np.ndarray, positives: np.ndarray
) -> np.ndarray:
    """Macro-F1 of `vader_labels(scores, n, p)` for every n in `negatives` and p in `positives`.

    `codes` index SENTIMENT_LABELS (negative, neutral, positive). Returns shape
    (len(negatives), len(positives)). Works from counts: per true class the scores are sorted
    once, and binary search gives how many are <= n and how many are < p, so the cost is
    O(N log N + G log N) for N scores and G thresholds rather than O(N * G^2).
    """
    n_classes = len(SENTIMENT_LABELS)
    confusion = np.zeros((n_classes, n_classes, len(negatives), len(positives)), dtype=np.int64)
    for true in range(n_classes):
        ordered = np.sort(scores[codes == true])
        at_most_negative = np.searchsorted(ordered, negatives, side="right")[:, None]  # score <= n
        below_positive = np.searchsorted(ordered, positives, side="left")[None, :]  # score < p
        predicted_positive = len(ordered) - below_positive  # score >= p
        # score <= n and score >= p (only possible when p <= n) is positive, not negative
        both = np.maximum(at_most_negative - below_positive, 0)
        predicted_negative = at_most_negative - both
        confusion[true, 0] = predicted_negative
        confusion[true, 2] = predicted_positive
        confusion[true, 1] = len(ordered) - predicted_negative - predicted_positive
    return macro_f1_over_all_classes(np.moveaxis(confusion, (0, 1), (-2, -1)))


def tune_vader_thresholds(
    compound: Sequence[float] | np.ndarray, labels: Iterable[str], step: float = 0.01
) -> VaderThresholds:
    """The compound-score thresholds that maximise macro-F1 on (`compound`, `labels`).

    Exhaustive grid search: `negative` over -1, -1 + step, ..., 0 and `positive` over
    0, step, ..., 1 (101 x 101 pairs for the default step), scoring every pair by macro-F1 over
    negative / neutral / positive with sklearn's ``f1_score(average='macro')`` semantics (a class
    that is neither true nor predicted scores 0). Vectorised through sorted scores and counts: the
    whole grid on the 18,885 training sentences takes well under a second.

    Ties (macro-F1 within `TIE_TOLERANCE`; many pairs are exactly tied because thresholds between
    two neighbouring scores give the same labels) go to the narrowest neutral band
    (smallest ``positive - negative``), then to the larger `negative`.

    `compound`: shape (n,), n >= 1, e.g. from `vader_compound`; `labels`: n strings from
    SENTIMENT_LABELS; `step`: grid spacing, a real in (0, 1] that divides 1. Tune on the training
    split only. Raises TypeError for non-numeric scores or step or non-string labels, ValueError for
    an empty input, lengths that differ, unknown labels, non-finite scores, or a bad step. The
    thresholds are the obvious way to fit a lexicon to a new label definition; the method is plain
    threshold tuning, not part of VADER itself (Hutto & Gilbert 2014).
    """
    step = check_number("step", step, 0.0, 1.0, low_open=True)
    if not (0 < step <= 1) or abs(1 / step - round(1 / step)) > 1e-9:
        raise ValueError(f"step must be in (0, 1] and divide 1 (e.g. 0.01), got {step!r}")
    scores = _check_scores(compound)
    if scores.size == 0:
        raise ValueError("cannot tune thresholds on no scores")
    codes = _label_codes(labels, SENTIMENT_LABELS, len(scores))
    points = round(1 / step) + 1
    negatives = np.round(np.linspace(-1.0, 0.0, points), 12)  # round: grid points such as 0.05 exact
    positives = np.round(np.linspace(0.0, 1.0, points), 12)
    f1 = _threshold_grid_macro_f1(scores, codes, negatives, positives)
    rows, cols = np.nonzero(f1 >= f1.max() - TIE_TOLERANCE)
    width = positives[cols] - negatives[rows]
    best = np.lexsort((-negatives[rows], width))[0]  # narrowest band first, then larger negative
    row, col = rows[best], cols[best]
    return VaderThresholds(
        negative=float(negatives[row]), positive=float(positives[col]), macro_f1=float(f1[row, col])
    )
