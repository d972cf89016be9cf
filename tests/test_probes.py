"""helpers.analysis.probes: linear probes, nearest-neighbour votes, confident mistakes."""

import numpy as np
import pytest
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from threadpoolctl import threadpool_limits

from helpers.analysis.probes import confident_mistakes, cross_validated_probe_predictions, fit_linear_probe


def test_confident_mistakes_are_wrong_and_sorted():
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    table = confident_mistakes(["a", "b", "c", "d"], ["x", "x", "y", "y"], probabilities, ["x", "y"], n=5)
    assert list(table.text) == ["b", "c"]
    assert (table.true != table.predicted).all()
    assert table.confidence.is_monotonic_decreasing


def test_nearest_neighbour_scores_see_clusters_and_not_noise():
    from helpers.analysis.probes import nearest_neighbour_scores

    rng = np.random.default_rng(0)
    labels = np.repeat(["a", "b", "c"], 40)
    centres = rng.normal(size=(3, 16)) * 5
    clustered = centres[np.repeat([0, 1, 2], 40)] + rng.normal(size=(120, 16))
    assert nearest_neighbour_scores(clustered, labels)["macro_f1"] > 0.95
    assert nearest_neighbour_scores(rng.normal(size=(120, 16)), labels)["macro_f1"] < 0.6


def _ill_conditioned_features(n: int = 600, d: int = 64, seed: int = 0):
    rng = np.random.default_rng(seed)
    scales = np.geomspace(1e-3, 30, d)  # like unnormalised CLS vectors: very different axis scales
    features = (rng.normal(size=(n, d)) * scales).astype(np.float32)
    labels = np.asarray(["a", "b", "c"])[(features[:, -3:] + rng.normal(size=(n, 3)) * 20).argmax(axis=1)]
    return features, labels


def test_probe_is_the_same_with_one_or_two_threads():
    features, labels = _ill_conditioned_features()
    fitted = {}
    for threads in (1, 2):
        with threadpool_limits(threads):
            fitted[threads] = fit_linear_probe(features, labels).predict_proba(features)
    np.testing.assert_allclose(fitted[1], fitted[2], atol=1e-9)


def test_probe_reaches_the_optimum_and_balances_classes():
    features, labels = _ill_conditioned_features()
    probe = fit_linear_probe(features, labels)
    assert probe.n_iter_.max() < probe.max_iter  # converged, not stopped by the iteration cap
    assert set(probe.predict(features)) == {"a", "b", "c"}
    out_of_fold = cross_validated_probe_predictions(features, labels, folds=3)
    assert len(out_of_fold) == len(labels) and set(out_of_fold) <= {"a", "b", "c"}


def test_unweighted_probe_favours_the_majority_class_and_bad_names_are_refused():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(400, 8))
    labels = np.where(np.arange(400) < 360, "common", "rare")  # 9:1, features carry no signal
    balanced = fit_linear_probe(features, labels).predict(features)
    unweighted = fit_linear_probe(features, labels, class_weighting="none").predict(features)
    assert (unweighted == "rare").sum() < (balanced == "rare").sum()
    with pytest.raises(ValueError, match="unknown class weighting 'Balanced'"):
        fit_linear_probe(features, labels, class_weighting="Balanced")


def test_tuned_probe_keeps_the_penalty_with_the_best_cross_validated_macro_f1():
    from helpers.analysis.probes import fit_tuned_probe, linear_probe
    from helpers.evaluation import classification_scores

    features, labels = _ill_conditioned_features(n=300)
    grid = (1e-6, 1e-3, 1.0)
    splitter = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    scores = [
        classification_scores(
            labels, cross_val_predict(linear_probe(0, C), features.astype(float), labels, cv=splitter)
        )["macro_f1"]
        for C in grid
    ]
    probe = fit_tuned_probe(features, labels, grid=grid)
    assert probe.C == grid[int(np.argmax(scores))]
    assert probe.C != 1.0  # here C = 1 overfits (cross-validated macro-F1 0.62 against 0.71 at 1e-3)
    assert probe.n_features_in_ == features.shape[1] and len(probe.classes_) == 3


def test_tuned_probe_stopping_at_decline_keeps_the_choice_and_skips_the_rest(monkeypatch):
    from sklearn.linear_model import LogisticRegression

    from helpers.analysis import probes

    features, labels = _ill_conditioned_features(n=300)
    grid = (1e-6, 1e-3, 1.0, 1e3)
    full = probes.fit_tuned_probe(features, labels, grid=grid)
    tried = []

    class Recording(LogisticRegression):
        def fit(self, x, y, sample_weight=None):
            tried.append(self.C)
            return super().fit(x, y, sample_weight)

    original = probes.linear_probe

    def recording_probe(seed=0, C=1.0, class_weighting="balanced"):
        return Recording(**original(seed, C, class_weighting).get_params())

    monkeypatch.setattr(probes, "linear_probe", recording_probe)
    early = probes.fit_tuned_probe(features, labels, grid=grid, stop_at_decline=True)
    assert early.C == full.C == 1e-3
    assert 1e3 not in tried  # the walk stopped at C = 1, which scored lower
    assert tried[-1] == 1e-3  # the final refit on all features uses the choice
