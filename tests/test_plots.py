"""Figure helpers: the embedding map colours each label, in the given palette when one is given."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from helpers.plots import plot_embedding_map  # noqa: E402


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
