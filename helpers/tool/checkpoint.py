"""Checkpoints: a run's `TrainingState` written after every epoch, and an interrupted run resumed from it.

`train_with_checkpoints` is `train_multitask` with a checkpoint file: it writes the state there
(atomically) after every epoch, and with `resume=True` goes on from it, bit for bit. For the command
line: where a run's checkpoint lives, the options that define the run (stored in the checkpoint,
compared on `--resume`), and the refusal to start over it silently.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from helpers.checks import check_bool
from helpers.encoder import resolve_device
from helpers.model import MultiTaskModel
from helpers.task_data import TaskData
from helpers.tool.files import atomic_write, existing_ancestor
from helpers.tool.processes import world_size
from helpers.training import train_multitask
from helpers.training_config import TrainingConfig, TrainingResult, TrainingState


def checkpoint_path(out: Path) -> Path:
    """Where a run saving to `out` keeps its per-epoch checkpoint (beside `out`, hidden)."""
    return out.parent / f".{out.name}.checkpoint.pt"


# the options that define a run (stored in its checkpoint; --resume must repeat them)
RUN_OPTIONS = (
    "epochs", "max_train_per_task", "max_eval_per_task", "freeze_backbone", "unfreeze_top_k",
    "sampling", "loss_weighting", "class_weighting", "punctuation_dropout", "gradient_checkpointing", "seed",
    "batch_size", "encoder_lr", "head_lr", "head", "loss_weight_lr", "linear_probe_epochs", "linear_probe_lr",
    "max_length", "probe_heads",
)  # fmt: skip


def run_options(args: argparse.Namespace) -> dict:
    """The options of `args` that define the run, as plain values (for the checkpoint), with the
    number of processes and the kind of device, which change the numbers too."""
    options = {name: getattr(args, name) for name in RUN_OPTIONS}
    return {**options, "processes": world_size(), "device": resolve_device(args.device).type}


def check_resume_options(parser: argparse.ArgumentParser, state: dict, args: argparse.Namespace) -> None:
    """parser.error naming every option that differs from the interrupted run's (its checkpoint's)."""
    stored = state["run_options"]
    differing = [
        f"{'--' if name in RUN_OPTIONS else 'torchrun ' if name == 'processes' else ''}"
        f"{name.replace('_', '-')} {stored.get(name)!r} then, {value!r} now"
        for name, value in run_options(args).items()
        if stored.get(name) != value
    ]
    if differing:
        parser.error(
            "--resume: use the options of the interrupted run; these differ: " + "; ".join(differing)
        )


def check_checkpoint(parser, args: argparse.Namespace, config: TrainingConfig, first_process: bool):
    """The interrupted run's state with --resume (its options and configuration checked); None for a
    new run, which may not replace an interrupted run's checkpoint unless told to (--restart)."""
    path = checkpoint_path(args.out)
    if not args.resume:
        if path.exists() and not args.restart:
            parser.error(
                f"an interrupted run left its checkpoint at {path}: add --resume (with the same options) to "
                "continue it, or --restart to delete it and start over"
            )
        if args.restart and first_process:
            path.unlink(missing_ok=True)
        return None
    try:  # read once: the options are compared first (they name what differs), then the rest
        state = load_checkpoint(path)
        check_resume_options(parser, state, args)
        check_checkpoint_config(state, config, path)
    except FileNotFoundError:
        parser.error(f"--resume: no checkpoint to resume from at {path}")
    except CheckpointError as error:
        parser.error(f"--resume: {error}")
    return state


RANDOM_STATES = ("rng", "torch_rng", "cuda_rng")  # the generators a run draws from, in its checkpoint
CHECKPOINT_KEYS = (*TrainingState.PARTS, *TrainingState.PROGRESS, *RANDOM_STATES, "config", "run_options")


class CheckpointError(ValueError):
    """A training checkpoint that cannot be read, or that was written for another run."""


START_OVER = "to start over, delete it (the command line's --restart does) and run without --resume"


def save_checkpoint(
    path: str | Path, state: TrainingState, config: TrainingConfig, run_options: Mapping | None = None
) -> None:
    """Write `state`, `config` and `run_options` (plain values, e.g. the CLI's options) to a
    checkpoint, atomically: a crash leaves the previous checkpoint in place."""
    checkpoint = {"config": asdict(config), "run_options": dict(run_options or {}), **state.state_dict()}
    with atomic_write(path) as handle:
        torch.save(checkpoint, handle)


def load_checkpoint(path: str | Path, config: TrainingConfig | None = None) -> dict:
    """Read a checkpoint written by `train_with_checkpoints`; nothing in it can run code.

    FileNotFoundError when `path` is missing; CheckpointError (saying how to start over) when it is
    damaged, foreign or incomplete, or `config` differs from the run that wrote it (but `progress`).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist: run without --resume (resume=False)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # random bytes, an empty or truncated file, a pickle with code in it
        raise CheckpointError(
            f"checkpoint {path} is unreadable ({type(error).__name__}); {START_OVER}"
        ) from None
    missing = [key for key in CHECKPOINT_KEYS if not isinstance(state, dict) or key not in state]
    if missing:
        raise CheckpointError(
            f"checkpoint {path} is unreadable (it lacks {', '.join(missing)}); {START_OVER}"
        )
    if config is not None:
        check_checkpoint_config(state, config, path)
    return state


def check_checkpoint_config(state: Mapping[str, Any], config: TrainingConfig, path) -> None:
    """CheckpointError naming the fields (all but `progress`) in which `config` differs from the
    configuration of the run that wrote the checkpoint `state`."""
    stored = {**state["config"], "progress": config.progress}
    differing = sorted(name for name, value in asdict(config).items() if stored.get(name) != value)
    if differing:
        raise CheckpointError(
            f"checkpoint {path} was written with a different training configuration "
            f"({', '.join(differing)}): use the same options as the interrupted run; {START_OVER}"
        )


def checkpoint_to_resume(checkpoint: str | Path, resume: bool | Mapping[str, Any], config: TrainingConfig):
    """The checkpoint's state to resume from (`resume` itself when it is one already read), or None
    for a new run; TypeError/ValueError/CheckpointError for a checkpoint path that cannot be written
    or a resume that cannot be done, before any work."""
    if not isinstance(checkpoint, str | os.PathLike):
        raise TypeError(f"checkpoint must be a file path (str or Path), got {type(checkpoint).__name__}")
    path = Path(checkpoint)
    if path.is_dir():
        example = path / "run.pt"
        raise ValueError(f"checkpoint={str(checkpoint)!r} is a folder; name a file in it, e.g. {example}")
    if not existing_ancestor(path).is_dir():
        raise ValueError(f"checkpoint={str(checkpoint)!r}: {existing_ancestor(path)} is a file, not a folder")
    if isinstance(resume, Mapping):
        check_checkpoint_config(resume, config, path)
        return resume
    if not check_bool("resume", resume) and path.exists():
        raise ValueError(f"checkpoint {checkpoint} exists (an earlier run's): resume=True or delete it")
    return load_checkpoint(checkpoint, config) if resume else None


def train_with_checkpoints(
    model: MultiTaskModel,
    train: Mapping[str, TaskData],
    validation: Mapping[str, TaskData] | None,
    config: TrainingConfig | None = None,
    *,
    checkpoint: str | Path,
    resume: bool | Mapping[str, Any] = False,
    run_options: Mapping[str, Any] | None = None,
    **loop_options,
) -> TrainingResult:
    """`train_multitask` that writes its `TrainingState` to `checkpoint` after every epoch.

    `resume=True` (or a checkpoint already read with `load_checkpoint`) goes on from the checkpoint,
    bit for bit; `run_options` (plain values, e.g. the command line's options) are stored in it;
    `loop_options` go to `train_multitask`. TypeError/ValueError/CheckpointError before any work for
    a path that cannot be written, an earlier run's checkpoint without `resume`, or one that cannot
    be read or was written with another configuration.
    """
    config = TrainingConfig() if config is None else config
    state = checkpoint_to_resume(checkpoint, resume, config)  # (train_multitask refuses DDP resumes)

    def save(training_state: TrainingState) -> None:
        save_checkpoint(checkpoint, training_state, config, run_options)

    return train_multitask(model, train, validation, config, resume=state, on_epoch_end=save, **loop_options)
