"""Resuming an interrupted command-line run: where its checkpoint lives, the options that define the
run (stored in the checkpoint, compared on `--resume`), and the refusal to start over it silently."""

from __future__ import annotations

import argparse
from pathlib import Path

from helpers.encoder import resolve_device
from helpers.tool.processes import world_size
from helpers.training_config import CheckpointError, TrainingConfig, check_checkpoint_config, load_checkpoint


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
