"""Plots of the series: similarity heatmaps, t-SNE maps, and bar charts, all with fixed sizes."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from sklearn.manifold import TSNE

MISSING_COLOUR = "#d9d9d9"  # points without a label for the coloured task
MARKERS = ["o", "^", "s", "D", "v", "P", "X", "*"]  # one shape per class, told apart without colour


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
    markers: Sequence[str] | None = None,
    legend: bool = True,
) -> plt.Axes:
    """Scatter a 2-D map (coords: n x 2) coloured by `labels`, each label with its own marker too.

    Points whose label is missing (None/NaN) are drawn as small grey dots. `palette`: one colour per
    label in `order` (default: the first colours of seaborn's colour-blind palette); `markers`: one
    matplotlib marker per label (default: circle, triangle, square, diamond, ...), so classes stay
    apart for readers who cannot tell the colours apart. ValueError when either is too short. The
    legend sits under the x-axis label, outside the points (`legend=False`: none, e.g. for one
    `legend_below` shared by several maps).
    """
    ax = ax or plt.gca()
    labels = pd.Series(list(labels), dtype="object")
    coords = np.asarray(coords)
    if coords.ndim != 2 or coords.shape[1] != 2 or len(coords) != len(labels):
        raise ValueError(f"coords must be (n, 2) with n = {len(labels)} labels, got {coords.shape}")
    missing = labels.isna().to_numpy()
    if missing.any():
        ax.scatter(
            *coords[missing].T, s=4, c=MISSING_COLOUR, marker=".", label="(other data set)", linewidths=0
        )
    order = list(order) if order is not None else sorted(labels[~missing].unique())
    palette = list(palette) if palette is not None else sns.color_palette("colorblind", len(order))
    markers = list(markers) if markers is not None else MARKERS[: len(order)]
    if len(palette) < len(order):
        raise ValueError(f"palette has {len(palette)} colours for {len(order)} labels")
    if len(markers) < len(order):
        raise ValueError(f"markers has {len(markers)} markers for {len(order)} labels")
    for colour, marker, value in zip(palette, markers, order, strict=False):
        chosen = (labels == value).to_numpy()
        ax.scatter(*coords[chosen].T, s=18, color=colour, marker=marker, label=value, linewidths=0, alpha=0.8)
    ax.set(title=title, xlabel="t-SNE 1", ylabel="t-SNE 2", xticks=[], yticks=[])
    if legend:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.07), ncol=3, fontsize="small", markerscale=1.5)
    return ax


def legend_below(fig: plt.Figure, ax: plt.Axes, ncol: int, bottom: float = 0.08) -> None:
    """One legend for the whole figure, `ax`'s entries, centred below the panels where it covers
    nothing; then lays the figure out above it (`bottom`: the share of the height it keeps free).
    Call it after the title is set."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize="small", frameon=False)
    fig.tight_layout(rect=(0, bottom, 1, 1))


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


def interval_bar_chart(
    frame: pd.DataFrame,
    x: str,
    y: str,
    hue: str,
    title: str,
    ax: plt.Axes | None = None,
    interval: tuple[str, str] = ("low", "high"),
    chance: float | None = None,
) -> plt.Axes:
    """Bars of `y` from zero, one per (`x`, `hue`) row of `frame`, with the interval between the
    columns `interval` drawn as a black error bar; `chance` draws a dashed line at that level. The
    legend sits outside the axes, on the right, so it covers no bar."""
    ax = ax or plt.gca()
    xs, hues = list(dict.fromkeys(frame[x])), list(dict.fromkeys(frame[hue]))
    width = 0.8 / len(hues)
    palette = sns.color_palette("colorblind", len(hues))
    hatches = ["", "//", "..", "xx"]
    for j, value in enumerate(hues):
        rows = frame[frame[hue] == value].set_index(x).reindex(xs)
        positions = np.arange(len(xs)) - 0.4 + width * (j + 0.5)
        low, high = rows[interval[0]].to_numpy(), rows[interval[1]].to_numpy()
        centre = rows[y].to_numpy()
        ax.bar(positions, centre, width, color=palette[j], hatch=hatches[j % len(hatches)],
               edgecolor="white", label=str(value))  # fmt: skip
        ax.errorbar(positions, centre, yerr=[centre - low, high - centre], fmt="none", ecolor="black",
                    capsize=3, linewidth=1)  # fmt: skip
    if chance is not None:
        ax.axhline(chance, color="black", linestyle="--", linewidth=1, label="chance")
    ax.set(title=title, xticks=np.arange(len(xs)), xticklabels=xs, xlabel=x, ylabel=y, ylim=(0, 1))
    ax.legend(title=hue, fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return ax


def draw_architecture(
    task_labels: dict[str, list[str]],
    ax: plt.Axes | None = None,
    head: str = "linear layer",
    parameters: dict[str, int] | None = None,
) -> plt.Axes:
    """Diagram of the multi-task model: shared parameters in one colour, task-specific ones in
    another, parameter-free steps in white (a legend says which); one cross-entropy per task, and
    dashed arrows for the path its gradients take back: through its head and the pooling into the
    shared encoder.

    `parameters`: counts to print, keyed "encoder" and by task (e.g. from `parameter_summary`).
    """
    from matplotlib.patches import Patch

    ax = ax or plt.gca()
    parameters = parameters or {}
    shared_colour, task_colour = sns.color_palette("colorblind")[0], sns.color_palette("colorblind")[1]
    gradient_colour = sns.color_palette("colorblind")[3]
    encoder_note = (
        f"{parameters['encoder'] / 1e6:.2f} M parameters" if "encoder" in parameters else "shared parameters"
    )
    stages = [
        ("sentences", "raw text", "white"),
        ("tokeniser", "WordPiece ids\n+ attention mask", "white"),
        ("MiniLM-L6\ntransformer", f"embeddings + 6 layers\n{encoder_note}", shared_colour),
        ("mean pooling\n+ L2 norm", "one 384-d vector\nper sentence", "white"),
    ]
    box_width, box_height, gap = 1.7, 1.1, 0.55
    n_tasks = len(task_labels)
    height = max(2.8, 1.6 * n_tasks)
    middle = height / 2 + 0.3
    for i, (title, subtitle, colour) in enumerate(stages):
        x = i * (box_width + gap)
        _box(ax, x, middle - box_height / 2, box_width, box_height, title, subtitle, colour)
        if i:
            _arrow(ax, x - gap, middle, x, middle)
    encoder_x = 2 * (box_width + gap)
    head_x = len(stages) * (box_width + gap) + 0.5
    head_width, loss_width = 2.3, 2.5
    loss_x = head_x + head_width + 1.3
    bottom = height + 0.3 - height / n_tasks * (n_tasks - 0.5) - 0.75
    pooling_right = 3 * (box_width + gap) + box_width
    for j, (task, labels) in enumerate(task_labels.items()):
        y = height + 0.3 - (j + 0.5) * height / n_tasks
        count = f"\n{parameters[task]:,} parameters" if task in parameters else ""
        _box(ax, head_x, y - 0.45, head_width, 0.9, f"head: {task}", head + count, task_colour)
        _arrow(ax, head_x - gap - 0.5, middle, head_x, y)
        _arrow(ax, head_x + head_width, y, loss_x, y)
        ax.text(
            head_x + head_width + 0.65,
            y + 0.06,
            f"{len(labels)} logits",
            ha="center",
            va="bottom",
            fontsize=8,
        )
        _box(ax, loss_x, y - 0.4, loss_width, 0.8, f"loss: {task}", "cross-entropy", "white")
        # the way back, dashed: loss -> head -> pooling (below the forward arrows)
        _arrow(ax, loss_x, y - 0.25, head_x + head_width, y - 0.25, gradient_colour)
        _arrow(ax, head_x, y - 0.3, pooling_right, middle - 0.2 - 0.15 * j, gradient_colour)
    _arrow(ax, pooling_right - box_width, middle - 0.3, encoder_x + box_width, middle - 0.3, gradient_colour)
    ax.text(
        (head_x + loss_x + loss_width) / 2, bottom - 0.1,
        "in training each batch comes from one task: only that task's head and loss run",
        ha="center", va="center", fontsize=8, style="italic",
    )  # fmt: skip
    legend = [
        Patch(facecolor=shared_colour, alpha=0.25, edgecolor="black", label="shared parameters"),
        Patch(facecolor=task_colour, alpha=0.25, edgecolor="black", label="task-specific parameters"),
        Patch(facecolor="white", edgecolor="black", label="no parameters"),
        plt.Line2D(
            [],
            [],
            color=gradient_colour,
            linestyle="--",
            label="gradients: loss, head, pooling, shared encoder",
        ),
    ]
    ax.legend(
        handles=legend, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=4, fontsize=8, frameon=False
    )
    ax.set(xlim=(-0.2, loss_x + loss_width + 0.2), ylim=(bottom - 0.3, height + 0.5))
    ax.axis("off")
    ax.set_title("Hard parameter sharing: one shared encoder, one head and one loss per task")
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


def _arrow(ax, x0, y0, x1, y1, colour=None):
    """A solid black arrow (forward pass), or a dashed one in `colour` (gradients)."""
    style = {"color": "black"} if colour is None else {"color": colour, "linestyle": "--", "lw": 1.2}
    ax.annotate("", xy=(x1, y1), xytext=(x0, y0), arrowprops={"arrowstyle": "->", **style})


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


def loss_weight_tracking(
    steps: pd.DataFrame, tasks: Sequence[str], window: int = 20, ax: plt.Axes | None = None
) -> pd.DataFrame:
    """Uncertainty weighting's learned weight exp(-s_t) of each task over the steps (solid), next to
    its running target 1 / (2 L_t) (dashed), with L_t the mean of the task's last `window` batch
    losses: where the weight would sit if it followed the loss at once.

    `steps` is `TrainingResult.steps` (columns step, task, loss, `<task>_loss_weight`). Returns one
    row per step: the weight and the target of each task (the target carried forward between the
    task's own batches; NaN before its first). Classes are told apart by colour and marker.
    """
    ax = ax or plt.gca()
    missing = {"step", "task", "loss"} - set(steps.columns)
    if missing:
        raise ValueError(f"steps has no column(s) {sorted(missing)}: pass TrainingResult.steps")
    table = pd.DataFrame({"step": steps["step"].to_numpy()})
    palette = sns.color_palette("colorblind", len(tasks))
    every = max(1, len(steps) // 12)
    for j, task in enumerate(tasks):
        own = steps["task"] == task
        running = steps["loss"].where(own).dropna().rolling(window, min_periods=1).mean()
        table[f"{task} weight"] = steps[f"{task}_loss_weight"].to_numpy()
        table[f"{task} target"] = (1 / (2 * running)).reindex(steps.index).ffill().to_numpy()
        style = {"color": palette[j], "marker": MARKERS[j], "markevery": every, "markersize": 5}
        ax.plot(table["step"], table[f"{task} weight"], label=f"{task}: learned exp(-s)", **style)
        ax.plot(table["step"], table[f"{task} target"], linestyle="--", linewidth=1,
                label=f"{task}: 1 / (2 L), last {window} batches", **style)  # fmt: skip
    ax.set(xlabel="optimiser step", ylabel="loss weight")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return table


def score_dot_plot(frame: pd.DataFrame, title: str, ax: plt.Axes | None = None) -> plt.Axes:
    """One dot per row of `frame` at its `score`, with a line over its interval (`low`, `high`): the
    rows of one panel in order, top to bottom, labelled by the column `name`; each row gets its
    own marker and colour. For a results table where every row is scored on the same sentences."""
    ax = ax or plt.gca()
    missing = {"name", "score", "low", "high"} - set(frame.columns)
    if missing:
        raise ValueError(f"frame has no column(s) {sorted(missing)}; it has {list(frame.columns)}")
    palette = sns.color_palette("colorblind", len(frame))
    for row, (_, item) in enumerate(frame.iterrows()):
        ax.hlines(row, item["low"], item["high"], color="black", linewidth=1.5)
        ax.plot(item["score"], row, MARKERS[row % len(MARKERS)], color=palette[row], markersize=8)
    ax.set(title=title, yticks=np.arange(len(frame)), yticklabels=list(frame["name"]))
    ax.set_ylim(len(frame) - 0.5, -0.5)
    return ax


def gradient_norm_chart(norms: pd.DataFrame, title: str, ax: plt.Axes | None = None) -> plt.Axes:
    """Horizontal bars of gradient norms from zero (rows: components, the bottom layer first;
    columns: the task whose loss was backpropagated); an exact zero is written as "0 (no path)"."""
    ax = ax or plt.gca()
    tasks, components = list(norms.columns), list(norms.index)
    height = 0.8 / len(tasks)
    palette = sns.color_palette("colorblind", len(tasks))
    hatches = ["", "//", "..", "xx"]
    for j, task in enumerate(tasks):
        positions = np.arange(len(components)) - 0.4 + height * (j + 0.5)
        values = norms[task].to_numpy()
        ax.barh(positions, values, height, color=palette[j], hatch=hatches[j % len(hatches)],
                edgecolor="white", label=f"loss of {task}")  # fmt: skip
        for position, value in zip(positions, values, strict=True):
            if value == 0:
                ax.text(0, position, " 0 (no path)", va="center", fontsize=9)
    ax.set(title=title, yticks=np.arange(len(components)), yticklabels=components, xlabel="gradient norm")
    ax.set_xlim(left=0)
    ax.invert_yaxis()
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return ax


def forest_plot(
    frame: pd.DataFrame,
    estimate: str,
    title: str,
    ax: plt.Axes | None = None,
    interval: tuple[str, str] = ("low", "high"),
    xlabel: str | None = None,
) -> plt.Axes:
    """One row per row of `frame` (its index, joined with " / ", labels the row): a dot at `estimate`
    and a line over the interval columns, with a vertical line at zero. For paired differences:
    an interval that crosses zero does not separate the two."""
    ax = ax or plt.gca()
    for column in (estimate, *interval):
        if column not in frame:
            raise ValueError(f"frame has no column {column!r}; it has {list(frame.columns)}")
    labels = [" / ".join(map(str, key)) if isinstance(key, tuple) else str(key) for key in frame.index]
    rows = np.arange(len(frame))
    low, high, centre = (frame[c].to_numpy(dtype=float) for c in (*interval, estimate))
    ax.hlines(rows, low, high, color="black", linewidth=1.5)
    ax.plot(centre, rows, "o", color=sns.color_palette("colorblind")[0], markersize=6)
    ax.axvline(0, color="grey", linestyle="--", linewidth=1)
    ax.set(title=title, yticks=rows, yticklabels=labels, xlabel=xlabel or estimate)
    ax.invert_yaxis()
    return ax
