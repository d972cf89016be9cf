"""Shared fixtures: the pre-trained encoder is loaded once per test session (it takes seconds)."""

import pytest

from helpers.encoder import load_encoder


@pytest.fixture(scope="session")
def encoder():
    return load_encoder()


TINY_TYPES = [
    "Close the door.",
    "Where are you?",
    "What a goal!",
    "The bus was late.",
    "Sit down.",
    "Who won?",
]
TINY_TYPE_LABELS = [2, 1, 3, 0, 2, 1]
TINY_MOODS = ["I love this.", "This is awful.", "It is a chair.", "Great work!", "Terrible food.", "A table."]
TINY_MOOD_LABELS = [2, 0, 1, 2, 0, 1]

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
