"""The full run's per-sentence test predictions (`make train`): written once, read by notebook 04.

`scripts/full_run.py` trains notebook 03's recipe on all the data and scores it on the full test
split; besides its summary (`benchmarks/full_run.json`) it stores what the model predicted for
every test sentence, with its class probabilities, in `benchmarks/full_run_predictions.json`
(`prediction_record`). `load_full_run_predictions` reads that file back as one table per view, so
that confusion matrices, intervals and error analyses of a competent model need no training.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.analysis.reports import sentence_type_views
from helpers.data import TASK_LABELS, load_sentiment
from helpers.data.tasks import load_task_data
from helpers.evaluation import predict_probabilities
from helpers.model import MultiTaskModel
from helpers.task_data import TaskData

PREDICTIONS = Path(__file__).resolve().parents[2] / "benchmarks" / "full_run_predictions.json"
SCHEMA = 1
PROVENANCE_KEYS = ("command", "commit", "commit_clean", "date", "machine")
DECIMALS = 5  # probabilities are stored rounded: enough for every statistic the notebook draws


def texts_sha256(texts: list[str]) -> str:
    """A fingerprint of a view's sentences, in order: the file belongs to the data it was made on."""
    return hashlib.sha256("\n".join(texts).encode()).hexdigest()


def prediction_views(test: Mapping[str, TaskData] | None = None) -> dict[str, tuple[str, TaskData]]:
    """The scored views, by name ("task: view"): each task's test split (in the order of
    `load_task_data("test")`) and sentence type's two other views (`sentence_type_views`)."""
    test = load_task_data("test") if test is None else test
    views = {f"{task}: test": (task, test[task]) for task in TASK_LABELS}
    for view, examples in sentence_type_views(test["sentence_type"]).items():
        views[f"sentence_type: {view}"] = ("sentence_type", examples)
    return dict(sorted(views.items()))


def prediction_record(model: MultiTaskModel, provenance: Mapping, batch_size: int = 64) -> dict:
    """What `benchmarks/full_run_predictions.json` holds: `provenance` (PROVENANCE_KEYS) and, per view,
    the task, its label names, the texts' fingerprint, the gold labels (n,), the predicted labels
    (n,) and the class probabilities (n, classes), rounded to DECIMALS."""
    missing = [key for key in PROVENANCE_KEYS if key not in provenance]
    if missing:
        raise ValueError(f"provenance lacks {missing}")
    record = {"schema": SCHEMA, **{key: provenance[key] for key in PROVENANCE_KEYS}, "views": {}}
    for name, (task, examples) in prediction_views().items():
        probabilities = predict_probabilities(model, {task: examples}, batch_size)[task]
        record["views"][name] = {
            "task": task,
            "labels": list(TASK_LABELS[task]),
            "texts_sha256": texts_sha256(list(examples.texts)),
            "gold": examples.labels.astype(int).tolist(),
            "predicted": probabilities.argmax(axis=1).astype(int).tolist(),
            "probabilities": np.round(probabilities.astype(float), DECIMALS).tolist(),
        }
    return record


def load_full_run_predictions(path: Path = PREDICTIONS) -> tuple[dict, dict[str, pd.DataFrame]]:
    """(provenance, tables): the full run's command, commit, date and machine, and one DataFrame per
    view ("sentence_type: test", "sentence_type: test, punctuation stripped", "sentence_type:
    challenge set", "sentiment: test") with columns text, label, predicted (label names), confidence
    (the largest probability), p_<label> per class, correct, and `source` for sentiment.

    FileNotFoundError naming `make train` when the file is missing; ValueError when it was made on
    other sentences than the committed data holds (its fingerprints differ)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: `make train` writes it (about an hour on 2 cores)")
    record = json.loads(path.read_text())
    if record.get("schema") != SCHEMA:
        raise ValueError(f"{path} has schema {record.get('schema')!r}, this code reads {SCHEMA}")
    views, tables = prediction_views(), {}
    if set(record["views"]) != set(views):
        raise ValueError(f"{path} holds the views {sorted(record['views'])}, expected {sorted(views)}")
    for name, (_, examples) in views.items():
        stored = record["views"][name]
        if stored["texts_sha256"] != texts_sha256(list(examples.texts)):
            raise ValueError(
                f"{path}: the sentences of {name!r} are not the committed data's; run `make train`"
            )
        labels = stored["labels"]
        probabilities = np.asarray(stored["probabilities"], dtype=float)
        table = pd.DataFrame({"text": list(examples.texts)})
        table["label"] = [labels[i] for i in stored["gold"]]
        table["predicted"] = [labels[i] for i in stored["predicted"]]
        table["confidence"] = probabilities.max(axis=1)
        for column, label in enumerate(labels):
            table[f"p_{label}"] = probabilities[:, column]
        table["correct"] = table["label"] == table["predicted"]
        if name == "sentiment: test":
            table["source"] = load_sentiment("test")["source"].to_numpy()
        tables[name] = table
    return {key: record[key] for key in PROVENANCE_KEYS}, tables
