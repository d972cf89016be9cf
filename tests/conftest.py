"""Shared fixtures: the pre-trained encoder is loaded once per test session (it takes seconds)."""

import pytest

from helpers.encoder import load_encoder


@pytest.fixture(scope="session")
def encoder():
    return load_encoder()


TWO_TASKS = {
    "sentence_type": ["statement", "question", "command", "exclamation"],
    "sentiment": ["negative", "neutral", "positive"],
}


@pytest.fixture
def make_model(encoder):
    """Build a MultiTaskModel on a private copy of the pre-trained backbone (fast: no reload from disk)."""
    import copy

    from helpers.model import MultiTaskModel

    def build(task_labels=None, **options):
        backbone = copy.deepcopy(encoder[0].auto_model)
        options.setdefault("device", "cpu")
        return MultiTaskModel(task_labels or TWO_TASKS, backbone, encoder[0].tokenizer, **options)

    return build
