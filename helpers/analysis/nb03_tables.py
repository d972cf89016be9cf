"""Notebook 03's tables: the depth rule on `make experiments`' results, the size study with the
optimiser steps each size got, how a frozen head's predictions moved, and the forgetting study.

The bookkeeping behind three of the notebook's cells, so that each cell shows the experiment and
its reading rather than the loops. Results come as `helpers.analysis.experiments.load_results`'s
frame (one row per run); predictions as label indices per task.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.analysis.comparison import NOISE_FLOOR, paired_differences, paired_noise
from helpers.analysis.experiments import FORGETTING, N_LAYERS, RESULTS, TASKS, test_subset
from helpers.analysis.forgetting import PROTECTIONS
from helpers.evaluation import classification_scores


def _depth_arm(frame: pd.DataFrame, k: int, column: str) -> pd.Series:
    """`column` of the depth grid's top-k runs (embeddings frozen), indexed by seed, in seed order."""
    rows = frame[(frame.grid == "depth") & (frame.k == k) & ~frame.embeddings]
    if rows.empty:
        raise ValueError(f"the results hold no depth-grid run with k = {k}")
    return rows.set_index("seed")[column].sort_index()


def depth_rule(
    frame: pd.DataFrame, split: str = "test", reference: int = N_LAYERS, floor: float = NOISE_FLOOR
) -> pd.DataFrame:
    """The depth rule, applied to the depth grid: for each k = 1 … `reference`, the per-seed paired
    differences (top `reference` minus top k) of the macro-F1 averaged over the tasks, their mean,
    twice their paired noise (`comparison.paired_noise`, at least `floor`), and whether the mean gap
    is within that. The rule recommends the smallest k that is within.

    Returns one row per k (index `k`) with the columns `per seed` (the differences, seed order),
    `mean gap`, `twice the paired noise` and `within`. ValueError when an arm is missing or the
    arms do not share their seeds.
    """
    columns = [f"{split}_{task}" for task in TASKS]
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise KeyError(f"the results have no column(s) {missing}")
    frame = frame.assign(_mean=frame[columns].mean(axis=1))
    best = _depth_arm(frame, reference, "_mean")
    rows = {}
    for k in range(1, reference + 1):
        arm = _depth_arm(frame, k, "_mean")
        if list(arm.index) != list(best.index):
            raise ValueError(f"top {k} and top {reference} do not share their seeds: {list(arm.index)}")
        gaps = paired_differences(best.to_numpy(), arm.to_numpy())
        twice = 2 * paired_noise(best.to_numpy(), arm.to_numpy(), floor=floor)
        rows[k] = {
            "per seed": np.round(gaps, 3),
            "mean gap": float(gaps.mean()),
            "twice the paired noise": twice,
            "within": bool(gaps.mean() <= twice),
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("k")


def optimiser_steps(frame: pd.DataFrame, directory: Path = RESULTS) -> pd.Series:
    """The optimiser steps each run took, counted as `helpers.training` counts them: epochs ×
    ⌈examples per epoch / batch size⌉ (the batch size read from the run's file in `directory`);
    0 for a run that trained nothing (the probe). One value per row of `frame`, same index."""
    steps = {}
    for index, row in frame.iterrows():
        if not row["examples"]:
            steps[index] = 0
            continue
        record = json.loads((Path(directory) / f"{row['run']}.json").read_text())
        batch_size = record["configuration"]["training"]["batch_size"]
        epochs = int(row["epochs"])
        steps[index] = epochs * max(1, math.ceil(row["examples"] / epochs / batch_size))
    return pd.Series(steps, dtype=int).reindex(frame.index)


def size_study(
    frame: pd.DataFrame, k: int = 2, split: str = "test", directory: Path = RESULTS
) -> pd.DataFrame:
    """The tuned probe (k = 0) and top-k fine-tuning by training-set size (the size grid and the
    depth grid's 500 sentences per task): mean and sd over seeds of each task's macro-F1 and the
    optimiser steps of each arm. One row per (sentences per task, k)."""
    rows = frame[
        frame.k.isin([0, k])
        & ~frame.embeddings
        & frame.grid.isin(["size", "depth"])
        & (frame.heads == "probe")
        & (frame.frozen_heads.map(len) == 0)
    ]
    if rows.empty:
        raise ValueError("the results hold no run of the size study")
    rows = rows.assign(**{"optimiser steps": optimiser_steps(rows, directory)})
    grouped = rows.groupby(["train_per_task", "k"])
    table = grouped[[f"{split}_{task}" for task in TASKS]].agg(["mean", "std"])
    table[("optimiser steps", "")] = grouped["optimiser steps"].max()
    return table


def prediction_drift(
    start: Mapping[str, np.ndarray], end: Mapping[str, np.ndarray], truth: Mapping[str, np.ndarray], task: str
) -> dict[str, float]:
    """How `task`'s predictions moved from one model (`start`) to another (`end`) on the same
    sentences: the share that changed, and the shares that went from right to wrong and from
    wrong to right; then each task's change in macro-F1 (end minus start).

    Each mapping gives label indices (n,) per task, aligned sentence by sentence.
    """
    for name, values in (("start", start), ("end", end)):
        if np.shape(values[task]) != np.shape(truth[task]):
            raise ValueError(
                f"{name}[{task!r}] has shape {np.shape(values[task])}, truth {np.shape(truth[task])}"
            )
    before, after, right = np.asarray(start[task]), np.asarray(end[task]), np.asarray(truth[task])
    changed = before != after
    drift = {
        "predictions changed": float(changed.mean()),
        "right to wrong": float((changed & (before == right)).mean()),
        "wrong to right": float((changed & (after == right)).mean()),
    }
    for name in truth:
        drift[f"{name} F1 change"] = (
            classification_scores(truth[name], end[name])["macro_f1"]
            - classification_scores(truth[name], start[name])["macro_f1"]
        )
    return drift


def forgetting_study(frame: pd.DataFrame, directory: Path = RESULTS) -> pd.DataFrame:
    """One row per run of the `forgetting` grid (protection, seed): the old task's test predictions
    from the first stage to the end (`prediction_drift`) and each task's change in test and
    validation macro-F1 (end minus first stage). Reads the predictions from the run files."""
    runs = frame[frame.grid == "forgetting"].sort_values(["protection", "seed"])
    if runs.empty:
        raise ValueError("the results hold no run of the forgetting grid")
    test = test_subset()
    truth = {task: examples.labels for task, examples in test.items()}
    digests = {
        task: hashlib.sha256("\n".join(examples.texts).encode()).hexdigest()
        for task, examples in test.items()
    }
    rows = []
    for _, run in runs.iterrows():
        record = json.loads(Path(directory, f"{run.run}.json").read_text())
        if record["test_texts_sha256"] != digests:
            raise ValueError(f"{run.run}: its test sentences are not the test subset of this checkout")
        drift = prediction_drift(
            record["test_predictions_before"], record["test_predictions"], truth, FORGETTING["old"]
        )
        rows.append(
            {"protection": run.protection, "seed": int(run.seed)}
            | {  # the old task's predictions (changed, right to wrong, ...), then each task's F1 change
                name.replace("F1 change", "test F1 change")
                if "F1" in name
                else f"{FORGETTING['old']} {name}": value
                for name, value in drift.items()
            }
            | {
                f"{task} validation F1 change": run[f"validation_{task}"] - run[f"before_validation_{task}"]
                for task in TASKS
            }
        )
    study = pd.DataFrame(rows)
    study["protection"] = pd.Categorical(study.protection, categories=PROTECTIONS, ordered=True)
    return study.sort_values(["protection", "seed"], ignore_index=True)
