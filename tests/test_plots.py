"""Figure helpers: the embedding map colours each label, in the given palette when one is given."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from helpers.analysis.plots import plot_embedding_map  # noqa: E402


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
