"""Probe tables: one tuned probe per feature set with intervals, scores rescaled above chance, and the
grouped forest plot that shows their paired gaps."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from helpers.analysis.interval_plots import grouped_forest_plot  # noqa: E402
from helpers.analysis.probe_tables import above_chance, separability_table, tuned_probe_table  # noqa: E402


def _clusters(n=240, classes=3, spread=0.6, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    centres = rng.normal(size=(classes, 8)) * 2
    return centres[labels] + rng.normal(scale=spread, size=(n, 8)), labels


def test_above_chance_is_zero_at_guessing_and_one_when_perfect():
    assert above_chance(0.25, 4) == 0 and above_chance(1.0, 4) == 1
    assert above_chance(np.array([0.5, 0.75]), 2).tolist() == [0.0, 0.5]
    with pytest.raises(ValueError):
        above_chance(0.5, 1)


def test_tuned_probe_table_scores_each_feature_set_on_the_held_out_rows():
    features, labels = _clusters()
    noise = np.random.default_rng(1).normal(size=features.shape)
    train = np.arange(len(labels)) < 160
    table, predictions = tuned_probe_table(
        {"clusters": features, "noise": noise}, labels, train, grid=(0.01, 1.0, 100.0), folds=3
    )
    assert list(table.configuration) == ["clusters", "noise"]
    assert all(len(p) == 80 for p in predictions.values())
    assert (table.low <= table["macro-F1"]).all() and (table["macro-F1"] <= table.high).all()
    assert table.set_index("configuration").loc["clusters", "macro-F1"] > 0.9
    assert table.set_index("configuration").loc["noise", "macro-F1"] < 0.6
    with pytest.raises(ValueError, match="rows"):
        tuned_probe_table({"short": features[:10]}, labels, train)
    with pytest.raises(ValueError, match="train must"):
        tuned_probe_table({"clusters": features}, labels, np.ones(len(labels), dtype=bool))


def test_separability_table_rescales_every_score_above_chance():
    features, labels = _clusters(classes=4)
    table, predictions = separability_table({"clusters": (features, labels)})
    row = table.loc["clusters"]
    assert row["random guessing"] == 0.25
    assert row["probe above chance"] == pytest.approx((row["linear probe"] - 0.25) / 0.75)
    assert row["probe above chance, low"] <= row["probe above chance"] <= row["probe above chance, high"]
    assert len(predictions["clusters"]) == len(labels)


def test_grouped_forest_plot_marks_each_group_and_refuses_a_flat_index():
    index = pd.MultiIndex.from_tuples([("task a", "x - y"), ("task a", "x - z"), ("task b", "x - y")])
    frame = pd.DataFrame(
        {"gap": [0.1, -0.02, 0.3], "low": [0.05, -0.1, 0.2], "high": [0.2, 0.05, 0.4]}, index
    )
    fig, ax = plt.subplots()
    grouped_forest_plot(frame, "gap", "gaps", ax)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["task a", "task b"]
    markers = {line.get_marker() for line in ax.get_lines() if line.get_label() in ("task a", "task b")}
    assert markers == {"o", "s"}
    plt.close(fig)
    with pytest.raises(ValueError, match="two levels"):
        grouped_forest_plot(frame.reset_index(level=0), "gap", "gaps")
