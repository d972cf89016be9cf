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
    palette: Sequence | None = None,
) -> plt.Axes:
    """Scatter a 2-D map coloured by `labels`; points whose label is missing (None/NaN) are drawn in grey.

    `palette`: one colour per label in `order` (default: the first colours of seaborn's colour-blind
    palette); ValueError when it has fewer colours than there are labels.
    """
    ax = ax or plt.gca()
    labels = pd.Series(list(labels), dtype="object")
    missing = labels.isna().to_numpy()
    if missing.any():
        ax.scatter(*coords[missing].T, s=6, c=MISSING_COLOUR, label="(other data set)", linewidths=0)
    order = list(order) if order is not None else sorted(labels[~missing].unique())
    palette = list(palette) if palette is not None else sns.color_palette("colorblind", len(order))
    if len(palette) < len(order):
        raise ValueError(f"palette has {len(palette)} colours for {len(order)} labels")
    for colour, value in zip(palette, order, strict=False):
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


def draw_architecture(
    task_labels: dict[str, list[str]], ax: plt.Axes | None = None, head: str = "linear layer"
) -> plt.Axes:
    """Diagram of the multi-task model: shared stages in one colour, one head per task in another."""
    ax = ax or plt.gca()
    shared_colour, task_colour = sns.color_palette("colorblind")[0], sns.color_palette("colorblind")[1]
    stages = [
        ("sentences", "raw text", "white"),
        ("tokeniser", "WordPiece ids\n+ attention mask", "white"),
        ("MiniLM-L6\ntransformer", "6 layers, 22.7 M\nparameters (shared)", shared_colour),
        ("mean pooling\n+ L2 norm", "one 384-d vector\nper sentence (shared)", shared_colour),
    ]
    box_width, box_height, gap = 1.7, 1.1, 0.55
    n_tasks = len(task_labels)
    height = max(2.4, 1.5 * n_tasks)
    middle = height / 2
    for i, (title, subtitle, colour) in enumerate(stages):
        x = i * (box_width + gap)
        _box(ax, x, middle - box_height / 2, box_width, box_height, title, subtitle, colour)
        if i:
            _arrow(ax, x - gap, middle, x, middle)
    head_x = len(stages) * (box_width + gap) + 0.5
    for j, (task, labels) in enumerate(task_labels.items()):
        y = height - (j + 0.5) * height / n_tasks
        _box(ax, head_x, y - 0.45, box_width + 0.3, 0.9, f"head: {task}", head, task_colour)
        _arrow(ax, head_x - gap - 0.5, middle, head_x, y)
        _arrow(ax, head_x + box_width + 0.3, y, head_x + box_width + 0.8, y)
        ax.text(
            head_x + box_width + 0.9,
            y,
            f"{len(labels)} logits:\n" + ", ".join(labels),
            va="center",
            fontsize=8,
        )
    ax.set(xlim=(-0.2, head_x + box_width + 3.6), ylim=(-0.1, height + 0.1))
    ax.axis("off")
    ax.set_title("Hard parameter sharing: one shared encoder, one head per task")
    return ax


def _box(ax, x, y, width, height, title, subtitle, colour):
    from matplotlib.patches import FancyBboxPatch

    alpha = 0.25 if colour != "white" else 1.0
    patch = FancyBboxPatch(
        (x, y), width, height, boxstyle="round,pad=0.05", facecolor=colour, alpha=alpha, edgecolor="black"
    )
    ax.add_patch(patch)
    ax.text(x + width / 2, y + height * 0.68, title, ha="center", va="center", fontsize=9, weight="bold")
    ax.text(x + width / 2, y + height * 0.24, subtitle, ha="center", va="center", fontsize=7)


def _arrow(ax, x0, y0, x1, y1):
    ax.annotate("", xy=(x1, y1), xytext=(x0, y0), arrowprops={"arrowstyle": "->", "color": "black"})


def confusion_heatmap(y_true, y_pred, labels: list[str], title: str, ax: plt.Axes | None = None) -> plt.Axes:
    """Confusion matrix, row-normalised: each cell shows the share of the row's true class that went
    to the predicted column and, below it, the count; the y tick labels give each class's total."""
    from sklearn.metrics import confusion_matrix

    ax = ax or plt.gca()
    counts = confusion_matrix(y_true, y_pred, labels=labels)
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    notes = np.array([[f"{share:.2f}\n({count})" for share, count in zip(*row, strict=True)]
                      for row in zip(shares, counts, strict=True)])  # fmt: skip
    rows = [f"{label} (n={n})" for label, n in zip(labels, totals[:, 0], strict=True)]
    sns.heatmap(
        shares, annot=notes, fmt="", cmap="Blues", vmin=0, vmax=1, cbar=False, square=True, ax=ax,
        xticklabels=labels, yticklabels=rows,
    )  # fmt: skip
    ax.set(title=f"{title}\n(row-normalised share, count)", xlabel="predicted", ylabel="true")
    ax.tick_params(axis="x", labelrotation=30)
    ax.tick_params(axis="y", labelrotation=0)
    return ax


def loss_weight_curves(steps: pd.DataFrame, tasks: Sequence[str], ax: plt.Axes | None = None) -> plt.Axes:
    """The weight of each task's loss over training (learned under uncertainty weighting)."""
    ax = ax or plt.gca()
    for task in tasks:
        ax.plot(steps["step"], steps[f"{task}_loss_weight"], label=task)
    ax.set(xlabel="step", ylabel="loss weight exp(-s)", title="Learned loss weights")
    ax.legend(loc="best")
    return ax
