"""Plots of the series: similarity heatmaps, t-SNE maps, and bar charts, all with fixed sizes."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from sklearn.manifold import TSNE

MISSING_COLOUR = "#d9d9d9"  # points without a label for the coloured task


def stratified_sample(frame: pd.DataFrame, by: str, n: int, seed: int = 0) -> pd.DataFrame:
    """Draw about `n` rows with every value of `by` equally represented (or all rows of a small one)."""
    groups = frame.groupby(by, sort=True)
    per_group = int(np.ceil(n / groups.ngroups))
    parts = [group.sample(min(len(group), per_group), random_state=seed) for _, group in groups]
    return pd.concat(parts).sample(frac=1.0, random_state=seed).reset_index(drop=True)


def tsne_2d(embeddings: np.ndarray, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """Project embeddings to 2-D with t-SNE (cosine distances, PCA start, seeded)."""
    tsne = TSNE(n_components=2, perplexity=perplexity, metric="cosine", init="pca", random_state=seed)
    return tsne.fit_transform(embeddings)


def plot_embedding_map(
    coords: np.ndarray,
    labels: Sequence,
    title: str,
    ax: plt.Axes | None = None,
    order: Sequence[str] | None = None,
) -> plt.Axes:
    """Scatter a 2-D map coloured by `labels`; points whose label is missing (None/NaN) are drawn in grey."""
    ax = ax or plt.gca()
    labels = pd.Series(list(labels), dtype="object")
    missing = labels.isna().to_numpy()
    if missing.any():
        ax.scatter(*coords[missing].T, s=6, c=MISSING_COLOUR, label="(other data set)", linewidths=0)
    order = list(order) if order is not None else sorted(labels[~missing].unique())
    palette = sns.color_palette("colorblind", len(order))
    for colour, value in zip(palette, order, strict=True):
        chosen = (labels == value).to_numpy()
        ax.scatter(*coords[chosen].T, s=8, color=colour, label=value, linewidths=0)
    ax.set(title=title, xlabel="t-SNE 1", ylabel="t-SNE 2", xticks=[], yticks=[])
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=3, fontsize="small", markerscale=2)
    return ax


def similarity_heatmap(
    similarities: np.ndarray, labels: Sequence[str], title: str, ax: plt.Axes | None = None
) -> plt.Axes:
    """A labelled, annotated heatmap of pairwise cosine similarities."""
    ax = ax or plt.gca()
    sns.heatmap(
        similarities,
        xticklabels=labels,
        yticklabels=labels,
        vmin=-0.2,
        vmax=1.0,
        cmap="viridis",
        annot=True,
        fmt=".2f",
        annot_kws={"fontsize": 7},
        square=True,
        cbar_kws={"label": "cosine similarity"},
        ax=ax,
    )
    ax.set_title(title)
    ax.tick_params(axis="x", labelrotation=90, labelsize=8)
    ax.tick_params(axis="y", labelrotation=0, labelsize=8)
    return ax


def grouped_bar_chart(
    frame: pd.DataFrame, x: str, y: str, hue: str, title: str, ax: plt.Axes | None = None, ylim=(0, 1)
) -> plt.Axes:
    """Bars of `y` per `x`, one colour per `hue`, values written on the bars."""
    ax = ax or plt.gca()
    sns.barplot(frame, x=x, y=y, hue=hue, palette="colorblind", ax=ax)
    for container in ax.containers:
        ax.bar_label(container, fmt="%.2f", fontsize=7, padding=1)
    ax.set(title=title, ylim=ylim)
    ax.legend(title=hue, fontsize="small", loc="upper right")
    return ax
