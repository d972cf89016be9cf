"""The committed data sets: schema, splits, label rules, integrity checks and reproducibility."""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import data as hd
from helpers.punctuation import has_terminal_punctuation, strip_terminal_punctuation
from tests.build_script import load_build_script

ROOT = Path(__file__).resolve().parent.parent
CSV_FILES = [hd.SENTIMENT_FILE, hd.SENTENCE_TYPES_FILE, hd.CHALLENGE_FILE, hd.AUDIT_FILE]


bd = load_build_script()


def tokens(line: str):
    return bd.parse_tagged_line(line)


@pytest.fixture(scope="module")
def sentiment() -> pd.DataFrame:
    return hd.load_sentiment()


@pytest.fixture(scope="module")
def types() -> pd.DataFrame:
    return hd.load_sentence_types()


@pytest.fixture(scope="module")
def challenge() -> pd.DataFrame:
    return hd.load_challenge_set()


@pytest.fixture
def data_copy(tmp_path: Path) -> Path:
    """A private copy of data/ that tests may damage."""
    for name in [*CSV_FILES, hd.CHECKSUM_FILE]:
        shutil.copy(hd.DATA_DIR / name, tmp_path / name)
    return tmp_path


# ---------------------------------------------------------------- constants and schema


def test_data_module_does_not_import_torch():
    code = "import sys, helpers.data; assert 'torch' not in sys.modules, 'helpers.data imports torch'"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_label_constants():
    assert hd.SENTENCE_TYPE_LABELS == ["statement", "question", "command", "exclamation"]
    assert hd.SENTIMENT_LABELS == ["negative", "neutral", "positive"]
    assert list(hd.TASK_LABELS) == ["sentence_type", "sentiment"]
    assert hd.TASK_LABELS["sentiment"] is hd.SENTIMENT_LABELS
    assert hd.SPLITS == ("train", "validation", "test")
    assert hd.DATA_DIR == ROOT / "data"


def test_sentiment_schema(sentiment):
    old_columns = ["text", "label", "split", "source", "rating", "id"]  # what existing callers read
    assert list(sentiment.columns) == [*old_columns, "n_raters", "rating_sd", "ratings"]
    for column in ["text", "label", "split", "source", "id", "ratings"]:
        assert pd.api.types.is_string_dtype(sentiment[column]), column
        assert isinstance(sentiment[column].iloc[0], str)
    assert sentiment["rating"].dtype == "float64"
    assert sentiment["rating"].between(-4, 4).all()
    assert set(sentiment["label"]) == set(hd.SENTIMENT_LABELS)
    assert set(sentiment["source"]) == {"tweet", "movie_review", "nyt_editorial", "product_review"}
    assert (sentiment["text"].str.strip() == sentiment["text"]).all() and (sentiment["text"] != "").all()
    assert not sentiment.duplicated(["source", "id"]).any()
    assert not sentiment["text"].str.contains("&amp;").any()
    assert sentiment["n_raters"].dtype == "Int64" and sentiment["rating_sd"].dtype == "float64"


def test_sentiment_rater_columns(sentiment):
    rated = sentiment[sentiment["ratings"] != ""]
    unrated = sentiment[sentiment["ratings"] == ""]
    # Only the 199 tweets whose published ratings do not reproduce their mean lack rater data.
    assert len(unrated) == 199 and set(unrated["source"]) == {"tweet"}
    assert unrated["n_raters"].isna().all() and unrated["rating_sd"].isna().all()
    assert rated["n_raters"].notna().all() and (rated["n_raters"] >= 1).all()
    assert np.isfinite(rated["rating_sd"]).all() and (rated["rating_sd"] >= 0).all()
    by_source = rated.groupby("source")["n_raters"].agg(["min", "median", "max"])
    assert by_source.loc["nyt_editorial"].tolist() == [20, 20, 20]
    assert by_source.loc["product_review"].tolist() == [20, 20, 20]
    assert by_source.loc["movie_review", "min"] == 15 and by_source.loc["tweet", "max"] == 99
    mismatched_mean = mismatched_sd = sample_sd_fits = 0
    for row in rated.itertuples(index=False):
        values = hd.parse_ratings(row.ratings)
        assert len(values) == row.n_raters
        assert values.min() >= -4 and values.max() <= 4
        mismatched_mean += abs(values.mean() - row.rating) > 0.5e-4 + 1e-9  # rating: 4 decimals
        mismatched_sd += abs(statistics.pstdev(values.tolist()) - row.rating_sd) > 0.5e-5 + 1e-9
        sample_sd_fits += abs(statistics.stdev(values.tolist()) - row.rating_sd) <= 0.5e-5 + 1e-9
    assert mismatched_mean == 0 and mismatched_sd == 0
    # rating_sd is the population SD: the sample SD fits only where every rater agreed (SD 0).
    assert sample_sd_fits == (rated["rating_sd"] == 0).sum()


def test_parse_ratings():
    assert hd.parse_ratings("2;-4;0").tolist() == [2, -4, 0]
    assert hd.parse_ratings("").tolist() == []
    assert hd.parse_ratings("3").dtype == np.int64


def test_sentence_types_schema(types):
    assert list(types.columns) == ["text", "label", "split", "file_id", "genre"]
    for column in types.columns:
        assert pd.api.types.is_string_dtype(types[column]), column
    assert set(types["label"]) == set(hd.SENTENCE_TYPE_LABELS)
    assert types["file_id"].str.fullmatch(r"c[a-r]\d\d").all()
    assert (types["genre"] == types["file_id"].str[1].map(bd.BROWN_GENRES)).all()
    assert (types["text"].map(lambda t: bd.word_count(t.split())) >= bd.MIN_WORDS).all()
    assert not types["text"].str.contains("``|''").any(), "Brown quote tokens left in the text"


def test_challenge_set(challenge):
    assert list(challenge.columns) == ["text", "label", "has_terminal_punctuation", "source"]
    assert challenge["has_terminal_punctuation"].dtype == bool
    assert len(challenge) >= 120
    counts = challenge["label"].value_counts()
    assert set(counts.index) == set(hd.SENTENCE_TYPE_LABELS) and counts.min() >= 25
    assert (challenge["source"] == "authored by this project").all()
    assert (challenge["text"].map(has_terminal_punctuation) == challenge["has_terminal_punctuation"]).all()
    assert (~challenge["has_terminal_punctuation"]).mean() >= 0.25
    questions = challenge[challenge["label"] == "question"]["text"]
    commands = challenge[challenge["label"] == "command"]["text"]
    assert (~questions.str.endswith("?")).sum() >= 5
    assert commands.str.endswith("!").sum() >= 3
    assert not challenge["text"].duplicated().any()


# ---------------------------------------------------------------- splits


@pytest.mark.parametrize("name", ["sentiment", "types"])
def test_split_sizes_and_classes(name, request):
    frame = request.getfixturevalue(name)
    assert set(frame["split"]) == set(hd.SPLITS)
    shares = frame["split"].value_counts(normalize=True)
    for split, target in bd.SPLIT_FRACTIONS.items():
        assert abs(shares[split] - target) < 0.02, (split, shares[split])
    per_split = pd.crosstab(frame["label"], frame["split"])
    assert (per_split > 0).all().all(), per_split
    class_shares = per_split / per_split.sum()
    assert (class_shares.max(axis=1) - class_shares.min(axis=1)).max() < 0.05, class_shares


@pytest.mark.parametrize("name", ["sentiment", "types"])
def test_no_text_in_two_splits(name, request):
    frame = request.getfixturevalue(name)
    assert not frame["text"].duplicated().any()
    assert (frame.groupby("text")["split"].nunique() == 1).all()


def test_no_brown_file_in_two_splits(types):
    assert (types.groupby("file_id")["split"].nunique() == 1).all()


def test_sentiment_split_is_stratified(sentiment):
    shares = pd.crosstab([sentiment["source"], sentiment["label"]], sentiment["split"], normalize="index")
    assert (shares["test"] - 0.1).abs().max() < 0.02


def test_loader_split_filter(sentiment):
    test = hd.load_sentiment("test")
    assert set(test["split"]) == {"test"}
    assert len(test) == (sentiment["split"] == "test").sum()
    assert list(test.index) == list(range(len(test)))
    assert set(hd.load_sentence_types(split="validation")["split"]) == {"validation"}
    with pytest.raises(ValueError, match="train, validation, test"):
        hd.load_sentiment("dev")


def test_split_functions_are_deterministic():
    keys = [f"k{i}" for i in range(1000)]
    strata = ["a" if i % 3 else "b" for i in range(1000)]
    first = bd.stratified_split(keys, strata)
    assert first == bd.stratified_split(keys, strata)
    assert first != bd.stratified_split(keys, strata, seed=99)
    assert abs(first.count("train") / 1000 - 0.8) < 0.01
    groups = [f"g{i // 10}" for i in range(1000)]
    labels = ["x" if i % 4 else "y" for i in range(1000)]
    assigned = bd.group_split(groups, labels)
    assert pd.DataFrame({"g": groups, "s": assigned}).groupby("g")["s"].nunique().max() == 1
    assert set(assigned) == set(hd.SPLITS)


# ---------------------------------------------------------------- label rules


def test_sentiment_labels_follow_rating(sentiment):
    expected = sentiment["rating"].map(
        lambda r: "positive" if r > 0.5 else "negative" if r < -0.5 else "neutral"
    )
    assert (sentiment["label"] == expected).all()


@pytest.mark.parametrize(
    ("rating", "label"),
    [(0.5, "neutral"), (0.5001, "positive"), (-0.5, "neutral"), (-0.5001, "negative"), (3.9, "positive")],
)
def test_sentiment_label_rule(rating, label):
    assert hd.label_from_mean(rating) == label


def test_clean_snippet():
    assert bd.clean_snippet("  A &amp; B &lt;3 &gt;:( ") == "A & B <3 >:("
    assert bd.clean_snippet("AT&T rocks ''really''") == "AT&T rocks ''really''"
    assert bd.clean_snippet("Lord &amp;amp; Taylor") == "Lord & Taylor"


def test_dedupe_texts():
    frame = pd.DataFrame({"text": ["a", "a", "b", "b", "c"], "label": ["x", "x", "x", "y", "z"]})
    kept, stats = bd.dedupe_texts(frame)
    assert kept["text"].tolist() == ["a", "c"]
    assert stats == {
        "duplicated_texts_agreeing": 1,
        "extra_copies_removed": 1,
        "conflicting_texts": 1,
        "conflicting_rows_removed": 2,
    }


@pytest.mark.parametrize(
    ("line", "label"),
    [
        ("Where/wrb is/bez it/pps ?/. ?/.", "question"),
        ("``/`` Is/bez it/pps true/jj ''/'' ?/. ?/.", "question"),
        ("Close/vb the/at door/nn ./.", "command"),
        ("Please/vb sit/vb down/rp ./.", "command"),
        ("``/`` Oh/uh ,/, be/be quiet/jj !/. !/.", "command"),
        ("Don't/do* touch/vb it/ppo !/. !/.", "command"),
        ("Let's/vb+ppo go/vb ./.", "command"),
        ("Now/rb ,/, do/do it/ppo again/rb ./.", "command"),
        ("``/`` Get/vb in/rp ''/'' ./.", "command"),
        ("``/`` Sit/vb down/rp ''/'' ,/, he/pps said/vbd ./.", "statement"),
        ("Leave/vb it/ppo ''/'' ,/, she/pps added/vbd ./.", "statement"),
        ("Meet/vb-tl the/at-tl Press/nn-tl is/bez on/in ./.", "statement"),
        ("What/wdt a/at day/nn !/. !/.", "exclamation"),
        ("He/pps won/vbd !/. !/.", "exclamation"),
        ("He/pps won/vbd ./.", "statement"),
        ("He/pps won/vbd ;/. ;/.", None),
        ("He/pps won/vbd :/. :/.", None),
        ("He/pps won/vbd", None),
    ],
)
def test_sentence_type_rule(line, label):
    assert bd.sentence_type(tokens(line)) == label


def test_parse_and_headlines():
    assert tokens("Why/wrb ?/. ?/.") == [("Why", "wrb"), ("?", ".")]
    assert tokens("1/2/cd inch/nn ./.") == [("1/2", "cd"), ("inch", "nn"), (".", ".")]
    assert bd.is_headline(tokens("Ask/vb-hl jail/nn-hl deputies/nns-hl"))
    assert not bd.is_headline(tokens("Ask/vb the/at jury/nn-tl ./."))
    assert bd.base_tag("nn-tl-hl") == "nn" and bd.base_tag("---hl") == "--"
    with pytest.raises(ValueError):
        tokens("word_without_tag ./.")


@pytest.mark.parametrize(
    ("words", "text"),
    [
        ("The jury said `` no evidence '' .", 'The jury said "no evidence."'),
        ("`` Only a handful '' , the jury said .", '"Only a handful," the jury said.'),
        ("`` Get in '' .", '"Get in."'),
        ("`` Did you go '' ?", '"Did you go?"'),
        ("Do n't go ( now ) !", "Don't go (now)!"),
        ("It costs $ 5 -- or 10 % more ; fine : yes .", "It costs $5 -- or 10% more; fine: yes."),
        ("He lives in Ky. .", "He lives in Ky."),
        ("the term ' saline water ' includes it .", "the term 'saline water' includes it."),
        ("`` You stunk ' '' .", '"You stunk.\'"'),
        ("I 'll say it 's John's .", "I'll say it's John's."),
        ("the upper 12'' '' bar `` A '' .", 'the upper 12" bar "A."'),
    ],
)
def test_detokenize(words, text):
    assert bd.detokenize(words.split()) == text


def test_strip_terminal_punctuation():
    assert strip_terminal_punctuation('He asked, "Why?"') == 'He asked, "Why'
    assert strip_terminal_punctuation("Stop it!! ") == "Stop it"
    assert strip_terminal_punctuation("no punctuation") == "no punctuation"
    assert strip_terminal_punctuation("Wait...") == "Wait"
    assert has_terminal_punctuation('"Get in."') and not has_terminal_punctuation("get in")


# ---------------------------------------------------------------- audit


def test_audit_covers_the_sample(types):
    audit = pd.read_csv(hd.DATA_DIR / hd.AUDIT_FILE, dtype=str, keep_default_na=False)
    assert list(audit.columns) == bd.AUDIT_COLUMNS
    sample = bd.draw_audit_sample(types)
    assert len(sample) == 4 * bd.AUDIT_PER_CLASS == 200
    assert set(sample["text"]) == set(audit["text"]) and len(audit) == 200
    merged = sample.merge(audit, on="text", suffixes=("", "_audit"))
    assert (merged["silver_label"] == merged["silver_label_audit"]).all()
    assert set(audit["verdict"]) <= {"correct", "wrong"}
    assert ((audit["verdict"] == "correct") == (audit["true_label"] == audit["silver_label"])).all()


def test_audit_precision_and_missing_verdict(types, tmp_path):
    sample = bd.draw_audit_sample(types)
    precision, _ = bd.audit_precision(sample, hd.DATA_DIR / hd.AUDIT_FILE, tmp_path)
    assert list(precision.index) == hd.SENTENCE_TYPE_LABELS
    assert precision["precision"].between(0, 1).all()
    extra = pd.DataFrame({"text": ["A sentence nobody judged."], "silver_label": ["statement"]})
    with pytest.raises(SystemExit, match="lack a valid verdict"):
        bd.audit_precision(pd.concat([sample, extra]), hd.DATA_DIR / hd.AUDIT_FILE, tmp_path)
    todo = pd.read_csv(tmp_path / "sentence_type_audit.todo.csv")
    assert todo["text"].tolist() == ["A sentence nobody judged."]


# ---------------------------------------------------------------- integrity


def test_checksum_list_covers_the_csvs():
    sums = hd.read_checksums(hd.DATA_DIR / hd.CHECKSUM_FILE)
    assert sorted(sums) == sorted(CSV_FILES)
    for name, digest in sums.items():
        assert hd.sha256_file(hd.DATA_DIR / name) == digest, name


def test_tampered_file_is_detected(data_copy, monkeypatch):
    monkeypatch.setattr(hd, "DATA_DIR", data_copy)
    assert len(hd.load_sentiment()) > 0  # the intact copy loads (and is cached) ...
    with open(data_copy / hd.SENTIMENT_FILE, "a", encoding="utf-8") as handle:
        handle.write("I was not in the original,neutral,train,tweet,0.0,x1\n")
    with pytest.raises(hd.DataIntegrityError) as error:  # ... and the cache notices the change
        hd.load_sentiment()
    message = str(error.value)
    assert hd.SENTIMENT_FILE in message and "expected SHA-256" in message
    assert "scripts/build_data.py" in message


def test_missing_file_is_detected(data_copy):
    (data_copy / hd.SENTENCE_TYPES_FILE).unlink()
    with pytest.raises(hd.DataIntegrityError, match="missing.*build_data.py"):
        hd.load_sentence_types(data_dir=data_copy)
    (data_copy / hd.CHECKSUM_FILE).unlink()
    with pytest.raises(hd.DataIntegrityError, match="SHA256SUMS"):
        hd.load_challenge_set(data_dir=data_copy)
    assert issubclass(hd.DataIntegrityError, RuntimeError)


def _rater_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "rating": [0.5, 2.0, -1.0],
            "n_raters": pd.array([4, 2, pd.NA], dtype="Int64"),
            "rating_sd": [1.5, 0.0, np.nan],
            "ratings": ["-1;2;-1;2", "2;2", ""],
        }
    )


@pytest.mark.parametrize(
    ("column", "row", "value", "problem"),
    [
        (None, None, None, None),
        ("ratings", 0, "-1;2;-1;5", "not integers in -4..4"),
        ("ratings", 0, "-1;2;x;2", "not integers in -4..4"),
        ("ratings", 0, "-1;2;-1;1", "mean of the ratings is not the rating"),
        ("rating", 1, 2.0002, "mean of the ratings is not the rating"),
        ("rating_sd", 0, 1.7321, "population SD"),  # the sample SD of -1, 2, -1, 2
        ("rating_sd", 0, -1.5, "negative or not finite"),
        ("rating_sd", 0, np.inf, "negative or not finite"),
        ("n_raters", 0, 3, "n_raters differs"),
        ("n_raters", 0, 0, "n_raters below 1"),
        ("n_raters", 2, 4, "given without ratings"),
        ("rating_sd", 1, np.nan, "ratings given without"),
    ],
)
def test_rater_problems(column, row, value, problem):
    frame = _rater_frame()
    if column is not None:
        frame.loc[row, column] = value
    problems = hd.rater_problems(frame)
    if problem is None:
        assert problems == []
    else:
        assert any(problem in text for text in problems), problems


def test_loader_rejects_inconsistent_rater_columns(data_copy):
    """A file with a valid checksum but ratings that contradict its mean is refused where it enters."""
    path = data_copy / hd.SENTIMENT_FILE
    lines = path.read_text(encoding="utf-8").split("\n")
    row = next(i for i, line in enumerate(lines[1:], start=1) if line.endswith(";4"))
    lines[row] = lines[row][: -len("4")] + "3"  # one rater's 4 becomes a 3: mean and SD no longer fit
    path.write_text("\n".join(lines), encoding="utf-8", newline="\n")
    sums = hd.read_checksums(data_copy / hd.CHECKSUM_FILE)
    sums[hd.SENTIMENT_FILE] = hd.sha256_file(path)
    (data_copy / hd.CHECKSUM_FILE).write_text("".join(f"{d}  {n}\n" for n, d in sums.items()))
    with pytest.raises(hd.DataIntegrityError, match="mean of the ratings is not the rating"):
        hd.load_sentiment(data_dir=data_copy)


def _rater_line(ident: str, ratings: list[int], sd: float | None = None, mean: float | None = None) -> str:
    mean = statistics.fmean(ratings) if mean is None else mean
    sd = round(statistics.pstdev(ratings), 5) if sd is None else sd
    return f"{ident}\t{mean:.9f}\t{sd}\t[{', '.join(map(str, ratings))}]"


def test_parse_rater_file():
    lines = [_rater_line("1_1", [1, 2, 2, -4]), _rater_line("1_2", [0] * 20)]
    raw = ("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8")  # BOM and CRLF, like the Amazon file
    frame = bd.parse_rater_file("x", raw)
    assert frame["id"].tolist() == ["1_1", "1_2"]
    assert frame["n_raters"].tolist() == [4, 20]
    assert frame["ratings"].tolist() == ["1;2;2;-4", ";".join(["0"] * 20)]
    assert frame["rating_sd"].tolist() == [round(statistics.pstdev([1, 2, 2, -4]), 5), 0.0]
    assert frame["rater_mean"].tolist() == [0.25, 0.0]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (_rater_line("1", [1, 2, 3], sd=round(statistics.stdev([1, 2, 3]), 5)), "population SD"),
        (_rater_line("1", [1, 2, 3], mean=2.1), "not the stated mean"),
        (_rater_line("1", [1, 2, 5]), "outside -4..\\+4"),
        ("1\t2.0\t0.0\t[2, 2.5]", "integer ratings"),
        ("1\t2.0\t[2, 2]", "integer ratings"),
        (_rater_line("1", [2]) + "\n" + _rater_line("1", [3]), "duplicate ids"),
    ],
)
def test_parse_rater_file_rejects(line, message):
    with pytest.raises(ValueError, match=message):
        bd.parse_rater_file("x", line.encode("utf-8"))


def test_sentiment_csv_round_trips_byte_for_byte(sentiment, tmp_path):
    """Loading and writing the committed file again gives the same bytes (types and empty cells survive)."""
    bd.write_csv(sentiment, tmp_path / hd.SENTIMENT_FILE)
    assert (tmp_path / hd.SENTIMENT_FILE).read_bytes() == (hd.DATA_DIR / hd.SENTIMENT_FILE).read_bytes()


def test_archive_checksum_mismatch(tmp_path):
    (tmp_path / bd.BROWN.filename).write_bytes(b"not the corpus")
    with pytest.raises(bd.ChecksumError) as error:
        bd.ensure_archive(bd.BROWN, tmp_path)
    assert bd.BROWN.filename in str(error.value) and bd.BROWN.sha256 in str(error.value)


def test_rebuild_is_byte_identical():
    missing = [a.filename for a in bd.ARCHIVES if not (bd.DEFAULT_CACHE_DIR / a.filename).is_file()]
    if missing:
        pytest.skip(
            f"source archives not in {bd.DEFAULT_CACHE_DIR} ({', '.join(missing)}); "
            "run `python scripts/build_data.py` once to fetch them"
        )
    assert bd.check(bd.DEFAULT_CACHE_DIR) == []


def test_the_audit_loads_and_agrees_with_its_verdicts():
    audit = hd.load_sentence_type_audit()
    assert list(audit.columns) == ["text", "silver_label", "verdict", "true_label", "note"]
    assert set(audit["verdict"]) == {"correct", "wrong"}
    assert (audit["silver_label"].value_counts() == 50).all()
    assert ((audit["verdict"] == "correct") == (audit["silver_label"] == audit["true_label"])).all()
