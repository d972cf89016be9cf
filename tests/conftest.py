"""Shared fixtures and tiny data; the pre-trained encoder is loaded once per session (it takes seconds)."""

import numpy as np
import pytest
import torch

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


FOUR_TEXTS = ["Is this thing on?", "Turn it off.", "What a day!", "The rain stopped at noon."]
SIX_TEXTS = ["Shut the window.", "Is it late?", "What a mess!", "It rained.", "Go home.", "Why?"]


def tiny_examples():
    """Six labelled sentences per task, as `{task: TaskData}`."""
    from helpers.task_data import TaskData

    return {
        "sentence_type": TaskData(TINY_TYPES, np.array(TINY_TYPE_LABELS)),
        "sentiment": TaskData(TINY_MOODS, np.array(TINY_MOOD_LABELS)),
    }


def tiny_split():
    """(train, validation): the tiny examples, both."""
    examples = tiny_examples()
    return examples, examples


def quick_config(**options):
    """A one-epoch TrainingConfig in batches of 4, quiet; `options` change fields."""
    from helpers.training_config import TrainingConfig

    return TrainingConfig(**{"epochs": 1, "batch_size": 4, "progress": False, **options})


def submodule_modes(module: torch.nn.Module) -> dict[str, bool]:
    return {name: submodule.training for name, submodule in module.named_modules()}
