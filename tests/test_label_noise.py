"""helpers.analysis.label_noise: the label rule, rater resampling, the label-noise ceiling and error bins."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest
from sklearn.metrics import f1_score

from helpers.analysis import label_noise as ln
from helpers.data import NEUTRAL_BAND, SENTIMENT_LABELS, label_from_mean, load_sentiment, parse_ratings
from tests.build_script import load_build_script

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ["movie_review", "nyt_editorial", "product_review", "tweet"]


@pytest.fixture(scope="module")
def sentiment() -> pd.DataFrame:
    return load_sentiment()


@pytest.fixture(scope="module")
def test_split() -> pd.DataFrame:
    return load_sentiment("test")


def _rated(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["ratings"] != ""].reset_index(drop=True)


def _panels(frame: pd.DataFrame) -> list[np.ndarray]:
    return [parse_ratings(text) for text in frame["ratings"]]


def _unanimous_frame() -> pd.DataFrame:
    """Made-up sentences whose raters all give the same rating, plus one without ratings."""
    rows = [
        ("tweet", [-3] * 20),
        ("tweet", [0] * 20),
        ("tweet", [2] * 25),
        ("movie_review", [-1] * 18),
        ("movie_review", [1] * 18),
        ("movie_review", [4] * 15),
        ("movie_review", []),  # no individual ratings: skipped
    ]
    return pd.DataFrame(
        {
            "source": [source for source, _ in rows],
            "ratings": [";".join(map(str, ratings)) for _, ratings in rows],
            "label": [str(label_from_mean(np.mean(r) if r else 0.0)) for _, r in rows],
        }
    )


# --- the label rule -------------------------------------------------------------------------


def test_the_build_labels_with_the_one_rule():
    assert load_build_script().label_from_mean is label_from_mean


@pytest.mark.parametrize(
    ("rating", "label"),
    [(-4.0, "negative"), (-0.5000001, "negative"), (-0.5, "neutral"), (0.0, "neutral"), (0.5, "neutral"),
     (0.5000001, "positive"), (4.0, "positive")],
)  # fmt: skip
def test_label_from_mean_has_inclusive_neutral_edges(rating, label):
    assert label_from_mean(rating) == label
    assert label_from_mean([rating, rating]).tolist() == [label] * 2


def test_label_from_mean_keeps_shape():
    means = np.array([[-1.0, 0.5], [0.51, -0.5]])
    assert label_from_mean(means).tolist() == [["negative", "neutral"], ["positive", "neutral"]]


def test_label_rule_reproduces_every_committed_label(sentiment):
    # The build labels the stored (rounded) mean `rating`; the rule must give the same label...
    assert (label_from_mean(sentiment["rating"].to_numpy()) == sentiment["label"].to_numpy()).all()
    # ... and so does the mean of the parsed individual ratings, for every sentence that has them
    # (checked first: no exception; 321 of these means lie exactly on +-0.5 and are neutral). The
    # 199 tweets without ratings are the ones whose published ratings do not give their mean.
    rated = _rated(sentiment)
    assert len(rated) == 23410 and len(sentiment) - len(rated) == 199
    means = np.array([panel.mean() for panel in _panels(rated)])
    assert (label_from_mean(means) == rated["label"].to_numpy()).all()
    assert (np.abs(means) == NEUTRAL_BAND).sum() > 0  # the inclusive edge is exercised


# --- resampling -----------------------------------------------------------------------------


def test_bootstrap_shape_and_values(test_split):
    rated = _rated(test_split)
    boot = ln.bootstrap_rater_labels(_panels(rated), n_bootstrap=7, seed=3)
    assert boot.shape == (7, len(rated))
    assert set(np.unique(boot)) <= set(SENTIMENT_LABELS)


def test_unanimous_raters_never_flip(test_split):
    panels = [np.full(20, -2), np.zeros(15, dtype=int), np.full(99, 1), np.array([3])]
    boot = ln.bootstrap_rater_labels(panels, n_bootstrap=50, seed=0)
    labels = ["negative", "neutral", "positive", "positive"]
    assert (boot == np.array(labels)[None, :]).all()
    assert (ln.label_flip_rate(boot, labels) == 0).all()
    # the same on real sentences whose raters all agreed
    rated = _rated(test_split)
    flips = ln.label_flip_rate(ln.bootstrap_rater_labels(_panels(rated), 50, 0), rated["label"])
    unanimous = rated["rating_sd"].to_numpy() == 0
    assert unanimous.any() and (flips[unanimous] == 0).all()


def test_resampling_draws_a_sentences_own_raters_with_replacement():
    # Two raters, 0 and 2 (mean 1, positive): a resample of two has mean 0, 1 or 2 with
    # probabilities 1/4, 1/2, 1/4, so the label flips to neutral a quarter of the time.
    boot = ln.bootstrap_rater_labels([np.array([0, 2]), np.array([-4, 4, 4])], n_bootstrap=4000, seed=1)
    flips = ln.label_flip_rate(boot, ["positive", "positive"])
    assert abs(flips[0] - 0.25) < 0.03
    # [-4, 4, 4] (mean 4/3): the resampled mean is below -0.5 only when -4 is drawn 2 or 3 times,
    # probability 7/27; it is never neutral (sums are -12, -4, 4 or 12).
    assert set(np.unique(boot[:, 1])) == {"negative", "positive"}
    assert abs(flips[1] - 7 / 27) < 0.03


def test_bootstrap_is_deterministic_under_a_seed(test_split):
    panels = _panels(_rated(test_split))
    first = ln.bootstrap_rater_labels(panels, 20, seed=5)
    assert np.array_equal(first, ln.bootstrap_rater_labels(panels, 20, seed=5))
    assert not np.array_equal(first, ln.bootstrap_rater_labels(panels, 20, seed=6))
    ceiling = ln.label_noise_ceiling(test_split, n_bootstrap=20, seed=5)
    pd.testing.assert_frame_equal(ceiling, ln.label_noise_ceiling(test_split, n_bootstrap=20, seed=5))


# --- the ceiling ----------------------------------------------------------------------------


def test_ceiling_is_one_when_raters_all_agree():
    table = ln.label_noise_ceiling(_unanimous_frame(), n_bootstrap=30, seed=0)
    assert list(table.index) == ["all", "movie_review", "tweet"]
    assert (table[["macro_f1", "ci_low", "ci_high", "accuracy"]] == 1.0).all().all()
    assert table["n_sentences"].tolist() == [6, 3, 3]
    assert table["n_skipped"].tolist() == [1, 1, 0]


def test_ceiling_on_the_test_split(test_split):
    table = ln.label_noise_ceiling(test_split, n_bootstrap=100, seed=0)
    assert list(table.index) == ["all", *SOURCES] and table.index.name == "source"
    assert list(table.columns) == ["macro_f1", "ci_low", "ci_high", "accuracy", "n_sentences", "n_skipped"]
    assert table.loc["all", "n_skipped"] == 20 == table.loc["tweet", "n_skipped"]
    assert table.loc["all", "n_sentences"] + 20 == len(test_split)
    assert table.loc[SOURCES, "n_sentences"].sum() == table.loc["all", "n_sentences"]
    assert (table["ci_low"] <= table["macro_f1"]).all() and (table["macro_f1"] <= table["ci_high"]).all()
    # labels are reliable but not perfectly so (about 0.94 overall when this test was written)
    assert 0.85 < table.loc["all", "macro_f1"] < 0.99
    assert ln.label_noise_ceiling(test_split, n_bootstrap=5, by=None).index.tolist() == ["all"]


def test_panels_agree_fully_when_raters_do():
    table = ln.panel_agreement(_unanimous_frame(), n_bootstrap=20, seed=0)
    assert list(table.index) == ["two resampled panels", "two half-panels"]
    assert (table[["macro_f1", "ci_low", "ci_high", "accuracy"]] == 1.0).all().all()


def test_half_panels_are_disjoint_and_resampled_panels_independent():
    # one rater says +4, the other -4: disjoint halves always disagree; resampled panels sometimes agree
    frame = pd.DataFrame({"ratings": ["4;-4"] * 50, "label": ["neutral"] * 50})
    table = ln.panel_agreement(frame, n_bootstrap=40, seed=1)
    assert table.loc["two half-panels", "accuracy"] == 0.0
    assert 0.2 < table.loc["two resampled panels", "accuracy"] < 0.8


def test_panel_agreement_is_below_the_resampled_ceiling(test_split):
    panels = ln.panel_agreement(test_split, n_bootstrap=50, seed=0)["macro_f1"]
    ceiling = ln.label_noise_ceiling(test_split, n_bootstrap=50, seed=0, by=None).loc["all", "macro_f1"]
    # resampled panels scored against the mean they were drawn from agree more than two panels do,
    # and half-size panels less than full-size ones (0.94 > 0.92 > 0.88 when this test was written)
    assert ceiling > panels["two resampled panels"] > panels["two half-panels"]


def test_ceiling_is_sklearns_macro_f1_of_the_resampled_labels(test_split):
    frame = test_split.iloc[::7]  # a smaller frame, rows with and without ratings
    rated = _rated(frame)
    boot = ln.bootstrap_rater_labels(_panels(rated), n_bootstrap=25, seed=2)
    scores = [f1_score(rated["label"], row, average="macro") for row in boot]
    table = ln.label_noise_ceiling(frame, n_bootstrap=25, seed=2)
    assert table.loc["all", "macro_f1"] == pytest.approx(np.mean(scores), abs=1e-12)
    assert table.loc["all", "ci_low"] == pytest.approx(np.percentile(scores, 2.5), abs=1e-12)
    assert table.loc["all", "ci_high"] == pytest.approx(np.percentile(scores, 97.5), abs=1e-12)
    tweets = (rated["source"] == "tweet").to_numpy()
    tweet_scores = [f1_score(rated["label"][tweets], row[tweets], average="macro") for row in boot]
    assert table.loc["tweet", "macro_f1"] == pytest.approx(np.mean(tweet_scores), abs=1e-12)


def test_error_rate_by_disagreement_bins_and_wilson_intervals():
    rng = np.random.default_rng(0)
    sd = rng.uniform(0, 2, size=400)
    correct = rng.random(400) > sd / 3  # more errors where raters disagree more
    table = ln.error_rate_by_disagreement(sd, correct, n_bins=4)
    assert len(table) == 4 and table["n"].sum() == 400
    assert table["errors"].sum() == int((~correct).sum())
    assert table["sd_low"].iloc[0] == sd.min() and table["sd_high"].iloc[-1] == sd.max()
    assert (table["sd_low"].to_numpy()[1:] == table["sd_high"].to_numpy()[:-1]).all()
    assert ((table["ci_low"] <= table["error_rate"]) & (table["error_rate"] <= table["ci_high"])).all()
    assert table["error_rate"].iloc[-1] > table["error_rate"].iloc[0]
    first = table.iloc[0]
    ci = binomtest(int(first["errors"]), int(first["n"])).proportion_ci(method="wilson")
    assert (first["ci_low"], first["ci_high"]) == pytest.approx((ci.low, ci.high))


def test_error_rate_bins_with_ties():
    # Equal SDs share a bin; duplicate quantile edges are dropped, so fewer bins come back.
    sd = np.array([0.0] * 6 + [1.0, 2.0])
    correct = np.array([True] * 6 + [False, True])
    table = ln.error_rate_by_disagreement(sd, correct, n_bins=4)
    assert table["n"].sum() == 8 and len(table) < 4
    assert table.iloc[0]["n"] == 6 and table.iloc[0]["error_rate"] == 0.0
    assert ln.error_rate_by_disagreement(np.ones(5), np.ones(5, dtype=bool))["n"].tolist() == [5]


def test_model_errors_against_flip_rate_on_real_sd(test_split):
    rated = _rated(test_split)
    flips = ln.label_flip_rate(ln.bootstrap_rater_labels(_panels(rated), 100, 0), rated["label"])
    # a "model" that errs exactly where resampled panels disagree most
    table = ln.error_rate_by_disagreement(rated["rating_sd"].to_numpy(), flips < 0.5)
    assert table["n"].sum() == len(rated)
    assert table["error_rate"].iloc[-1] >= table["error_rate"].iloc[0]


# --- input errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_bootstrap": 0}, ValueError, "n_bootstrap must be at least 1"),
        ({"n_bootstrap": 2.0}, TypeError, "n_bootstrap must be an integer"),
        ({"n_bootstrap": True}, TypeError, "n_bootstrap must be an integer"),
        ({"seed": -1}, ValueError, "seed must be at least 0"),
        ({"seed": "0"}, TypeError, "seed must be an integer"),
        (
            {"ratings": [np.array([1, 2]), np.array([], dtype=int)]},
            ValueError,
            r"ratings\[1\] must be a non-empty",
        ),
        ({"ratings": [np.array([[1, 2]])]}, ValueError, "1-D"),
        ({"ratings": [np.array([1.0, np.nan])]}, ValueError, "NaN"),
        ({"ratings": [np.array([1, 5])]}, ValueError, "integers in -4..4"),
        ({"ratings": [np.array([1.5])]}, ValueError, "integers in -4..4"),
        ({"ratings": [np.array(["1"])]}, TypeError, "numeric"),
        ({"ratings": "1;2"}, TypeError, "sequence of arrays"),
    ],
)
def test_bootstrap_input_errors(kwargs, error, match):
    arguments = {"ratings": [np.array([1, 2, 3])], "n_bootstrap": 3, "seed": 0, **kwargs}
    with pytest.raises(error, match=match):
        ln.bootstrap_rater_labels(**arguments)


def test_other_input_errors(test_split):
    with pytest.raises(ValueError, match="NaN"):
        label_from_mean([0.1, np.nan])
    with pytest.raises(TypeError, match="numeric"):
        label_from_mean(["0.1"])
    boot = ln.bootstrap_rater_labels([np.array([1, 2])] * 3, 4, 0)
    with pytest.raises(ValueError, match="shapes"):
        ln.label_flip_rate(boot, ["positive"] * 2)
    with pytest.raises(ValueError, match="outside"):
        ln.label_flip_rate(boot, ["positive", "positive", "happy"])
    with pytest.raises(TypeError, match="label strings"):
        ln.label_flip_rate(boot, [1, 2, 0])
    with pytest.raises(KeyError, match="ratings"):
        ln.label_noise_ceiling(test_split.drop(columns="ratings"))
    with pytest.raises(KeyError, match="genre"):
        ln.label_noise_ceiling(test_split, by="genre")
    with pytest.raises(ValueError, match="none of the 3 sentences"):
        ln.label_noise_ceiling(test_split[test_split["ratings"] == ""].head(3))
    with pytest.raises(TypeError, match="DataFrame"):
        ln.label_noise_ceiling(test_split.to_dict())
    with pytest.raises(ValueError, match="n_bootstrap"):
        ln.label_noise_ceiling(test_split, n_bootstrap=0)
    with pytest.raises(ValueError, match="equal length"):
        ln.error_rate_by_disagreement(np.ones(3), np.ones(4, dtype=bool))
    with pytest.raises(ValueError, match="NaN"):
        ln.error_rate_by_disagreement(test_split["rating_sd"], np.ones(len(test_split), dtype=bool))
    with pytest.raises(TypeError, match="bool"):
        ln.error_rate_by_disagreement(np.ones(3), np.array([1, 0, 1]))
    with pytest.raises(ValueError, match="negative"):
        ln.error_rate_by_disagreement(np.array([-0.1, 1.0]), np.ones(2, dtype=bool))
    with pytest.raises(ValueError, match="n_bins must be at least 1"):
        ln.error_rate_by_disagreement(np.ones(3), np.ones(3, dtype=bool), n_bins=0)
    with pytest.raises(ValueError, match="no sentences"):
        ln.error_rate_by_disagreement(np.ones(0), np.ones(0, dtype=bool))
