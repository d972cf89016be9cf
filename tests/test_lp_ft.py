"""`helpers.analysis.lp_ft`: a fitted probe copied into a head predicts what the probe predicts."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from helpers.analysis.lp_ft import heads_from_probes


def _fitted_probe(labels, classes, seed=0):
    """A logistic regression fitted on random unit-length 384-d features, and those features."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(60, 384)).astype(np.float32)
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    targets = np.asarray(classes, dtype=object)[np.arange(60) % len(classes)]
    features += 0.3 * np.eye(384, dtype=np.float32)[[list(classes).index(t) for t in targets]]  # separable
    probe = LogisticRegression(C=10.0, max_iter=2000).fit(features.astype(np.float64), list(targets))
    return probe, features


@pytest.mark.parametrize(
    "labels, classes",
    [
        (["statement", "question", "command", "exclamation"], [0, 1, 2, 3]),  # indices
        (
            ["statement", "question", "command", "exclamation"],
            ["statement", "question", "command", "exclamation"],
        ),
        (["negative", "positive"], [0, 1]),  # binary: coef_ has one row
        (["yes", "no"], ["yes", "no"]),  # names, sorted by sklearn into another order than the head's
    ],
)
def test_heads_from_probes_reproduces_the_probe_exactly(make_model, labels, classes):
    model = make_model({"task": labels})
    probe, features = _fitted_probe(labels, classes)
    heads_from_probes(model, {"task": probe})
    with torch.no_grad():
        logits = model.eval().classify(torch.as_tensor(features))["task"]
    probabilities = logits.double().softmax(dim=-1).numpy()
    names = [labels[c] if isinstance(c, (int, np.integer)) else c for c in probe.classes_]
    order = [names.index(label) for label in labels]
    np.testing.assert_allclose(
        probabilities, probe.predict_proba(features.astype(np.float64))[:, order], atol=1e-5
    )
    predicted = [labels[i] for i in probabilities.argmax(axis=1)]
    expected = [
        labels[c] if isinstance(c, (int, np.integer)) else c
        for c in probe.predict(features.astype(np.float64))
    ]
    assert predicted == expected


def test_heads_from_probes_refuses_a_mismatch_and_changes_nothing(make_model):
    model = make_model({"task": ["a", "b", "c"], "other": ["x", "y"]})
    before = {name: p.detach().clone() for name, p in model.heads.named_parameters()}
    probe, _ = _fitted_probe(["a", "b"], ["a", "b"])
    good, _ = _fitted_probe(["x", "y"], ["x", "y"])
    with pytest.raises(ValueError, match="classes"):
        heads_from_probes(model, {"other": good, "task": probe})
    with pytest.raises(ValueError, match="no head"):
        heads_from_probes(model, {"topic": good})
    for name, p in model.heads.named_parameters():
        assert torch.equal(before[name], p.detach()), name
    mlp = make_model({"task": ["a", "b"]}, head="mlp")
    with pytest.raises(ValueError, match="not linear"):
        heads_from_probes(mlp, {"task": probe})
