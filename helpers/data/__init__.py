"""Loaders for the tutorial's two labelled data sets and its hand-written challenge set.

The CSV files live in the repository's ``data/`` folder and are produced by
``python scripts/build_data.py`` (see ``data/README.md``, the datasheet).  Every loader first
checks the file's SHA-256 against ``data/SHA256SUMS`` so that a notebook never trains on a
silently edited or half-written file.

This module depends only on the standard library, numpy and pandas (no torch), so it can be
imported cheaply by the build script, the tests and every notebook.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from helpers.checks import check_int, sha256_file

SENTENCE_TYPE_LABELS: list[str] = ["statement", "question", "command", "exclamation"]
SENTIMENT_LABELS: list[str] = ["negative", "neutral", "positive"]
TASK_LABELS: dict[str, list[str]] = {
    "sentence_type": SENTENCE_TYPE_LABELS,
    "sentiment": SENTIMENT_LABELS,
}
SPLITS: tuple[str, ...] = ("train", "validation", "test")

REPOSITORY: Path = Path(__file__).resolve().parents[2]  # the folder that holds data/ and helpers/
DATA_DIR: Path = REPOSITORY / "data"
CHECKSUM_FILE = "SHA256SUMS"
SENTIMENT_FILE = "sentiment.csv"
SENTENCE_TYPES_FILE = "sentence_types.csv"
CHALLENGE_FILE = "challenge_set.csv"
AUDIT_FILE = "sentence_type_audit.csv"

SENTIMENT_COLUMNS: list[str] = [
    "text",
    "label",
    "split",
    "source",
    "rating",
    "id",
    "n_raters",
    "rating_sd",
    "ratings",
]
# sentiment.csv's rater columns (n_raters, rating_sd, ratings) are empty where the source's rater
# file does not reproduce the sentence's mean rating (see data/README.md).
RATING_RANGE: tuple[int, int] = (-4, 4)
RATING_DECIMALS = 4  # ``rating`` is the mean rounded to 4 decimals ...
RATING_SD_DECIMALS = 5  # ... and ``rating_sd`` the population SD to 5 (as in the source files)
_RATINGS_PATTERN = r"-?[0-4](?:;-?[0-4])*"  # integers in RATING_RANGE joined by ";"
SENTENCE_TYPE_COLUMNS: list[str] = ["text", "label", "split", "file_id", "genre"]
CHALLENGE_COLUMNS: list[str] = ["text", "label", "has_terminal_punctuation", "source"]

REBUILD_HINT = "Rebuild the data with `python scripts/build_data.py` (or restore it with git)."


# Successful hash checks, keyed by (absolute path, size, mtime_ns): cheap repeated loads.
_VERIFIED: set[tuple[str, int, int]] = set()
# Sentiment files whose rater columns passed `rater_problems`, keyed the same way.
_RATERS_CHECKED: set[tuple[str, int, int]] = set()


NEUTRAL_BAND = 0.5  # the sentiment label rule: a mean rating above it is positive, below -it negative


def sentiment_codes(mean_ratings) -> np.ndarray:
    """The sentiment label rule, vectorised: mean ratings (-4..+4, any shape) -> int8 codes into
    `SENTIMENT_LABELS` of that shape (0 negative, 1 neutral, 2 positive).

    Above `NEUTRAL_BAND` (0.5) is positive, below -0.5 negative, anything in between (both ends
    included) neutral: the rule ``scripts/build_data.py`` labels ``data/sentiment.csv`` with.
    TypeError for non-numeric input, ValueError for NaN or infinity (a missing rating has no label).
    """
    means = np.asarray(mean_ratings)
    if means.dtype == bool or means.dtype.kind not in "iuf":
        raise TypeError(f"mean_ratings must be numeric, got an array of dtype {means.dtype}")
    if not np.isfinite(means).all():
        raise ValueError(f"mean_ratings contains NaN or infinite values ({int((~np.isfinite(means)).sum())})")
    return (1 + (means > NEUTRAL_BAND).astype(np.int8) - (means < -NEUTRAL_BAND)).astype(np.int8)


def label_from_mean(mean_ratings) -> np.ndarray:
    """`sentiment_codes` as label strings (a scalar gives a 0-d array)."""
    return np.asarray(SENTIMENT_LABELS)[sentiment_codes(mean_ratings)]


class DataIntegrityError(RuntimeError):
    """A data file is missing, differs from ``data/SHA256SUMS`` or has inconsistent content."""


def read_checksums(path: Path) -> dict[str, str]:
    """Parse a ``sha256sum``-format file into ``{file name: hex digest}``."""
    sums: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        digest, name = line.split(maxsplit=1)
        sums[name.lstrip("*").strip()] = digest.lower()
    return sums


def _file_key(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return (str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def verify_file(name: str, data_dir: Path | None = None) -> Path:
    """Check ``data_dir/name`` against ``data_dir/SHA256SUMS`` and return its path.

    Raises :class:`DataIntegrityError` if the file or the checksum list is missing, the file is
    not listed, or its hash differs.  A successful check is remembered for this process (until
    the file's size or modification time changes).
    """
    data_dir = Path(DATA_DIR if data_dir is None else data_dir)
    path = data_dir / name
    sums_path = data_dir / CHECKSUM_FILE
    if not path.is_file():
        raise DataIntegrityError(f"Data file {path} is missing. {REBUILD_HINT}")
    key = _file_key(path)
    if key in _VERIFIED:
        return path
    if not sums_path.is_file():
        raise DataIntegrityError(
            f"Checksum list {sums_path} is missing, cannot verify {path}. {REBUILD_HINT}"
        )
    expected = read_checksums(sums_path).get(name)
    if expected is None:
        raise DataIntegrityError(f"Data file {path} is not listed in {sums_path}. {REBUILD_HINT}")
    actual = sha256_file(path)
    if actual != expected:
        raise DataIntegrityError(
            f"Data file {path} is altered: expected SHA-256 {expected} (from {sums_path}), "
            f"got {actual}. {REBUILD_HINT}"
        )
    _VERIFIED.add(key)
    return path


def repository_file(relative: str) -> Path:
    """A committed file by its path from the repository's root (e.g. "benchmarks/full_run.json"),
    found from this package, so a notebook reads it whatever its kernel's working directory
    (papermill, another folder); FileNotFoundError naming the file when it is not there."""
    path = REPOSITORY / relative
    if not path.is_file():
        raise FileNotFoundError(
            f"{relative} is not in {REPOSITORY}: this needs the repository's committed files "
            "(a git clone with `pip install -e .`)"
        )
    return path


def _check_split(split: str | None) -> None:
    if split is not None and split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}; valid splits are {', '.join(SPLITS)} (or None for all).")


def _read_csv(
    name: str,
    columns: list[str],
    dtypes: dict[str, str],
    data_dir: Path | None,
    na_columns: tuple[str, ...] = (),
) -> pd.DataFrame:
    path = verify_file(name, data_dir)
    na_values = {column: [""] for column in na_columns}  # only these columns: an empty field is NA
    frame = pd.read_csv(path, dtype=dtypes, keep_default_na=False, na_values=na_values, encoding="utf-8")
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise DataIntegrityError(f"Data file {path} lacks columns {missing}. {REBUILD_HINT}")
    return frame[columns]


def _select_split(frame: pd.DataFrame, split: str | None) -> pd.DataFrame:
    if split is not None:
        frame = frame[frame["split"] == split]
    return frame.reset_index(drop=True)


def parse_ratings(ratings: str) -> np.ndarray:
    """The individual ratings in a ``ratings`` cell (``"2;3;-1"``) as an int array; empty for ``""``."""
    return np.array([int(value) for value in ratings.split(";")] if ratings else [], dtype=np.int64)


def rater_problems(frame: pd.DataFrame) -> list[str]:
    """What is wrong with the rater columns of a sentiment frame (an empty list if nothing).

    A row either has no rater data (``ratings == ""`` and ``n_raters``, ``rating_sd`` missing) or
    ``ratings`` holds ``n_raters`` >= 1 integers in -4..+4, joined by ``;``, whose mean is
    ``rating`` (to its 4 decimals) and whose population SD is ``rating_sd`` (to its 5 decimals).
    """
    problems = []
    has = (frame["ratings"] != "").to_numpy()
    if frame.loc[~has, ["n_raters", "rating_sd"]].notna().to_numpy().any():
        problems.append("n_raters or rating_sd given without ratings")
    rows = frame[has]
    if rows[["n_raters", "rating_sd"]].isna().to_numpy().any():
        return [*problems, "ratings given without n_raters or rating_sd"]
    stored_sd = rows["rating_sd"].to_numpy(dtype=np.float64)
    if not (np.isfinite(stored_sd) & (stored_sd >= 0)).all():
        problems.append("rating_sd is negative or not finite")
    if not rows["ratings"].str.fullmatch(_RATINGS_PATTERN).all():
        return [*problems, f"ratings that are not integers in {RATING_RANGE[0]}..{RATING_RANGE[1]}"]
    if rows.empty:
        return problems
    counts = rows["ratings"].str.count(";").to_numpy() + 1
    if not (rows["n_raters"].to_numpy(dtype=np.int64) >= 1).all():
        problems.append("n_raters below 1")
    if not (rows["n_raters"].to_numpy(dtype=np.int64) == counts).all():
        problems.append("n_raters differs from the number of ratings")
    values = np.fromiter((int(v) for text in rows["ratings"] for v in text.split(";")), dtype=np.float64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    means = np.add.reduceat(values, starts) / counts
    sds = np.sqrt(np.add.reduceat((values - np.repeat(means, counts)) ** 2, starts) / counts)
    if not (np.abs(means - rows["rating"].to_numpy()) <= 0.5 * 10**-RATING_DECIMALS + 1e-8).all():
        problems.append("the mean of the ratings is not the rating")
    if not (np.abs(sds - stored_sd) <= 0.5 * 10**-RATING_SD_DECIMALS + 1e-9).all():
        problems.append("the population SD of the ratings is not rating_sd")
    return problems


def load_sentiment(split: str | None = None, data_dir: Path | None = None) -> pd.DataFrame:
    """Load the sentiment data set (VADER ground truth, Hutto & Gilbert 2014).

    Columns: ``text, label, split, source, rating, id, n_raters, rating_sd, ratings``; ``label``
    is one of :data:`SENTIMENT_LABELS`, ``rating`` the mean human rating on -4..+4, ``id`` the
    original (string) id within its source.  ``n_raters`` (nullable ``Int64``) is the number of
    people who rated the sentence, ``rating_sd`` the population SD of their ratings and
    ``ratings`` the individual ratings joined by ``;`` (:func:`parse_ratings` splits them); the
    three are empty (``<NA>``, ``NaN``, ``""``) for the few tweets whose published individual
    ratings do not reproduce their mean.  ``split`` selects one of :data:`SPLITS`; ``None``
    returns all.  Raises :class:`DataIntegrityError` if the rater columns are inconsistent.
    """
    _check_split(split)
    dtypes = {
        "text": "str",
        "label": "str",
        "split": "str",
        "source": "str",
        "rating": "float64",
        "id": "str",
        "n_raters": "Int64",
        "rating_sd": "float64",
        "ratings": "str",
    }
    frame = _read_csv(
        SENTIMENT_FILE, SENTIMENT_COLUMNS, dtypes, data_dir, na_columns=("n_raters", "rating_sd")
    )
    key = _file_key(Path(DATA_DIR if data_dir is None else data_dir) / SENTIMENT_FILE)
    if key not in _RATERS_CHECKED:
        problems = rater_problems(frame)
        if problems:
            raise DataIntegrityError(f"{SENTIMENT_FILE}: {'; '.join(problems)}. {REBUILD_HINT}")
        _RATERS_CHECKED.add(key)
    return _select_split(frame, split)


def load_sentence_types(split: str | None = None, data_dir: Path | None = None) -> pd.DataFrame:
    """Load the sentence-type data set built from the tagged Brown corpus.

    Columns: ``text, label, split, file_id, genre``; ``label`` is one of
    :data:`SENTENCE_TYPE_LABELS`.  Splits are by Brown file, so no file occurs in two splits.
    """
    _check_split(split)
    dtypes = {"text": "str", "label": "str", "split": "str", "file_id": "str", "genre": "str"}
    return _select_split(_read_csv(SENTENCE_TYPES_FILE, SENTENCE_TYPE_COLUMNS, dtypes, data_dir), split)


def load_challenge_set(data_dir: Path | None = None) -> pd.DataFrame:
    """Load the hand-written, evaluation-only sentence-type challenge set.

    Columns: ``text, label, has_terminal_punctuation, source`` (``has_terminal_punctuation``
    is a bool).  Everyday modern sentences, many without the punctuation cue.
    """
    dtypes = {"text": "str", "label": "str", "has_terminal_punctuation": "bool", "source": "str"}
    return _read_csv(CHALLENGE_FILE, CHALLENGE_COLUMNS, dtypes, data_dir).reset_index(drop=True)


def load_sentence_type_audit(data_dir: Path | None = None) -> pd.DataFrame:
    """Load the hand-judged sample of sentence-type silver labels (50 per label).

    Columns: ``text, silver_label, verdict, true_label, note``; ``verdict`` is ``correct`` or
    ``wrong``, ``true_label`` the judged type. Use it to estimate how noisy the silver labels are.
    """
    dtypes = {name: "str" for name in ["text", "silver_label", "verdict", "true_label", "note"]}
    columns = list(dtypes)
    return _read_csv(AUDIT_FILE, columns, dtypes, data_dir).reset_index(drop=True)


def probe_split(frame: pd.DataFrame, train_size: int, strata: list[str], seed: int = 0) -> pd.DataFrame:
    """A seeded subset of about `train_size` training rows, stratified by `strata`, plus all validation rows.

    The notebooks probe and compare heads on these subsets to stay within their time budget; using
    the same subsets everywhere also lets them share cached embeddings.
    """
    check_int("train_size", train_size, 1)
    train = frame[frame["split"] == "train"]
    fraction = min(1.0, train_size / len(train))
    subset = train.groupby(strata).sample(frac=fraction, random_state=seed)
    return pd.concat([subset, frame[frame["split"] == "validation"]]).reset_index(drop=True)
