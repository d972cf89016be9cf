"""Comparing configurations run with several seeds: mean ± spread, and whether a gap is clear.

One run per configuration cannot tell a real difference from luck: a different seed (initial
weights, batch order, dropout) moves macro-F1 by a few thousandths to a few hundredths. The
notebooks therefore run each configuration with several seeds, report the mean and the standard
deviation over them, and call a gap a finding only when it is larger than about twice that noise.
This is a rule of thumb for what to write down, not a significance test: three seeds estimate a
standard deviation roughly, and a fixed validation set adds sampling noise that seeds do not show
(a bootstrap over its sentences does; see notebook 03).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

NOISE_FLOOR = 0.01  # macro-F1: below this, three seeds cannot tell a spread from zero


def seed_summary(runs: pd.DataFrame, by: str | Sequence[str], metrics: Sequence[str]) -> pd.DataFrame:
    """Mean and sample standard deviation (ddof = 1) of each metric over the runs of each configuration.

    `runs` holds one row per run (configuration columns `by`, one column per metric); the result
    has one row per configuration, in order of first appearance, and the columns
    `(metric, "mean")`, `(metric, "sd")`. KeyError names a missing column.
    """
    by = [by] if isinstance(by, str) else list(by)
    missing = [column for column in [*by, *metrics] if column not in runs.columns]
    if missing:
        raise KeyError(f"runs has no column(s) {missing}; it has {list(runs.columns)}")
    grouped = runs.groupby(by, sort=False)[list(metrics)]
    return grouped.agg(
        ["mean", lambda values: float(np.std(values, ddof=1)) if len(values) > 1 else np.nan]
    ).rename(columns={"<lambda_0>": "sd"}, level=1)


def mean_sd_table(summary: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """`seed_summary`'s table as text, one "mean ± sd" cell per metric, rounded to `digits`; a
    configuration with one run (no spread) shows its value alone."""
    metrics = list(dict.fromkeys(summary.columns.get_level_values(0)))
    return pd.DataFrame(
        {
            metric: [
                f"{mean:.{digits}f}" if np.isnan(sd) else f"{mean:.{digits}f} ± {sd:.{digits}f}"
                for mean, sd in zip(summary[(metric, "mean")], summary[(metric, "sd")], strict=True)
            ]
            for metric in metrics
        },
        index=summary.index,
    )


def noise(*samples: Sequence[float], floor: float = NOISE_FLOOR) -> float:
    """The noise of a comparison: the largest sample standard deviation (ddof = 1) among `samples`,
    and at least `floor`. ValueError for a sample with fewer than two values or a NaN/infinite one."""
    spreads = []
    for values in samples:
        values = np.asarray(values, dtype=float)
        if values.ndim != 1 or len(values) < 2:
            raise ValueError(f"each sample needs at least two runs (seeds), got {values.tolist()}")
        if not np.isfinite(values).all():
            raise ValueError(f"a sample holds NaN or infinite values: {values.tolist()}")
        spreads.append(float(np.std(values, ddof=1)))
    return max([floor, *spreads])


def clearly_above(higher: Sequence[float], lower: Sequence[float], floor: float = NOISE_FLOOR) -> bool:
    """True when mean(`higher`) exceeds mean(`lower`) by more than twice their `noise`."""
    return float(np.mean(higher)) - float(np.mean(lower)) > 2 * noise(higher, lower, floor=floor)


def within_noise(a: Sequence[float], b: Sequence[float], floor: float = NOISE_FLOOR) -> bool:
    """True when the means of `a` and `b` differ by at most twice their `noise`: no clear difference."""
    return abs(float(np.mean(a)) - float(np.mean(b))) <= 2 * noise(a, b, floor=floor)
