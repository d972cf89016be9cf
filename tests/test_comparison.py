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


def test_paired_rule_uses_the_spread_of_the_differences():
    from helpers.analysis.comparison import clearly_above_paired, paired_differences, paired_noise

    base = [0.70, 0.80, 0.60]  # a large seed spread, shared by both arms
    arm = [0.73, 0.83, 0.63]  # +0.03 on every seed
    np.testing.assert_allclose(paired_differences(arm, base), [0.03, 0.03, 0.03])
    assert paired_noise(arm, base) == 0.01  # the floor: the differences do not vary
    assert clearly_above_paired(arm, base)
    assert not clearly_above(arm, base)  # unpaired, the seed spread hides it
    assert not clearly_above_paired(base, arm)
    assert not clearly_above_paired([0.73, 0.78, 0.63], base)  # differences +0.03, -0.02, +0.03
    with pytest.raises(ValueError, match="same seeds"):
        paired_differences([0.1, 0.2], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="NaN"):
        paired_noise([0.1, np.nan], [0.1, 0.2])


def test_run_table_reads_back_one_value_per_seed():
    from helpers.analysis.comparison import RunTable

    table = RunTable(["a", "b"])
    for seed, (x, y) in enumerate([(0.5, 0.7), (0.6, 0.8)]):
        table.add("e", "arm", seed, {"a": {"macro_f1": x}, "b": {"macro_f1": y}})
    table.add("e", "probe", None, {"a": {"macro_f1": 0.4}, "b": {"macro_f1": 0.6}})
    np.testing.assert_allclose(table.f1("arm", "a"), [0.5, 0.6])
    np.testing.assert_allclose(table.f1("arm"), [0.6, 0.7])
    assert table.summary("e").loc["arm", "a"] == "0.550 ± 0.071"
    assert table.summary("e").loc["probe", "a"] == "0.400"
    with pytest.raises(KeyError, match="no runs"):
        table.f1("missing")
