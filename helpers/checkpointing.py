"""Checkpoints: the complete training state, written atomically after every epoch, and resuming.

A checkpoint holds the weights, the optimiser, the schedule, the sampler, the random number
generators, early stopping and the history so far, so that a resumed run ends exactly where an
uninterrupted run would have (bit for bit). It holds tensors and plain Python values only, and is
read with `torch.load(weights_only=True)`: loading it cannot run code.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from helpers.evaluation import EarlyStopping
from helpers.training_config import TrainingConfig

PROGRESS_KEYS = ("epoch", "step", "examples_seen", "records", "step_records", "losses")  # the run so far
PROGRESS_DEFAULTS = {"losses": []}  # keys added later: a checkpoint written before them gets these
STATEFUL_KEYS = ("model", "combiner", "optimizer", "scheduler", "sampler")  # each has a state_dict
CHECKPOINT_KEYS = (  # what every readable checkpoint holds
    *(key for key in PROGRESS_KEYS if key not in PROGRESS_DEFAULTS),
    "config",
    *STATEFUL_KEYS,
    "rng",
    "torch_rng",
    "stopper",
)


class CheckpointError(ValueError):
    """A training checkpoint that cannot be read, or that was written for another run."""


def load_checkpoint(path: str | Path, config: TrainingConfig | None = None) -> dict:
    """Read a checkpoint written by `train_multitask` and check it; nothing in it can run code.

    It is read with `torch.load(weights_only=True)`: tensors and plain Python values (numbers,
    strings, lists, dicts) only. Raises FileNotFoundError when `path` is missing, CheckpointError
    ("checkpoint X is unreadable: delete it or run without --resume") when it is damaged, foreign
    or incomplete, and CheckpointError when `config` differs from the run that wrote it (all but
    `progress` must match).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist: run without --resume (resume=False)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # random bytes, an empty or truncated file, a pickle with code in it
        raise CheckpointError(
            f"checkpoint {path} is unreadable ({type(error).__name__}): delete it or run without --resume"
        ) from None
    missing = [key for key in CHECKPOINT_KEYS if not isinstance(state, dict) or key not in state]
    if missing:
        raise CheckpointError(
            f"checkpoint {path} is unreadable (it lacks {', '.join(missing)}): "
            "delete it or run without --resume"
        )
    if config is not None:
        # fields added to TrainingConfig since the checkpoint was written count as their defaults
        stored = {**asdict(TrainingConfig()), **state["config"], "progress": config.progress}
        differing = sorted(name for name, value in asdict(config).items() if stored.get(name) != value)
        if differing:
            raise CheckpointError(
                f"checkpoint {path} was written with a different training configuration "
                f"({', '.join(differing)}): use the same options as the interrupted run, or delete it "
                "and run without --resume"
            )
    return state


def save_checkpoint(path: str | Path, state: dict) -> None:
    """Write a training checkpoint atomically: a crash leaves the previous checkpoint in place.

    `state` must hold tensors and plain Python values only, so that `load_checkpoint` can read it
    with `weights_only=True`. The file is flushed to disk before it replaces the previous one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    try:
        with open(partial, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def training_state(
    progress: Mapping[str, Any],
    config: TrainingConfig,
    parts: Mapping[str, Any],
    rng: np.random.Generator,
    stopper: EarlyStopping,
    run_options: Mapping[str, Any] | None = None,
) -> dict:
    """Everything a checkpoint holds: `progress` (the `PROGRESS_KEYS`), the configuration, the
    state dicts of `parts` (the `STATEFUL_KEYS`), both random number generators, early stopping and
    `run_options` (plain values that define the run beyond the configuration, e.g. the CLI's data options)."""
    return {
        "run_options": dict(run_options or {}),
        **{key: progress[key] for key in PROGRESS_KEYS},
        "config": asdict(config),
        **{key: parts[key].state_dict() for key in STATEFUL_KEYS},
        "rng": rng.bit_generator.state,
        "torch_rng": torch.get_rng_state(),
        "stopper": dict(stopper.__dict__),
    }


def restore_training_state(
    state: Mapping[str, Any] | None,
    path: str | Path,
    parts: Mapping[str, Any],
    rng: np.random.Generator,
    stopper: EarlyStopping,
) -> dict[str, Any]:
    """Put a checkpoint's state (from `load_checkpoint(path)`) back into `parts`, the generators and
    `stopper`; return its progress (the `PROGRESS_KEYS`). CheckpointError when the weights or the
    optimiser do not fit this model and configuration. With `state` None (a new run): nothing, `{}`."""
    if state is None:
        return {}
    try:
        for key in ("model", "combiner", "optimizer", "scheduler"):
            parts[key].load_state_dict(state[key])
    except (RuntimeError, ValueError, KeyError) as error:
        raise CheckpointError(
            f"checkpoint {path} does not fit this model and configuration ({error}): "
            "delete it or run without --resume"
        ) from error
    parts["sampler"].load_state_dict(state["sampler"])
    rng.bit_generator.state = state["rng"]
    torch.set_rng_state(state["torch_rng"])
    stopper.__dict__.update(state["stopper"])
    return {key: state.get(key, PROGRESS_DEFAULTS.get(key)) for key in PROGRESS_KEYS}
