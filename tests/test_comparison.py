"""Seed summaries and the two-noise rule used by the notebooks' asserts."""

import numpy as np
import pandas as pd
import pytest

from helpers.analysis.comparison import clearly_above, mean_sd_table, noise, seed_summary, within_noise


def test_seed_summary_gives_mean_and_sample_sd_per_configuration_in_order():
    runs = pd.DataFrame(
        {
            "config": ["b", "b", "b", "a", "a", "a"],
            "seed": [0, 1, 2] * 2,
            "f1": [0.7, 0.8, 0.9, 0.5, 0.5, 0.5],
        }
    )
    summary = seed_summary(runs, "config", ["f1"])
    assert list(summary.index) == ["b", "a"]
    assert summary.loc["b", ("f1", "mean")] == pytest.approx(0.8)
    assert summary.loc["b", ("f1", "sd")] == pytest.approx(0.1)  # ddof = 1
    assert summary.loc["a", ("f1", "sd")] == 0
    assert mean_sd_table(summary).loc["b", "f1"] == "0.800 ± 0.100"
    single = seed_summary(runs.iloc[:1], "config", ["f1"])  # one run: no spread to show
    assert mean_sd_table(single).loc["b", "f1"] == "0.700"
    with pytest.raises(KeyError, match="no column"):
        seed_summary(runs, "configuration", ["f1"])


def test_two_noise_rule():
    assert noise([0.5, 0.5, 0.5], [0.6, 0.6, 0.6]) == 0.01  # the floor
    assert noise([0.5, 0.6, 0.7], [0.6, 0.6, 0.6]) == pytest.approx(0.1)
    assert clearly_above([0.80, 0.81, 0.79], [0.70, 0.71, 0.69])
    assert not clearly_above([0.715, 0.725, 0.705], [0.70, 0.71, 0.69])  # 0.015 < 2 * 0.01
    assert not clearly_above([0.70, 0.71, 0.69], [0.80, 0.81, 0.79])  # the wrong way round
    assert within_noise([0.715, 0.725, 0.705], [0.70, 0.71, 0.69])
    assert not within_noise([0.9, 0.9, 0.9], [0.7, 0.7, 0.7])
    with pytest.raises(ValueError, match="at least two runs"):
        noise([0.5], [0.6, 0.7])
    assert np.isfinite(noise(np.array([0.1, 0.2]), (0.3, 0.3)))
    with pytest.raises(ValueError, match="NaN or infinite"):
        clearly_above([0.9, float("nan"), 0.9], [0.1, 0.1, 0.1])
