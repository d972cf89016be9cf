"""Figure helpers: the embedding map colours each label, in the given palette when one is given."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from helpers.analysis.plots import legend_below, plot_embedding_map  # noqa: E402


def test_embedding_map_uses_the_given_palette_and_refuses_a_short_one():
    coords = np.arange(12, dtype=float).reshape(6, 2)
    labels = ["a", "b", "c", "a", "b", "c"]
    fig, ax = plt.subplots()
    plot_embedding_map(coords, labels, "map", ax=ax, order=["a", "b", "c"], palette=["red", "green", "blue"])
    colours = [tuple(collection.get_facecolor()[0][:3]) for collection in ax.collections]
    assert colours == [(1.0, 0.0, 0.0), (0.0, 0.5019607843137255, 0.0), (0.0, 0.0, 1.0)]
    with pytest.raises(ValueError, match="2 colours for 3 labels"):
        plot_embedding_map(coords, labels, "map", ax=ax, order=["a", "b", "c"], palette=["red", "green"])
    plt.close(fig)


def test_confusion_heatmap_shows_row_shares_and_counts():
    import matplotlib.pyplot as plt

    from helpers.analysis.plots import confusion_heatmap

    fig, ax = plt.subplots()
    confusion_heatmap(["a", "a", "a", "b"], ["a", "b", "b", "b"], ["a", "b"], title="toy", ax=ax)
    notes = [text.get_text() for text in ax.texts]
    assert notes == ["0.33\n(1)", "0.67\n(2)", "0.00\n(0)", "1.00\n(1)"]
    assert [label.get_text() for label in ax.get_yticklabels()] == ["a (n=3)", "b (n=1)"]
    assert "row-normalised" in ax.get_title()
    plt.close(fig)


def test_embedding_map_tells_classes_apart_by_marker_and_keeps_the_legend_below_the_axis_label():
    coords = np.arange(16, dtype=float).reshape(8, 2)
    labels = ["a", "b", "c", None, "a", "b", "c", None]
    fig, ax = plt.subplots()
    plot_embedding_map(coords, labels, "map", ax=ax, order=["a", "b", "c"])
    paths = [collection.get_paths()[0].vertices.round(3).tobytes() for collection in ax.collections[1:]]
    assert len(set(paths)) == 3  # three classes, three marker shapes
    fig.canvas.draw()
    legend_top = ax.get_legend().get_window_extent().y1
    assert legend_top <= ax.xaxis.label.get_window_extent().y0 + 1
    with pytest.raises(ValueError, match="2 markers for 3 labels"):
        plot_embedding_map(coords, labels, "map", ax=ax, order=["a", "b", "c"], markers=["o", "s"])
    with pytest.raises(ValueError, match="coords must be"):
        plot_embedding_map(coords[:3], labels, "map", ax=ax)
    plt.close(fig)


def test_interval_bar_chart_starts_at_zero_with_error_bars_and_an_outside_legend():
    import pandas as pd

    from helpers.analysis.plots import interval_bar_chart

    frame = pd.DataFrame(
        {"pooling": ["mean", "max", "mean", "max"], "norm": [True, True, False, False],
         "f1": [0.8, 0.7, 0.75, 0.6], "low": [0.75, 0.65, 0.7, 0.55], "high": [0.85, 0.75, 0.8, 0.65]}
    )  # fmt: skip
    fig, ax = plt.subplots()
    interval_bar_chart(frame, "pooling", "f1", "norm", "probe", ax, chance=0.25)
    assert ax.get_ylim()[0] == 0
    heights = sorted(round(patch.get_height(), 2) for patch in ax.patches)
    assert heights == [0.6, 0.7, 0.75, 0.8]
    assert len(ax.collections) == 2  # one error-bar set per hue
    fig.canvas.draw()
    assert ax.get_legend().get_window_extent().x0 >= ax.get_window_extent().x1
    plt.close(fig)


def test_architecture_diagram_has_a_legend_and_the_given_parameter_counts():
    from helpers.analysis.plots import draw_architecture

    fig, ax = plt.subplots(figsize=(13, 4))
    draw_architecture(
        {"a": ["x", "y"], "b": ["p", "q", "r"]}, ax, parameters={"encoder": 22_565_376, "a": 770}
    )
    texts = " ".join(text.get_text() for text in ax.texts)
    assert "22.57 M parameters" in texts and "770 parameters" in texts and "loss: b" in texts
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert labels[:3] == ["shared parameters", "task-specific parameters", "no parameters"]
    plt.close(fig)


def test_architecture_diagram_sends_gradients_back_through_heads_and_pooling():
    from helpers.analysis.plots import draw_architecture

    fig, ax = plt.subplots(figsize=(13, 4))
    draw_architecture({"a": ["x", "y"], "b": ["p", "q", "r"]}, ax)
    arrows = [a.arrow_patch for a in ax.texts if getattr(a, "arrow_patch", None)]
    dashed = [a for a in arrows if a.get_linestyle() not in ("-", "solid")]
    assert len(dashed) == 2 * 2 + 1  # per task: loss -> head, head -> pooling; then pooling -> encoder
    assert "one task" in " ".join(text.get_text() for text in ax.texts)
    plt.close(fig)


def test_forest_plot_draws_one_row_per_difference_and_a_zero_line():
    import pandas as pd

    from helpers.analysis.plots import forest_plot

    frame = pd.DataFrame({"gap": [0.02, 0.1], "low": [-0.01, 0.05], "high": [0.05, 0.15]}, index=["a", "b"])
    fig, ax = plt.subplots()
    forest_plot(frame, "gap", "gaps", ax)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b"]
    assert any(list(line.get_xdata()) == [0, 0] for line in ax.get_lines())
    with pytest.raises(ValueError, match="no column"):
        forest_plot(frame, "missing", "gaps", ax)
    plt.close(fig)


def test_loss_weight_tracking_draws_each_weight_next_to_its_running_target():
    import pandas as pd

    from helpers.analysis.plots import loss_weight_tracking

    steps = pd.DataFrame(
        {
            "step": [1, 2, 3, 4],
            "task": ["a", "b", "a", "b"],
            "loss": [1.0, 2.0, 0.5, 1.0],
            "a_loss_weight": [1.0, 0.9, 0.8, 0.8],
            "b_loss_weight": [1.0, 1.0, 0.7, 0.6],
        }
    )
    fig, ax = plt.subplots()
    table = loss_weight_tracking(steps, ["a", "b"], window=2, ax=ax)
    assert table["a target"].tolist() == pytest.approx([0.5, 0.5, 1 / 1.5, 1 / 1.5])  # 1 / (2 * mean)
    assert np.isnan(table["b target"][0]) and table["b target"][3] == pytest.approx(1 / 3)
    assert len(ax.get_lines()) == 4 and len({line.get_marker() for line in ax.get_lines()}) == 2
    with pytest.raises(ValueError, match="TrainingResult.steps"):
        loss_weight_tracking(steps.drop(columns="loss"), ["a", "b"], ax=ax)
    plt.close(fig)


def test_score_dot_plot_puts_one_marked_row_per_arm_in_order():
    import pandas as pd

    from helpers.analysis.plots import score_dot_plot

    frame = pd.DataFrame(
        {"name": ["probe", "tuned"], "score": [0.7, 0.9], "low": [0.6, 0.85], "high": [0.8, 0.95]}
    )
    fig, ax = plt.subplots()
    score_dot_plot(frame, "sentence type", ax)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["probe", "tuned"]
    assert ax.get_ylim()[0] > ax.get_ylim()[1]  # the first row on top
    assert len({line.get_marker() for line in ax.get_lines()}) == 2
    with pytest.raises(ValueError, match="no column"):
        score_dot_plot(frame.drop(columns="low"), "x", ax)
    plt.close(fig)


def test_maps_can_share_one_legend_below_the_panels():
    fig, axes = plt.subplots(1, 2)
    coords, labels = np.zeros((3, 2)), ["a", "b", "c"]
    for ax in axes:
        plot_embedding_map(coords, labels, "map", ax=ax, order=["a", "b", "c"], legend=False)
        assert ax.get_legend() is None
    legend_below(fig, axes[0], ncol=3)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["a", "b", "c"]
    plt.close(fig)
