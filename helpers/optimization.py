"""The optimiser and the learning-rate schedule: AdamW over parameter groups, warm-up and decay,
gradual unfreezing, gradient clipping."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import get_linear_schedule_with_warmup

from helpers.freezing import parameter_groups
from helpers.losses import LossCombiner
from helpers.model import MultiTaskModel
from helpers.training_config import TrainingConfig


def make_optimizer(
    model: MultiTaskModel, combiner: LossCombiner, config: TrainingConfig
) -> torch.optim.AdamW:
    """AdamW over the model's trainable parameter groups (see `freezing.parameter_groups`), plus the
    learned log-variances under `uncertainty` weighting, at their own rate (`config.loss_weight_lr`,
    by default the heads' rate) and without weight decay; ValueError when every parameter is frozen."""
    groups = parameter_groups(
        model, config.encoder_lr, config.head_lr, config.layer_decay, config.weight_decay
    )
    if config.loss_weighting == "uncertainty":
        groups.append(  # no weight decay: it would pull the log-variances to 0, i.e. the weights to 1
            {
                "name": "loss weights",
                "params": list(combiner.parameters()),
                "lr": config.head_lr if config.loss_weight_lr is None else config.loss_weight_lr,
                "weight_decay": 0.0,
            }
        )
    if not groups:
        raise ValueError("nothing to train: every parameter is frozen")
    return torch.optim.AdamW(groups)


def make_scheduler(
    optimizer: torch.optim.Optimizer, total_steps: int, config: TrainingConfig
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over `config.warmup_fraction` of the steps, then linear decay to zero; under
    `config.gradual_unfreezing`, each layer's rate is held at zero until its turn."""
    scheduler = get_linear_schedule_with_warmup(
        optimizer, int(config.warmup_fraction * total_steps), total_steps
    )
    if config.gradual_unfreezing:
        scheduler = gradual_unfreezing_schedule(optimizer, scheduler.lr_lambdas[0], total_steps)
    return scheduler


def clip_gradients(optimizer: torch.optim.Optimizer, max_norm: float) -> None:
    """Rescale the gradients of everything the optimiser updates to a total norm of at most `max_norm`."""
    torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], max_norm)


def unfreezing_start_steps(group_names: Sequence[str], total_steps: int) -> dict[str, int]:
    """The step at which each parameter group starts learning under gradual unfreezing.

    The heads (and any group that is not an encoder block) learn from the start, together with the
    top trainable layer; each lower layer joins an equal share of the steps later, the embeddings
    last (Howard & Ruder, 2018).
    """
    blocks = sorted(
        {
            name.removesuffix(" (no decay)")
            for name in group_names
            if name.startswith(("layer", "embeddings"))
        },
        key=lambda block: -1 if block == "embeddings" else int(block.split()[1]),
        reverse=True,
    )
    stage = {block: rank for rank, block in enumerate(blocks)}
    return {
        name: round(stage.get(name.removesuffix(" (no decay)"), 0) * total_steps / max(1, len(blocks)))
        for name in group_names
    }


def gradual_unfreezing_schedule(optimizer: torch.optim.Optimizer, schedule, total_steps: int):
    """The library's warm-up/decay `schedule`, with each layer's learning rate held at zero until its turn.

    Held-back layers keep `requires_grad`, so the frozen-prefix cache stays valid; with a zero
    learning rate (and so zero weight decay) AdamW leaves them unchanged.
    """
    starts = unfreezing_start_steps([group["name"] for group in optimizer.param_groups], total_steps)
    gates = [
        lambda step, start=starts[group["name"]]: 0.0 if step < start else schedule(step)
        for group in optimizer.param_groups
    ]
    return torch.optim.lr_scheduler.LambdaLR(optimizer, gates)
