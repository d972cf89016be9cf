"""Train the series' two-task model on the committed data and save it (`--help` lists the options).

    python -m helpers.tool.cli --out models/mtl [--epochs N] [--unfreeze-top-k K] ...

LP-FT (Kumar et al., 2022): `--probe-heads` starts the heads at the linear probe of the frozen
encoder's embeddings (logistic regression, penalty by cross-validation: notebook 03's exact
linear-probe stage, its recipe); `--linear-probe-epochs N` instead trains the heads alone for N
epochs. Either way the encoder is fine-tuned from there. `--punctuation-dropout P`
also selects the model on validation sentences that lose their final mark with probability P. It
ends with one JSON line of validation and test metrics; the model (`helpers.tool.saving`) and
`training.json` (configuration and history) are saved together, in one atomic step.

Nothing is silently lost or replaced: `--out` must be new or empty, or hold a model saved here
before and `--overwrite` (replaced only once the new one is complete); one run at a time per `--out`
(a lock, `.OUT.lock`); the checkpoint beside it (`.OUT.checkpoint.pt`, after every epoch) is
continued with `--resume`, and a new run refuses to start beside one unless told `--restart`; a
diverging loss stops the run with exit status 1 and saves nothing; Ctrl-C saves nothing (exit 130).

Several processes, one per CPU socket or GPU (DistributedDataParallel; `--batch-size` is per
process; rank 0 evaluates, logs and saves):

    torchrun --nproc_per_node 2 -m helpers.tool.cli --out models/mtl ...
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from pathlib import Path

import transformers

from helpers.analysis.lp_ft import probe_heads, train_heads_first
from helpers.checks import check_int, check_number
from helpers.data import TASK_LABELS
from helpers.data.tasks import limit_per_task, load_task_data
from helpers.encoder import resolve_device
from helpers.evaluation import evaluate
from helpers.freezing import freeze_backbone, frozen_prefix_length, unfreeze_top_k
from helpers.losses import CLASS_WEIGHTINGS
from helpers.model import HEAD_KINDS, SERIES_MAX_LENGTH, MultiTaskModel
from helpers.optimization import TrainingDiverged
from helpers.task_data import SAMPLING_STRATEGIES
from helpers.tool.checkpoint import check_checkpoint, checkpoint_path, run_options, train_with_checkpoints
from helpers.tool.files import strict_json
from helpers.tool.prefix_cache import build_prefix_caches
from helpers.tool.processes import (
    OutputLockError,
    exclusive_output,
    process_group,
    seed_everything,
    world_size,
)
from helpers.tool.saving import SaveTargetError, check_save_target, is_saved_model, save_model
from helpers.training_config import TrainingConfig


def _bounded(kind, low=None, high=None, name="value"):
    """An argparse type: `kind` (int or float) parsed from the text, checked by `check_int`/`check_number`."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a valid {kind.__name__}") from None
        try:
            return check_int(name, value, low, high) if kind is int else check_number(name, value, low, high)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return parse


def build_parser() -> argparse.ArgumentParser:
    description = "Train the two-task (sentence type + sentiment) model."
    # no abbreviations: --rest must not mean --restart, nor --over --overwrite
    parser = argparse.ArgumentParser(
        prog="python -m helpers.tool.cli", description=description, allow_abbrev=False
    )
    parser.add_argument("--out", required=True, type=Path, help="directory to save the trained model in")
    parser.add_argument("--epochs", type=_bounded(int, 1, name="--epochs"), default=3)
    parser.add_argument(
        "--max-train-per-task", type=_bounded(int, 1, name="--max-train-per-task"), default=None,
        help="a seeded, stratified subset of the training data per task (default: all)",
    )  # fmt: skip
    parser.add_argument(
        "--max-eval-per-task", type=_bounded(int, 1, name="--max-eval-per-task"), default=None,
        help="evaluate on a seeded, stratified subset of validation and test (default: all; for quick runs)",
    )  # fmt: skip
    freezing = parser.add_mutually_exclusive_group()
    freezing.add_argument("--freeze-backbone", action="store_true", help="train the heads only")
    freezing.add_argument(
        "--unfreeze-top-k",
        type=_bounded(int, 0, 6, name="--unfreeze-top-k"),
        default=None,
        metavar="K",
        help="freeze the encoder except its top K layers (0-6)",
    )
    parser.add_argument("--sampling", choices=SAMPLING_STRATEGIES, default="proportional")
    parser.add_argument("--loss-weighting", choices=("sum", "uncertainty"), default="sum")
    parser.add_argument(
        "--loss-weight-lr",
        type=_bounded(float, 0.0, name="--loss-weight-lr"),
        default=None,
        help="with --loss-weighting uncertainty: the learning rate of the log-variances (default: --head-lr)",
    )
    parser.add_argument(
        "--probe-heads",
        action="store_true",
        help="LP-FT, exact: start the heads at a tuned logistic-regression probe of the frozen encoder's "
        "embeddings of the training data, then fine-tune (notebook 03's recipe)",
    )
    parser.add_argument(
        "--linear-probe-epochs",
        type=_bounded(int, 0, name="--linear-probe-epochs"),
        default=0,
        metavar="N",
        help="LP-FT: first train the heads alone on the frozen encoder for N epochs, then fine-tune",
    )
    parser.add_argument(
        "--linear-probe-lr",
        type=_bounded(float, 0.0, name="--linear-probe-lr"),
        default=1e-2,
        help="the heads' learning rate while they train alone (--linear-probe-epochs)",
    )
    parser.add_argument(
        "--class-weighting",
        choices=CLASS_WEIGHTINGS,
        default="none",
        help="'balanced': weigh each class's examples so every class counts the same in its task's loss",
    )
    parser.add_argument(
        "--punctuation-dropout",
        type=_bounded(float, 0.0, 1.0, name="--punctuation-dropout"),
        default=0.0,
        help="probability of stripping a sentence-type example's final punctuation while training",
    )
    parser.add_argument(
        "--gradient-checkpointing", action="store_true",
        help="recompute activations in the backward pass: less memory, about a fifth slower",
    )  # fmt: skip
    parser.add_argument("--seed", type=_bounded(int, 0, 2**32 - 1, name="--seed"), default=0)
    parser.add_argument("--batch-size", type=_bounded(int, 1, name="--batch-size"), default=32)
    parser.add_argument("--encoder-lr", type=_bounded(float, 0.0, name="--encoder-lr"), default=5e-5)
    parser.add_argument("--head-lr", type=_bounded(float, 0.0, name="--head-lr"), default=1e-3)
    parser.add_argument("--head", choices=HEAD_KINDS, default="linear")
    parser.add_argument(
        "--max-length", type=_bounded(int, 8, 512, name="--max-length"), default=SERIES_MAX_LENGTH,
        help="tokens per sentence; a longer one keeps its first and last tokens, with a warning",
    )  # fmt: skip
    parser.add_argument("--device", default=None, help="cpu, cuda or mps (default: the best available)")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace a model saved in --out before (nothing else)"
    )  # fmt: skip
    restart = parser.add_mutually_exclusive_group()
    restart.add_argument(
        "--resume", action="store_true",
        help="continue an interrupted run from its last checkpoint (written after every epoch)",
    )  # fmt: skip
    restart.add_argument(
        "--restart", action="store_true",
        help="delete an interrupted run's checkpoint and start over (without it, a run refuses to start)",
    )  # fmt: skip
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def check_output_dir(parser: argparse.ArgumentParser, out: Path, overwrite: bool) -> None:
    """Refuse an --out that saving could destroy (see `check_save_target`): a file, `.`, a folder
    holding other files or containing the working directory; and a previous model without --overwrite."""
    if out.exists() and not out.is_dir():
        parser.error(f"--out {out} is an existing file, not a directory")
    try:
        check_save_target(out)
    except SaveTargetError as error:
        parser.error(f"--out: {error}")
    if is_saved_model(out) and not overwrite:
        parser.error(f"--out {out} already holds a saved model; pass --overwrite to replace it")


def training_config(args: argparse.Namespace) -> TrainingConfig:
    """The run's TrainingConfig from the command line."""
    return TrainingConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        encoder_lr=args.encoder_lr,
        head_lr=args.head_lr,
        sampling=args.sampling,
        loss_weighting=args.loss_weighting,
        loss_weight_lr=args.loss_weight_lr,
        class_weighting=args.class_weighting,
        punctuation_dropout=args.punctuation_dropout,
        gradient_checkpointing=args.gradient_checkpointing,
        seed=args.seed,
        progress=not args.no_progress,
    )


def selection_split(validation: dict, rate: float, seed: int) -> dict:
    """The validation split to select on with punctuation dropout: the same share `rate` of its
    sentence types lose their final mark (seeded), the other tasks unchanged."""
    strip = {"sentence_type"}
    return {
        task: data.with_punctuation_dropout(rate, seed) if task in strip else data
        for task, data in validation.items()
    }


def shared_caches(model: MultiTaskModel, train: dict, validation: dict, config: TrainingConfig) -> dict:
    """The frozen prefix's caches, built once for both LP-FT stages; {} when nothing is frozen. Under
    DDP every process builds them for all the data, and the loop trains each on its shard."""
    prefix = frozen_prefix_length(model)
    if prefix == 0:
        return {}
    caches = {
        "train_caches": build_prefix_caches(model, train, prefix),
        "validation_caches": build_prefix_caches(model, validation, prefix),
    }
    stripped = [task for task in config.punctuation_tasks if task in train]
    if config.punctuation_dropout > 0 and stripped:
        caches["stripped_caches"] = build_prefix_caches(
            model, {task: train[task].without_terminal_punctuation() for task in stripped}, prefix
        )
    return caches


def heads_config(args: argparse.Namespace) -> TrainingConfig:
    """The LP stage's TrainingConfig (`--linear-probe-epochs`): the heads alone, a fixed budget."""
    return TrainingConfig(
        epochs=args.linear_probe_epochs,
        batch_size=args.batch_size,
        head_lr=args.linear_probe_lr,
        class_weighting=args.class_weighting,
        keep_best=False,
        seed=args.seed,
        progress=not args.no_progress,
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # once, here: every check, the lock and the checkpoint use the same path, whatever links lead to it
    args.out = args.out.expanduser().resolve()
    # everything that can be wrong is checked here, before the model and the data load
    check_output_dir(parser, args.out, args.overwrite)
    if args.loss_weight_lr is not None and args.loss_weighting != "uncertainty":
        parser.error(
            "--loss-weight-lr sets the rate of learned loss weights: use it with --loss-weighting uncertainty"
        )
    if args.linear_probe_epochs and args.freeze_backbone:
        parser.error(
            "--linear-probe-epochs trains the heads before fine-tuning the encoder; with --freeze-backbone "
            "nothing is fine-tuned after it: use --epochs alone"
        )
    if args.probe_heads and (args.linear_probe_epochs or args.freeze_backbone):
        parser.error(
            "--probe-heads is the linear-probe stage before fine-tuning the encoder: use it without "
            + ("--linear-probe-epochs (the other way to train the heads first)" if args.linear_probe_epochs
               else "--freeze-backbone (nothing would be fine-tuned after it)")
        )  # fmt: skip
    if args.probe_heads and args.head != "linear":
        parser.error("--probe-heads copies a linear probe into the heads: it needs --head linear")
    try:
        resolve_device(args.device)
        config = training_config(args)
    except (TypeError, ValueError) as error:
        parser.error(str(error))
    if args.resume and world_size() > 1:
        parser.error("--resume works in a single process only")
    if world_size() > 1 and not {"RANK", "MASTER_ADDR"} <= set(os.environ):
        parser.error(f"WORLD_SIZE={world_size()} is set, but this process was not started by torchrun")
    first_process = world_size() == 1 or int(os.environ["RANK"]) == 0  # one lock for all processes
    previous = signal.signal(signal.SIGTERM, _interrupted)  # `kill`, a scheduler's time limit: as Ctrl-C
    try:
        with exclusive_output(args.out) if first_process else contextlib.nullcontext():
            check_output_dir(parser, args.out, args.overwrite)  # again, now that no other run can write
            state = check_checkpoint(parser, args, config, first_process)
            with process_group(args.device) as (rank, device):
                return train_and_save(args, config, rank, device, state)
    except OutputLockError as error:
        parser.error(str(error))
    except (KeyboardInterrupt, TrainingDiverged) as error:
        kept = checkpoint_path(args.out)
        diverged = isinstance(error, TrainingDiverged)
        then = "--restart to start over" if diverged else "add --resume to go on"
        note = f" The last completed epoch is in {kept}: {then}." if kept.is_file() else ""
        print(f"{f'error: {error}' if diverged else 'interrupted'}: nothing saved.{note}", file=sys.stderr)
        return 1 if diverged else 130
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupted(signum, frame) -> None:
    raise KeyboardInterrupt


def train_and_save(
    args: argparse.Namespace, config: TrainingConfig, rank: int, device: str | None, state: dict | None
) -> int:
    seed_everything(args.seed)
    if args.no_progress or rank != 0:
        transformers.utils.logging.disable_progress_bar()

    model = MultiTaskModel(TASK_LABELS, head=args.head, max_length=args.max_length, device=device)
    if args.freeze_backbone:
        freeze_backbone(model)
    elif args.unfreeze_top_k is not None:
        unfreeze_top_k(model, args.unfreeze_top_k)
    train = limit_per_task(load_task_data("train"), args.max_train_per_task, seed=args.seed)
    validation = limit_per_task(load_task_data("validation"), args.max_eval_per_task, seed=args.seed)
    test = limit_per_task(load_task_data("test"), args.max_eval_per_task, seed=args.seed)
    if args.punctuation_dropout > 0:  # select on sentences like those trained on
        validation = selection_split(validation, args.punctuation_dropout, args.seed)
    checkpoint = checkpoint_path(args.out)
    caches, probe_C = {}, None
    if args.probe_heads and state is None:  # a resumed run's checkpoint holds the heads it started from
        probe_C = {task: float(probe.C) for task, probe in probe_heads(model, train, seed=args.seed).items()}
    if args.linear_probe_epochs and state is None:  # a resumed run's checkpoint holds the trained heads
        caches = shared_caches(model, train, validation, config)
        train_heads_first(model, train, heads_config(args), caches.get("train_caches"))
    resume, options = state or False, run_options(args)  # a resumed run goes on from its checkpoint
    result = train_with_checkpoints(
        model, train, validation, config, checkpoint=checkpoint, resume=resume, run_options=options, **caches
    )
    if rank != 0:  # only the first process evaluates and saves
        return 0

    report = {
        "out": str(args.out),
        "best_epoch": result.best_epoch,
        "train_examples": {task: len(examples) for task, examples in train.items()},
        "seconds": round(result.seconds, 1),
        **({"probe_C": probe_C} if probe_C is not None else {}),
        "validation": evaluate(model, validation),
        "test": evaluate(model, test),
    }
    record = {"config": result.config, "history": result.history.to_dict(orient="records"), **report}
    # atomic, with training.json: an interrupted save leaves the previous model (or none) in place
    files = {"training.json": strict_json(record, indent=2) + "\n"}
    try:  # without --overwrite, not even a model that appeared meanwhile is replaced
        save_model(model, args.out, extra_files=files, replace=args.overwrite)
    except SaveTargetError as error:  # keep this run's model all the same, beside it
        elsewhere = args.out.with_name(f"{args.out.name}.{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
        save_model(model, elsewhere, extra_files=files, replace=False)
        checkpoint.unlink(missing_ok=True)
        print(f"error: {error}. This run's model was saved to {elsewhere} instead.", file=sys.stderr)
        return 1
    checkpoint.unlink(missing_ok=True)
    print(strict_json(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
