"""Per-task gradient norms: a task's loss reaches the shared encoder and its own head only, and
measuring them leaves no gradient and no changed weight behind."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from helpers.analysis.gradients import per_task_gradient_norms  # noqa: E402
from helpers.analysis.plots import gradient_norm_chart  # noqa: E402


def test_each_loss_reaches_the_encoder_and_its_own_head_only(make_model):
    model = make_model({"a": ["x", "y"], "b": ["p", "q", "r"]})
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    norms = per_task_gradient_norms(model, ["one sentence", "and another"], {"a": [0, 1], "b": [2, 0]})
    assert list(norms.columns) == ["a", "b"]
    assert list(norms.index[:2]) == ["embeddings", "layer 0"]
    encoder = [name for name in norms.index if not name.startswith("head")]
    assert (norms.loc[encoder] > 0).all().all()
    assert norms.loc["head: a", "a"] > 0 and norms.loc["head: b", "a"] == 0
    assert norms.loc["head: b", "b"] > 0 and norms.loc["head: a", "b"] == 0
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(before[name], p) for name, p in model.named_parameters())
    fig, ax = plt.subplots()
    gradient_norm_chart(norms, "norms", ax)
    assert sum(text.get_text() == " 0 (no path)" for text in ax.texts) == 2
    plt.close(fig)


def test_bad_task_or_label_count_is_refused(make_model):
    model = make_model({"a": ["x", "y"], "b": ["p", "q", "r"]})
    with pytest.raises(ValueError, match="unknown task"):
        per_task_gradient_norms(model, ["s"], {"c": [0]})
    with pytest.raises(ValueError, match="2 labels for 1 texts"):
        per_task_gradient_norms(model, ["s"], {"a": [0, 1]})
