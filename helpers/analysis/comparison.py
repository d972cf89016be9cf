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


def paired_differences(a: Sequence[float], b: Sequence[float]) -> np.ndarray:
    """Per-seed differences `a - b` of two arms that share their seeds (same order); ValueError for
    arms of different lengths, fewer than two seeds, or a NaN/infinite value."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise ValueError(f"paired arms need the same seeds, at least two: got {a.tolist()} and {b.tolist()}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError(f"an arm holds NaN or infinite values: {a.tolist()}, {b.tolist()}")
    return a - b


def paired_noise(a: Sequence[float], b: Sequence[float], floor: float = NOISE_FLOOR) -> float:
    """The noise of a paired comparison: the sample sd (ddof = 1) of the per-seed differences, at
    least `floor`. What moves both arms alike (the seed's shared batch order, the data) cancels."""
    return max(floor, float(np.std(paired_differences(a, b), ddof=1)))


def clearly_above_paired(higher: Sequence[float], lower: Sequence[float], floor: float = NOISE_FLOOR) -> bool:
    """True when the mean per-seed difference `higher - lower` exceeds twice its `paired_noise`."""
    return float(paired_differences(higher, lower).mean()) > 2 * paired_noise(higher, lower, floor)


class RunTable:
    """A notebook's record of its runs: one row per run (experiment, configuration, seed, macro-F1
    per task and their mean), read back per configuration as one value per seed."""

    def __init__(self, tasks: Sequence[str]):
        self.tasks = list(tasks)
        self.rows: list[dict] = []

    def add(self, experiment: str, configuration: str, seed: int | None, scores: dict) -> None:
        """Record a run's scores (`{task: {"macro_f1": ...}}`, as `evaluate` returns them)."""
        row = {"experiment": experiment, "configuration": configuration, "seed": seed}
        row.update({task: float(scores[task]["macro_f1"]) for task in self.tasks})
        row["mean"] = float(np.mean([row[task] for task in self.tasks]))
        self.rows.append(row)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)

    def f1(self, configuration: str, column: str = "mean") -> np.ndarray:
        """The macro-F1 of `configuration` in `column` (a task or "mean"), one value per run, in seed
        order; KeyError for a configuration never recorded."""
        frame = self.frame()
        chosen = frame[frame.configuration == configuration].sort_values("seed", kind="stable")
        if chosen.empty:
            raise KeyError(f"no runs of {configuration!r}; recorded: {sorted(set(frame.configuration))}")
        return chosen[column].to_numpy()

    def summary(self, experiment: str) -> pd.DataFrame:
        """Mean ± sd over seeds of each configuration of `experiment`, as text."""
        frame = self.frame()
        return mean_sd_table(
            seed_summary(frame[frame.experiment == experiment], "configuration", [*self.tasks, "mean"])
        )
