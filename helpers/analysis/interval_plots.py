"""Interval figures whose groups are told apart by colour and by marker, for colour-blind readers
and grey-scale prints: a forest plot of paired differences, one colour and marker per group."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

GROUP_MARKERS = ("o", "s", "^", "D", "v", "P")


def grouped_forest_plot(
    frame: pd.DataFrame,
    estimate: str,
    title: str,
    ax: plt.Axes | None = None,
    interval: tuple[str, str] = ("low", "high"),
    xlabel: str | None = None,
) -> plt.Axes:
    """A forest plot of `frame`, indexed by (group, row): one line per row over its `interval`
    columns, a dot at `estimate`, and a dashed line at zero. Each group (the first index level) has
    its own colour-blind-safe colour and marker, named in a legend below the axes, which covers
    nothing; rows are labelled by the second level. An interval that crosses zero does not separate
    the two things compared.
    """
    if not isinstance(frame.index, pd.MultiIndex) or frame.index.nlevels != 2:
        raise ValueError("frame must be indexed by two levels: (group, row)")
    for column in (estimate, *interval):
        if column not in frame:
            raise ValueError(f"frame has no column {column!r}; it has {list(frame.columns)}")
    groups = list(dict.fromkeys(frame.index.get_level_values(0)))
    if len(groups) > len(GROUP_MARKERS):
        raise ValueError(f"at most {len(GROUP_MARKERS)} groups, got {len(groups)}")
    ax = ax or plt.gca()
    palette = sns.color_palette("colorblind", len(groups))
    rows = np.arange(len(frame))
    group_of_row = frame.index.get_level_values(0)
    low, high, centre = (frame[c].to_numpy(dtype=float) for c in (*interval, estimate))
    for colour, marker, group in zip(palette, GROUP_MARKERS, groups, strict=False):
        chosen = np.asarray(group_of_row == group)
        ax.hlines(rows[chosen], low[chosen], high[chosen], color=colour, linewidth=1.8)
        ax.plot(
            centre[chosen], rows[chosen], marker, color=colour, markersize=7, linestyle="none", label=group
        )
    ax.axvline(0, color="grey", linestyle="--", linewidth=1)
    ax.set(title=title, yticks=rows, yticklabels=frame.index.get_level_values(1), xlabel=xlabel or estimate)
    ax.invert_yaxis()
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=len(groups), fontsize="small")
    return ax
