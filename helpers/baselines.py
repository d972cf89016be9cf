"""Baselines the trained model has to beat: the VADER lexicon and a rule-based sentence-type tagger.

Both baselines get the same chance as the model: whatever they learn or tune comes from the
training split only, never from the validation or test split or the hand-written challenge set.

* Sentiment: VADER's compound score (Hutto & Gilbert 2014) cut at two thresholds. The library's
  default cuts (+-0.05) were chosen for VADER's own use, not for this data set's labels (the mean
  human rating cut at +-0.5 on -4..+4, see ``data/README.md``), so `tune_vader_thresholds` picks
  the two cuts that maximise macro-F1 on the training split; report both.
* Sentence type: `RuleBasedTagger` applies punctuation rules plus three lists of sentence-opening
  words (command / question / exclamation openers) that `RuleBasedTagger.fit` learns from
  labelled training sentences; `tune_rule_based_tagger` picks its two hyper-parameters by grouped
  cross-validation on the training split.
"""

from __future__ import annotations

import math
import numbers
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from helpers.data import SENTENCE_TYPE_LABELS, SENTIMENT_LABELS, strip_terminal_punctuation
from helpers.encoder import check_texts

# ---------------------------------------------------------------------------------------------
# VADER
# ---------------------------------------------------------------------------------------------

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


def _check_threshold(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} ({value!r})")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


def _check_thresholds(negative: float, positive: float) -> tuple[float, float]:
    negative = _check_threshold("negative", negative)
    positive = _check_threshold("positive", positive)
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


def _macro_f1_from_confusion(confusion: np.ndarray) -> np.ndarray:
    """Macro-F1 from confusion counts of shape (k_true, k_pred, ...) -> shape (...).

    Per class F1 = 2 TP / (predicted + true), 0 where both are 0 (sklearn's ``zero_division=0``);
    the macro average is over all k classes.
    """
    true_positive = np.einsum("ii...->i...", confusion)
    denominator = confusion.sum(axis=0) + confusion.sum(axis=1)
    f1 = np.divide(
        2.0 * true_positive,
        denominator,
        out=np.zeros(denominator.shape, dtype=np.float64),
        where=denominator > 0,
    )
    return f1.mean(axis=0)


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
    return _macro_f1_from_confusion(confusion)


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
    if isinstance(step, bool) or not isinstance(step, numbers.Real):
        raise TypeError(f"step must be a real number, got {type(step).__name__} ({step!r})")
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


# ---------------------------------------------------------------------------------------------
# Rule-based sentence-type tagger
# ---------------------------------------------------------------------------------------------

# A word: letters with inner apostrophes ("let's", "don't"). Brown writes opening single quotes as
# "'", so a leading or trailing apostrophe ("'Do", "runnin'") is not part of the word.
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")
_CLOSERS = "\"')\u201d\u2019 \t\n"  # closing quotes/brackets after a sentence's final mark
OPENER_CLASSES: tuple[str, ...] = ("command", "question", "exclamation")

# Hyper-parameters of `RuleBasedTagger.fit`, chosen by `tune_rule_based_tagger` (5-fold
# cross-validation grouped by Brown file, on the training split only) from this grid, which was
# fixed before tuning. tests/test_baselines.py checks that the tuning still selects them.
TAGGER_MIN_COUNT = 1
TAGGER_MIN_SHARE = 0.3
TAGGER_GRID_MIN_COUNTS: tuple[int, ...] = (1, 2, 3, 5, 8, 13, 20)
TAGGER_GRID_MIN_SHARES: tuple[float, ...] = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def first_word(text: str) -> str:
    """The sentence's first word, lower-cased ('' if it has none): what the tagger's lists hold.

    Skips anything before it (quotes, brackets, digits, punctuation); keeps inner apostrophes
    (``"Let's go"`` -> ``"let's"``, a curly apostrophe counts as ``'``).
    """
    match = _WORD.search(text.lower().replace("\u2019", "'"))
    return match.group() if match else ""


def final_mark(text: str) -> str:
    """The sentence's last character after dropping trailing closing quotes, brackets and spaces.

    ``'"Is it true?"'`` -> ``"?"``; ``""`` for an empty text.
    """
    return text.rstrip(_CLOSERS)[-1:]


def _check_count(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"min_count must be an integer of at least 1, got {value!r}")
    return int(value)


def _check_share(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value <= 1:
        raise ValueError(f"min_share must be a real number in (0, 1], got {value!r}")
    return float(value)


def _openers(counts: dict[str, Counter], min_count: int, min_share: float) -> dict[str, set[str]]:
    """The learning rule of `RuleBasedTagger.fit`, from first-word -> label counts."""
    lists: dict[str, set[str]] = {label: set() for label in OPENER_CLASSES}
    for word, by_label in counts.items():
        ranked = by_label.most_common(2)
        label, top = ranked[0]
        total = sum(by_label.values())
        tied = len(ranked) > 1 and ranked[1][1] == top
        if not tied and label in lists and total >= min_count and top / total >= min_share:
            lists[label].add(word)
    return lists


def _first_word_counts(words: Iterable[str], labels: Iterable[str]) -> dict[str, Counter]:
    counts: dict[str, Counter] = defaultdict(Counter)
    for word, label in zip(words, labels, strict=True):
        if word:
            counts[word][label] += 1
    return counts


@dataclass(frozen=True)
class RuleBasedTagger:
    """Sentence type from the final punctuation and the first word, with opener lists learned from data.

    Rules, in order (``mark`` is the final character after closing quotes/brackets, ``word`` the
    lower-cased first word, see `final_mark` and `first_word`):

    1. ``mark == "?"`` -> question;
    2. ``word`` in `command_openers` -> command;
    3. ``mark == "!"`` -> exclamation;
    4. ``mark != "."`` and ``word`` in `question_openers` -> question;
    5. ``mark != "."`` and ``word`` in `exclamation_openers` -> exclamation;
    6. otherwise statement.

    Rules 4 and 5 only fire on text without a final ``.``/``?``/``!`` (chat, punctuation stripped).

    This partly re-implements how the silver labels were made (``data/README.md``, "Task A"): a
    final ``?`` makes a question, a sentence ending in ``.``/``!`` whose first word (after
    *please, now, just, then, oh, well*, quotes and interjections) is tagged as a base-form verb is
    a command, else ``!`` makes an exclamation and ``.`` a statement. On punctuated Brown text the
    tagger therefore scores high by construction (rules 1 and 3 copy the labelling rule, the
    command list approximates the part-of-speech test); the honest tests of it are text with the
    final punctuation stripped and the challenge set.

    Build it with `fit` (or `tune_rule_based_tagger`) from the training split only; the
    constructor takes hand-made lists (any iterable of lower-case words, stored as frozensets) and
    raises TypeError for a non-string entry, ValueError for an entry that `first_word` can never
    return or a word in two lists.
    """

    command_openers: frozenset[str] = frozenset()
    question_openers: frozenset[str] = frozenset()
    exclamation_openers: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        seen: dict[str, str] = {}
        for label in OPENER_CLASSES:
            name = f"{label}_openers"
            words = getattr(self, name)
            if isinstance(words, str) or not isinstance(words, Iterable):
                raise TypeError(f"{name} must be an iterable of words, got {type(words).__name__}")
            words = frozenset(words)
            for word in sorted(words, key=repr):
                if not isinstance(word, str):
                    raise TypeError(f"{name} holds {word!r} ({type(word).__name__}), expected str")
                if not _WORD.fullmatch(word):
                    raise ValueError(f"{name} holds {word!r}, which is not a lower-case word")
                if word in seen:
                    raise ValueError(f"{word!r} is in both {seen[word]} and {name}")
                seen[word] = name
            object.__setattr__(self, name, words)

    @classmethod
    def fit(
        cls,
        texts: str | Iterable[str],
        labels: Iterable[str],
        min_count: int = TAGGER_MIN_COUNT,
        min_share: float = TAGGER_MIN_SHARE,
    ) -> RuleBasedTagger:
        """Learn the three opener lists from labelled sentences (use the training split only).

        Learning rule: group the sentences by `first_word`; a word is an opener of class c
        (command, question or exclamation) if it starts at least `min_count` sentences, c is the
        most frequent label among them (no tie) and has at least `min_share` of them. Every
        sentence counts whatever its final mark, so a word is judged as rules 2, 4 and 5 meet it
        on unpunctuated text (all Brown questions end in "?" and exclamations in "!", so judging
        question / exclamation openers only on sentences without that mark would find none). The
        class shares reflect the training split's engineered class balance (statements
        subsampled), which the test split and the challenge set share.

        `texts`: n strings; `labels`: n labels from SENTENCE_TYPE_LABELS; `min_count` an integer
        >= 1, `min_share` a real in (0, 1] (defaults chosen by `tune_rule_based_tagger`). Raises
        TypeError for texts that are not strings, ValueError for a length mismatch, an unknown
        label or a bad hyper-parameter.
        """
        texts = check_texts(texts)
        codes = _label_codes(labels, SENTENCE_TYPE_LABELS, len(texts))
        counts = _first_word_counts(
            (first_word(text) for text in texts), (SENTENCE_TYPE_LABELS[code] for code in codes)
        )
        lists = _openers(counts, _check_count(min_count), _check_share(min_share))
        return cls(
            command_openers=frozenset(lists["command"]),
            question_openers=frozenset(lists["question"]),
            exclamation_openers=frozenset(lists["exclamation"]),
        )

    def _rule(self, word: str, mark: str) -> str:
        if mark == "?":
            return "question"
        if word in self.command_openers:
            return "command"
        if mark == "!":
            return "exclamation"
        if mark != "." and word in self.question_openers:
            return "question"
        if mark != "." and word in self.exclamation_openers:
            return "exclamation"
        return "statement"

    def predict_one(self, text: str) -> str:
        """The sentence type of one sentence (one of SENTENCE_TYPE_LABELS); TypeError if not a string."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a string, got {type(text).__name__} ({text!r})")
        return self._rule(first_word(text), final_mark(text))

    def predict(self, texts: str | Iterable[str]) -> list[str]:
        """The sentence type of each sentence: a list of n labels. TypeError as in `check_texts`."""
        return [self.predict_one(text) for text in check_texts(texts)]

    def openers(self) -> dict[str, frozenset[str]]:
        """The three learned lists by class: {'command': ..., 'question': ..., 'exclamation': ...}."""
        return {label: getattr(self, f"{label}_openers") for label in OPENER_CLASSES}


def tune_rule_based_tagger(
    texts: Iterable[str],
    labels: Iterable[str],
    groups: Iterable[str],
    min_counts: Sequence[int] = TAGGER_GRID_MIN_COUNTS,
    min_shares: Sequence[float] = TAGGER_GRID_MIN_SHARES,
    n_splits: int = 5,
) -> tuple[RuleBasedTagger, pd.DataFrame]:
    """Choose `RuleBasedTagger.fit`'s hyper-parameters by grouped cross-validation, then fit on all.

    Grouped k-fold (sklearn ``GroupKFold``, `n_splits` folds, no shuffling, so deterministic):
    `groups` keeps sentences of one source document (the Brown ``file_id``, as the splits do) in
    one fold. Each (min_count, min_share) pair of the grid is scored on every held-out fold by
    macro-F1 over SENTENCE_TYPE_LABELS, once on the sentences as written and once with their final
    punctuation stripped (`helpers.data.strip_terminal_punctuation`); the score is the mean of the
    two fold-averaged macro-F1s. The best score wins; ties (within `TIE_TOLERANCE`) go to the
    larger min_count, then the larger min_share (shorter lists).

    `texts`, `labels`, `groups`: n items each (use the training split only). Returns the tagger
    fitted on all n sentences with the chosen pair and a table with one row per pair: columns
    ``min_count, min_share, macro_f1, macro_f1_stripped, score, selected``. Raises ValueError for
    mismatched lengths, unknown labels, an empty or bad grid, or fewer groups than folds.
    """
    from sklearn.model_selection import GroupKFold

    texts = check_texts(texts)
    codes = _label_codes(labels, SENTENCE_TYPE_LABELS, len(texts))
    groups = list(groups) if not isinstance(groups, str) else [groups]
    if len(groups) != len(texts):
        raise ValueError(f"got {len(texts)} texts but {len(groups)} groups; they must match one to one")
    if not min_counts or not min_shares:
        raise ValueError("min_counts and min_shares must not be empty")
    grid = [(_check_count(count), _check_share(share)) for count in min_counts for share in min_shares]
    if isinstance(n_splits, bool) or not isinstance(n_splits, numbers.Integral) or n_splits < 2:
        raise ValueError(f"n_splits must be an integer of at least 2, got {n_splits!r}")
    if len(set(groups)) < n_splits:
        raise ValueError(f"need at least n_splits={n_splits} distinct groups, got {len(set(groups))}")

    label_names = np.array(SENTENCE_TYPE_LABELS, dtype=object)[codes]
    words = [first_word(text) for text in texts]
    views = {  # final mark of each sentence as written and with its final punctuation stripped
        "macro_f1": [final_mark(text) for text in texts],
        "macro_f1_stripped": [final_mark(strip_terminal_punctuation(text)) for text in texts],
    }
    label_index = {label: code for code, label in enumerate(SENTENCE_TYPE_LABELS)}
    k = len(SENTENCE_TYPE_LABELS)
    sums = {view: np.zeros(len(grid)) for view in views}
    for train, held_out in GroupKFold(n_splits=n_splits).split(texts, codes, groups):
        counts = _first_word_counts((words[i] for i in train), label_names[train])
        for position, (count, share) in enumerate(grid):
            lists = _openers(counts, count, share)
            tagger = RuleBasedTagger(lists["command"], lists["question"], lists["exclamation"])
            for view, marks in views.items():
                predicted = [label_index[tagger._rule(words[i], marks[i])] for i in held_out]
                confusion = np.bincount(codes[held_out] * k + predicted, minlength=k * k).reshape(k, k)
                sums[view][position] += _macro_f1_from_confusion(confusion)
    table = pd.DataFrame(grid, columns=["min_count", "min_share"])
    for view in views:
        table[view] = sums[view] / n_splits
    table["score"] = (table["macro_f1"] + table["macro_f1_stripped"]) / 2
    candidates = table[table["score"] >= table["score"].max() - TIE_TOLERANCE]
    chosen = candidates.sort_values(["min_count", "min_share"], ascending=False).index[0]
    table["selected"] = table.index == chosen
    best = table.loc[chosen]
    tagger = RuleBasedTagger.fit(
        texts, label_names.tolist(), min_count=int(best["min_count"]), min_share=float(best["min_share"])
    )
    return tagger, table
