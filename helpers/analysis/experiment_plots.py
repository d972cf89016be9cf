"""Figures of `make experiments`' results (`helpers.analysis.experiments.load_results`'s frame).

Every figure: one-line titles, labelled axes, colour-blind-safe colours with a marker per kind of
point, and one kind of spread per panel (the standard deviation over seeds, or the seeds themselves).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from helpers.analysis.plots import legend_below

COLOURS = sns.color_palette("colorblind")
FINE_TUNED, PROBE, FULL = COLOURS[0], COLOURS[7], COLOURS[3]
TASK_TITLES = {"sentence_type": "sentence type", "sentiment": "sentiment"}
N_LAYERS = 6


def _depth_rows(frame: pd.DataFrame) -> pd.DataFrame:
    rows = frame[(frame.grid == "depth")].copy()
    rows["x"] = np.where(rows.embeddings, rows.k + 1, rows.k)  # full fine-tuning one step right of k = 6
    rows["per_1000"] = 1000 * rows.train_seconds / rows.examples
    return rows


def depth_summary(frame: pd.DataFrame, split: str = "test") -> pd.DataFrame:
    """Mean and sd over seeds of each task's macro-F1 and of training seconds per 1,000 examples,
    one row per depth (k = 0 is the probe, one deterministic run; 'full' trains the embeddings too)."""
    rows = _depth_rows(frame)
    rows["depth"] = np.where(rows.embeddings, "full", rows.k.astype(str))
    columns = [f"{split}_{task}" for task in TASK_TITLES] + ["per_1000"]
    summary = rows.groupby(["x", "depth"])[columns].agg(["mean", "std"])
    return summary.droplevel("x")


def plot_depth_sweep(
    frame: pd.DataFrame, cost: Mapping[str, float], split: str = "test", title: str = ""
) -> plt.Figure:
    """Quality per task (from `frame`) and training cost against the number of unfrozen top layers;
    the cost panel has its own legend (one timing per setting, not a mean over seeds).

    `cost` maps "top 1" ... "top 6" and "full fine-tuning" to seconds per 1,000 training examples,
    measured in one place under the same conditions (notebook 03's timing table): the grid's own
    wall times depend on what else the machine was doing.
    """
    rows = _depth_rows(frame)
    full_x = N_LAYERS + 1
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    for ax, task in zip(axes[:2], TASK_TITLES, strict=True):
        column = f"{split}_{task}"
        tuned = rows[~rows.embeddings & (rows.k > 0)].groupby("x")[column].agg(["mean", "std"])
        ax.errorbar(tuned.index, tuned["mean"], yerr=tuned["std"], marker="o", capsize=4, color=FINE_TUNED,
                    label="top k fine-tuned from the probe (mean ± sd over seeds)")  # fmt: skip
        full = rows[rows.embeddings][column]
        ax.errorbar([full_x], [full.mean()], yerr=[full.std()], marker="D", capsize=4, color=FULL,
                    linestyle="none", label="full fine-tuning, embeddings too (mean ± sd)")  # fmt: skip
        probe = rows[rows.k == 0][column]
        ax.plot([0], probe.to_numpy()[:1], marker="s", markersize=9, linestyle="none", color=PROBE,
                label="k = 0: the tuned probe, no fine-tuning (one deterministic run)")  # fmt: skip
        ax.set(title=f"{TASK_TITLES[task]}: {split} macro-F1", ylabel="macro-F1")
    ks = [k for k in range(1, N_LAYERS + 1) if f"top {k}" in cost]
    axes[2].plot(
        ks, [cost[f"top {k}"] for k in ks], marker="o", color=FINE_TUNED, label="top k (one timing each)"
    )
    if "full fine-tuning" in cost:
        axes[2].plot([full_x], [cost["full fine-tuning"]], marker="D", linestyle="none", color=FULL,
                     label="full fine-tuning (one timing)")  # fmt: skip
    axes[2].legend(loc="upper left", fontsize="small")
    axes[2].set(
        title="training cost (experiment 3: one timing)", ylabel="seconds per 1,000 training examples"
    )
    axes[2].set_ylim(bottom=0)
    for ax in axes:
        ax.set_xticks(range(full_x + 1), [f"{k}\n{k / N_LAYERS:.0%}" for k in range(full_x)] + ["full"])
        ax.set_xlim(-0.5, full_x + 0.5)
        ax.set_xlabel("top k of 6 layers unfrozen (share of depth)")
    fig.suptitle(title or "How many top layers to unfreeze: quality and cost")
    legend_below(fig, axes[0], ncol=3, bottom=0.08)
    return fig


def plot_paired_differences(
    comparisons: Mapping[str, Mapping[str, Sequence[float]]], title: str, xlabel: str
) -> plt.Figure:
    """One panel per task; a row per comparison with its per-seed paired differences as dots and
    their mean as a bar; the zero line is 'no difference'. `comparisons[label][task]` = differences."""
    tasks = list(next(iter(comparisons.values())))
    labels = list(comparisons)
    fig, axes = plt.subplots(1, len(tasks), figsize=(6.5 * len(tasks), 0.7 * len(labels) + 1.8), sharey=True)
    for ax, task in zip(np.atleast_1d(axes), tasks, strict=True):
        for row, label in enumerate(labels):
            values = np.asarray(comparisons[label][task], dtype=float)
            ax.plot(values, np.full(len(values), row), "o", color=FINE_TUNED, alpha=0.8,
                    label="one seed" if row == 0 else None)  # fmt: skip
            ax.plot([values.mean()], [row], "|", markersize=22, markeredgewidth=3, color=FULL,
                    label="mean over seeds" if row == 0 else None)  # fmt: skip
        ax.axvline(0, color="0.3", linewidth=1)
        ax.locator_params(axis="x", nbins=6)  # tick labels that do not run into each other
        ax.set(
            title=TASK_TITLES.get(task, task), xlabel=xlabel, yticks=range(len(labels)), yticklabels=labels
        )
        ax.set_ylim(len(labels) - 0.5, -0.5)
    fig.suptitle(title)
    legend_below(fig, np.atleast_1d(axes)[0], ncol=2, bottom=0.1)
    return fig


def plot_by_training_size(frame: pd.DataFrame, split: str = "test", title: str = "") -> plt.Figure:
    """The tuned probe against top-2 fine-tuning as the training set grows (size grid + depth's 500)."""
    rows = frame[
        ((frame.grid == "size") | ((frame.grid == "depth") & frame.k.isin([0, 2]) & ~frame.embeddings))
    ]
    fig, axes = plt.subplots(1, len(TASK_TITLES), figsize=(12, 4.6))
    for ax, task in zip(axes, TASK_TITLES, strict=True):
        column = f"{split}_{task}"
        tuned = rows[rows.k == 2].groupby("train_per_task")[column].agg(["mean", "std"])
        probe = rows[rows.k == 0].groupby("train_per_task")[column].mean()
        ax.errorbar(tuned.index, tuned["mean"], yerr=tuned["std"], marker="o", capsize=4, color=FINE_TUNED,
                    label="top 2 fine-tuned (mean ± sd, seeds)")  # fmt: skip
        ax.plot(probe.index, probe.to_numpy(), marker="s", markersize=8, color=PROBE, linestyle="--",
                label="tuned probe on frozen features (one deterministic fit)")  # fmt: skip
        ax.set_xscale("log")
        ax.minorticks_off()
        ax.set_xticks(list(tuned.index), [str(n) for n in tuned.index])
        ax.set(
            xlabel="training sentences per task (log scale)",
            ylabel=f"{split} macro-F1",
            title=TASK_TITLES[task],
        )
    fig.suptitle(title or "Frozen features or top-2 fine-tuning, by training-set size")
    legend_below(fig, axes[0], ncol=2, bottom=0.07)
    return fig
