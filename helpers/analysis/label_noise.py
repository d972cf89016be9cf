"""How well the sentiment labels agree with themselves: rater resampling and the label-noise ceiling.

Every sentence in ``data/sentiment.csv`` was rated by a panel of people (mostly about 20) on
-4..+4, and its 3-class label comes from the panel's mean rating (``helpers.data.label_from_mean``,
the rule of the data build). A different panel of the same kind of people would give a slightly
different mean, and for sentences near the +-0.5 thresholds a different label. This module
measures that:

* :func:`bootstrap_rater_labels` resamples each sentence's own raters with replacement (the
  nonparametric bootstrap, Efron & Tibshirani 1993, *An Introduction to the Bootstrap*)
  and relabels the resampled mean;
* :func:`label_noise_ceiling` scores those resampled labels against the committed ones with
  macro-F1, overall and per source, with percentile intervals (Efron & Tibshirani, ch. 13);
* :func:`panel_agreement` scores two panels against each other instead (two resampled panels,
  and two disjoint half-panels as a lower reference): the fair reference for a model;
* :func:`label_flip_rate` says, per sentence, how often its resampled label differs from the
  committed one;
* :func:`error_rate_by_disagreement` bins sentences by rater disagreement (``rating_sd``) and
  gives a model's error rate per bin with a Wilson interval (Wilson 1927, *JASA* 22:209-212), so
  a notebook can show whether the model's mistakes are the sentences people disagree on.

The data are Hutto & Gilbert (2014), *VADER*, ICWSM-14 (see ``data/README.md``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from helpers.checks import check_int
from helpers.data import RATING_RANGE, SENTIMENT_LABELS, parse_ratings, sentiment_codes
from helpers.evaluation import confusion_counts, macro_f1_over_present_classes

CONFIDENCE = 0.95  # of every interval in this module
ALL = "all"  # the row of `label_noise_ceiling` that pools every group

_LABELS = np.asarray(SENTIMENT_LABELS)  # code -> label; codes 0, 1, 2 = negative, neutral, positive
_CHUNK_ELEMENTS = 1 << 23  # resampled ratings drawn at once (bounds memory; fixed, so results are too)


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------


def _finite_floats(name: str, values: object) -> np.ndarray:
    """``values`` as a float64 array; TypeError if not numeric, ValueError for NaN or infinity."""
    array = np.asarray(values)
    if array.dtype == bool or not (
        np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
    ):
        raise TypeError(f"{name} must be numeric, got an array of dtype {array.dtype}")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values ({int((~np.isfinite(array)).sum())})")
    return array


def _label_codes(name: str, labels: object) -> np.ndarray:
    """Sentiment labels (strings) as int8 codes into SENTIMENT_LABELS; ValueError for another label."""
    array = np.asarray(labels)
    if array.dtype.kind not in "UO":
        raise TypeError(f"{name} must hold label strings {SENTIMENT_LABELS}, got dtype {array.dtype}")
    array = array.astype(str)
    codes = np.full(array.shape, -1, dtype=np.int8)
    for code, label in enumerate(SENTIMENT_LABELS):
        codes[array == label] = code
    if (codes < 0).any():
        unknown = sorted(set(array[codes < 0].tolist()))[:5]
        raise ValueError(f"{name} has labels outside {SENTIMENT_LABELS}: {unknown}")
    return codes


# --------------------------------------------------------------------------------------------
# The label rule and rater resampling
# --------------------------------------------------------------------------------------------


def _rating_panels(ratings: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Check every sentence's ratings (1-D, non-empty, integers in RATING_RANGE); return them as int8."""
    if isinstance(ratings, str | bytes) or not isinstance(ratings, Sequence | np.ndarray | pd.Series):
        raise TypeError(
            f"ratings must be a sequence of arrays (one per sentence), not {type(ratings).__name__}"
        )
    low, high = RATING_RANGE
    panels = []
    for i, panel in enumerate(ratings):
        values = np.asarray(panel)
        if values.ndim != 1 or values.size == 0:
            raise ValueError(
                f"ratings[{i}] must be a non-empty 1-D array of one sentence's ratings, got shape "
                f"{values.shape}; drop sentences without individual ratings first"
            )
        floats = _finite_floats(f"ratings[{i}]", values)
        if not ((floats == np.round(floats)) & (floats >= low) & (floats <= high)).all():
            raise ValueError(f"ratings[{i}] must be integers in {low}..{high}, got {values.tolist()}")
        panels.append(floats.astype(np.int8))
    return panels


def _bootstrap_codes(panels: list[np.ndarray], n_bootstrap: int, seed: int) -> np.ndarray:
    """Resampled label codes, shape (n_bootstrap, len(panels)), int8 (see `bootstrap_rater_labels`)."""
    rng = np.random.default_rng(seed)
    codes = np.empty((n_bootstrap, len(panels)), dtype=np.int8)
    sizes = np.array([panel.size for panel in panels], dtype=np.int64)
    for size in np.unique(sizes):  # sentences with the same number of raters are resampled together
        rows = np.flatnonzero(sizes == size)
        values = np.stack([panels[row] for row in rows])  # (n_sentences with this size, size)
        step = max(1, _CHUNK_ELEMENTS // (n_bootstrap * int(size)))
        for start in range(0, len(rows), step):
            block = values[start : start + step]  # (m, size)
            picks = rng.integers(0, size, size=(n_bootstrap, len(block), size), dtype=np.int16)
            sums = np.take_along_axis(block[None], picks, axis=2).sum(axis=2, dtype=np.int32)  # (B, m)
            codes[:, rows[start : start + step]] = sentiment_codes(sums / size)
    return codes


def bootstrap_rater_labels(ratings: Sequence[np.ndarray], n_bootstrap: int, seed: int) -> np.ndarray:
    """Labels of rater panels resampled from each sentence's own raters: shape (n_bootstrap, n_sentences).

    ``ratings`` holds one 1-D array per sentence with its individual ratings (integers in
    -4..+4, e.g. from ``helpers.data.parse_ratings``). For every resample and sentence, the
    sentence's ``n`` ratings are drawn ``n`` times with replacement, averaged, and labelled with
    :func:`label_from_mean` (the nonparametric bootstrap, Efron & Tibshirani 1993). Returns a str
    array (values from ``SENTIMENT_LABELS``); row ``b`` is the ``b``-th resampled labelling of all
    sentences.

    The result is determined by the inputs and ``seed`` (sentences are resampled in groups of equal
    rater count, in a fixed order); changing the set of sentences changes the draws. Memory is
    bounded by drawing at most 2**23 ratings at a time; the 2,342 test sentences with ratings x
    200 resamples take about 0.3 s on one core, all 23,410 sentences about 2 s.

    Raises TypeError if ``ratings`` is not a sequence or ``n_bootstrap`` / ``seed`` are not
    integers, and ValueError if a sentence has no ratings (drop rows with an empty ``ratings``
    cell first), ratings outside -4..+4 or non-integer, ``n_bootstrap < 1`` or ``seed < 0``.
    """
    n_bootstrap = check_int("n_bootstrap", n_bootstrap, 1)
    seed = check_int("seed", seed, 0)
    return _LABELS[_bootstrap_codes(_rating_panels(ratings), n_bootstrap, seed)]


def label_flip_rate(boot_labels: np.ndarray, labels: Sequence[str] | np.ndarray) -> np.ndarray:
    """Per sentence, the share of resamples whose label differs from the committed one: shape (n_sentences,).

    ``boot_labels`` is the (n_bootstrap, n_sentences) output of :func:`bootstrap_rater_labels`,
    ``labels`` the committed labels (n_sentences,) in the same order. A value of 0 means every
    resampled panel agreed with the label (e.g. all raters gave the same rating); values near 0.5
    or above mark sentences whose label is close to a coin toss between panels. Raises ValueError
    if the shapes do not match or a label is not one of ``SENTIMENT_LABELS`` (TypeError if they
    are not strings).
    """
    boot = _label_codes("boot_labels", boot_labels)
    committed = _label_codes("labels", labels)
    if boot.ndim != 2 or committed.ndim != 1 or boot.shape[1] != committed.shape[0]:
        raise ValueError(
            "boot_labels must be (n_bootstrap, n_sentences) and labels (n_sentences,), got shapes "
            f"{boot.shape} and {committed.shape}"
        )
    if boot.shape[0] == 0:
        raise ValueError("boot_labels has no resamples (n_bootstrap must be at least 1)")
    return (boot != committed[None, :]).mean(axis=0)


# --------------------------------------------------------------------------------------------
# The label-noise ceiling
# --------------------------------------------------------------------------------------------


def label_noise_ceiling(
    frame: pd.DataFrame, n_bootstrap: int = 200, seed: int = 0, by: str | None = "source"
) -> pd.DataFrame:
    """Macro-F1 of resampled rater panels against the committed labels, overall and per ``by`` group.

    ``frame`` is a sentiment frame (``helpers.data.load_sentiment``) with columns ``label``,
    ``ratings`` and ``by``. Sentences with an empty ``ratings`` cell (their published ratings do
    not reproduce their mean, see ``data/README.md``) are skipped and counted. For each of
    ``n_bootstrap`` resamples (:func:`bootstrap_rater_labels`, seeded by ``seed``) the resampled
    labels are scored against the committed labels with macro-F1 (sklearn's ``f1_score(...,
    average="macro")``, as ``helpers.evaluation.classification_scores`` scores a model: the mean F1
    of the classes that occur in the committed or the resampled labels).

    Returns one row for all sentences (index ``"all"``) and, unless ``by`` is None, one per group
    (sorted), index named ``by`` (or ``"group"``). Columns: ``macro_f1`` (mean over resamples),
    ``ci_low`` / ``ci_high`` (the 2.5th and 97.5th percentiles over resamples, a 95% percentile
    interval), ``accuracy`` (the mean share of resampled labels equal to the committed ones; it is
    higher than macro-F1 because the small neutral class flips most), ``n_sentences`` (used) and
    ``n_skipped`` (no individual ratings). A group with no usable sentence has NaN scores.

    What it is: an estimate of label reliability, "the label-noise ceiling" -- roughly the macro-F1
    that a second, equally large panel of the same kind of raters would score against the
    committed labels, i.e. how well the labels agree with themselves. A model scoring near it is
    about as consistent with the labels as people are. What it is not: a hard upper bound. A model
    can score above it (it may learn exactly where the first panel's mean fell), and the estimate
    is, if anything, optimistic: a resampled panel is centred on the committed mean, whereas a
    genuinely new panel would scatter around the population mean, so it would disagree somewhat
    more (:func:`panel_agreement`: two resampled panels scored against each other reach a macro-F1
    of about 0.92 on the test split instead of 0.94, two disjoint half-panels about 0.88). It also
    ignores every other source of label error (the raters' shared biases, the rule's +-0.5
    thresholds). The interval reflects resampling only, not the choice of sentences.

    Raises KeyError for a missing column, ValueError if no sentence has ratings, a label is not a
    sentiment label, ``n_bootstrap < 1`` or ``seed < 0``, and TypeError for non-integer
    ``n_bootstrap`` / ``seed`` or a non-DataFrame ``frame``.
    """
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"frame must be a pandas DataFrame, got {type(frame).__name__}")
    n_bootstrap = check_int("n_bootstrap", n_bootstrap, 1)
    seed = check_int("seed", seed, 0)
    columns = ["label", "ratings", *([by] if by is not None else [])]
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise KeyError(f"frame lacks columns {missing} (expected a helpers.data.load_sentiment frame)")
    ratings = frame["ratings"].fillna("").astype(str).to_numpy()
    used = ratings != ""
    if not used.any():
        raise ValueError(f"none of the {len(frame)} sentences has individual ratings")
    truth = _label_codes("frame['label']", frame["label"].to_numpy()[used])
    codes = _bootstrap_codes(
        _rating_panels([parse_ratings(text) for text in ratings[used]]), n_bootstrap, seed
    )

    def summary(mask_used: np.ndarray, n_skipped: int) -> dict[str, float | int]:
        n_used = int(mask_used.sum())
        if n_used == 0:
            scores = np.full(1, np.nan)
        else:
            scores = macro_f1_over_present_classes(
                confusion_counts(truth[mask_used], codes[:, mask_used], len(SENTIMENT_LABELS))
            )
        tail = (1 - CONFIDENCE) / 2 * 100
        agreement = (codes[:, mask_used] == truth[mask_used][None, :]).mean() if n_used else np.nan
        return {
            "macro_f1": float(scores.mean()),
            "ci_low": float(np.percentile(scores, tail)),
            "ci_high": float(np.percentile(scores, 100 - tail)),
            "accuracy": float(agreement),
            "n_sentences": n_used,
            "n_skipped": n_skipped,
        }

    rows = {ALL: summary(np.ones(int(used.sum()), dtype=bool), int((~used).sum()))}
    if by is not None:
        groups = frame[by].astype(str).to_numpy()
        if ALL in set(groups):
            raise ValueError(f"column {by!r} has a group called {ALL!r}, the name of the pooled row")
        for group in sorted(set(groups)):
            in_group = groups == group
            rows[group] = summary(in_group[used], int((in_group & ~used).sum()))
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = by if by is not None else "group"
    return table


def _split_half_codes(panels: list[np.ndarray], n_splits: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels of two disjoint halves of each sentence's raters, shape (n_splits, len(panels)) each,
    int8: every split shuffles a sentence's raters and gives the first floor(n/2) to one half and
    the rest to the other. Every panel must have at least 2 raters."""
    rng = np.random.default_rng(seed)
    first = np.empty((n_splits, len(panels)), dtype=np.int8)
    second = np.empty_like(first)
    sizes = np.array([panel.size for panel in panels], dtype=np.int64)
    for size in np.unique(sizes):
        rows = np.flatnonzero(sizes == size)
        values = np.stack([panels[row] for row in rows]).astype(np.int32)  # (m, size)
        half = int(size) // 2
        order = np.argsort(rng.random((n_splits, len(rows), int(size))), axis=2)  # a shuffle per split
        shuffled = np.take_along_axis(values[None], order, axis=2)  # (n_splits, m, size)
        first[:, rows] = sentiment_codes(shuffled[:, :, :half].mean(axis=2))
        second[:, rows] = sentiment_codes(shuffled[:, :, half:].mean(axis=2))
    return first, second


def panel_agreement(frame: pd.DataFrame, n_bootstrap: int = 200, seed: int = 0) -> pd.DataFrame:
    """How well two panels of raters agree with each other: the label-noise ceiling without the
    committed labels on one side.

    Two rows, each the macro-F1 of one panel's labels against another's (sentences with individual
    ratings only), mean and 95% percentile interval over ``n_bootstrap`` repetitions:

    * ``"two resampled panels"``: two independent bootstrap panels of each sentence's raters (as
      :func:`bootstrap_rater_labels`), each as large as the real panel: the agreement of two
      full-size panels, estimated from the one we have;
    * ``"two half-panels"``: each sentence's raters split at random into two disjoint halves (only
      sentences with 2 or more raters): real, independent panels, but half as large, so their
      agreement is a lower reference for two full panels.

    The fair reference for a model scored against the committed labels (:func:`label_noise_ceiling`
    is optimistic). Raises like :func:`label_noise_ceiling`.
    """
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"frame must be a pandas DataFrame, got {type(frame).__name__}")
    n_bootstrap = check_int("n_bootstrap", n_bootstrap, 1)
    seed = check_int("seed", seed, 0)
    if "ratings" not in frame.columns:
        raise KeyError("frame lacks the column 'ratings' (expected a helpers.data.load_sentiment frame)")
    ratings = frame["ratings"].fillna("").astype(str).to_numpy()
    panels = _rating_panels([parse_ratings(text) for text in ratings[ratings != ""]])
    if not panels:
        raise ValueError(f"none of the {len(frame)} sentences has individual ratings")
    k = len(SENTIMENT_LABELS)

    def row(a: np.ndarray, b: np.ndarray) -> dict[str, float | int]:
        scores = np.array(
            [macro_f1_over_present_classes(confusion_counts(a[i], b[i], k)) for i in range(len(a))]
        )
        tail = (1 - CONFIDENCE) / 2 * 100
        return {
            "macro_f1": float(scores.mean()),
            "ci_low": float(np.percentile(scores, tail)),
            "ci_high": float(np.percentile(scores, 100 - tail)),
            "accuracy": float((a == b).mean()),
            "n_sentences": int(a.shape[1]),
        }

    resampled = _bootstrap_codes(panels, 2 * n_bootstrap, seed)
    splittable = [panel for panel in panels if panel.size >= 2]
    halves = _split_half_codes(splittable, n_bootstrap, seed)
    rows = {"two resampled panels": row(resampled[:n_bootstrap], resampled[n_bootstrap:])}
    table = pd.DataFrame.from_dict(rows | {"two half-panels": row(*halves)}, orient="index")
    return table.rename_axis("comparison")


# --------------------------------------------------------------------------------------------
# Model errors against rater disagreement
# --------------------------------------------------------------------------------------------


def error_rate_by_disagreement(
    rating_sd: Sequence[float] | np.ndarray, correct: Sequence[bool] | np.ndarray, n_bins: int = 4
) -> pd.DataFrame:
    """A model's error rate on sentences binned by rater disagreement, with 95% Wilson intervals.

    ``rating_sd`` (n_sentences,) is each sentence's population SD of ratings (``rating_sd`` of
    ``load_sentiment``, -4..+4 rating units) and ``correct`` (n_sentences,) a bool array, True
    where the model's prediction equals the committed label. Drop sentences without ratings
    (NaN ``rating_sd``) first.

    Bins are quantiles of ``rating_sd`` (``pandas.qcut``): bin edges are the 0, 1/n_bins, ...,
    1 quantiles; each bin is right-closed, ``(low, high]``, and the first also includes the
    minimum. Equal SDs always share a bin, so with ties the bins hold unequal counts, and where
    ties make two edges equal the duplicate edge is dropped: fewer than ``n_bins`` bins come back
    (one if all SDs are equal). With very few sentences an interpolated bin can be empty (``n``
    0, NaN rate and interval).

    Returns one row per bin, from least to most disagreement: ``sd_low`` / ``sd_high`` (the bin's
    edges), ``n`` (sentences), ``errors``, ``error_rate`` (errors / n), and ``ci_low`` /
    ``ci_high``, the 95% Wilson score interval for the error rate
    (``scipy.stats.binomtest(...).proportion_ci(method="wilson")``; Wilson 1927).

    Raises TypeError if ``correct`` is not boolean, ``rating_sd`` not numeric or ``n_bins`` not an
    integer, and ValueError for different lengths, no sentences, NaN / infinite / negative SDs or
    ``n_bins < 1``.
    """
    n_bins = check_int("n_bins", n_bins, 1)
    sd = _finite_floats("rating_sd", rating_sd)
    hits = np.asarray(correct)
    if hits.dtype != bool:
        raise TypeError(f"correct must be a bool array (prediction == label), got dtype {hits.dtype}")
    if sd.ndim != 1 or hits.ndim != 1 or sd.shape != hits.shape:
        raise ValueError(
            f"rating_sd and correct must be 1-D and of equal length, got shapes {sd.shape} and {hits.shape}"
        )
    if sd.size == 0:
        raise ValueError("no sentences to bin")
    if (sd < 0).any():
        raise ValueError("rating_sd has negative values (an SD is never negative)")
    bins, edges = pd.qcut(sd, q=n_bins, duplicates="drop", retbins=True)
    codes = np.asarray(bins.codes)
    if len(edges) < 2:  # every SD is the same: one bin holding all sentences
        edges, codes = np.array([sd.min(), sd.max()]), np.zeros(sd.shape, dtype=np.int64)
    rows = []
    for code in range(len(edges) - 1):
        in_bin = codes == code
        n = int(in_bin.sum())
        errors = int((~hits[in_bin]).sum())
        if n:
            ci = binomtest(errors, n).proportion_ci(confidence_level=CONFIDENCE, method="wilson")
            low, high = float(ci.low), float(ci.high)
        else:  # possible for a few sentences: interpolated edges can enclose no value
            low = high = np.nan
        rows.append(
            {
                "sd_low": float(edges[code]),
                "sd_high": float(edges[code + 1]),
                "n": n,
                "errors": errors,
                "error_rate": errors / n if n else np.nan,
                "ci_low": low,
                "ci_high": high,
            }
        )
    table = pd.DataFrame(rows)
    table.index.name = "bin"
    return table
