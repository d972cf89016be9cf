"""The optimiser and the learning-rate schedule: AdamW over parameter groups, warm-up and decay,
gradient clipping; and the check that stops a run whose loss diverges."""

from __future__ import annotations

import math

import torch
from transformers import get_linear_schedule_with_warmup

from helpers.losses import LossCombiner
from helpers.model import MultiTaskModel
from helpers.training_config import TrainingConfig, TrainingState

# A task's cross-entropy this many times that of a uniform guess, ln(classes), where every run starts,
# means the run diverged: 139 nats for 4 classes, 110 for 3 (a learning rate of 1e3 reaches thousands).
EXPLOSION_FACTOR = 100
LOSS_WEIGHTS = "loss weights"  # the parameter group of uncertainty weighting's log-variances


def _no_weight_decay(name: str) -> bool:
    return name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name


def parameter_groups(
    model: MultiTaskModel,
    encoder_lr: float,
    head_lr: float | None = None,
    layer_decay: float = 1.0,
    weight_decay: float = 0.01,
) -> list[dict]:
    """Optimiser parameter groups with layer-wise learning-rate decay, trainable parameters only.

    The top encoder layer learns at `encoder_lr`, each layer below at `layer_decay` times the one
    above, and the embeddings below the lowest layer; the heads learn at `head_lr` (default
    `encoder_lr`). Biases and LayerNorm weights get no weight decay. Each group carries a `name`
    (for people) and a `block`: 0 for the embeddings, i + 1 for layer i, None for a head.
    """
    head_lr = encoder_lr if head_lr is None else head_lr
    n_layers = len(model.layers)
    blocks = [("embeddings", 0, model.backbone.embeddings, encoder_lr * layer_decay**n_layers)]
    blocks += [
        (f"layer {i}", i + 1, layer, encoder_lr * layer_decay ** (n_layers - 1 - i))
        for i, layer in enumerate(model.layers)
    ]
    blocks += [(f"head: {task}", None, head, head_lr) for task, head in model.heads.items()]
    groups = []
    for name, block, module, lr in blocks:
        named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        for decay, suffix in ((weight_decay, ""), (0.0, " (no decay)")):
            params = [p for n, p in named if _no_weight_decay(n) == (suffix != "")]
            if params:
                groups.append(
                    {"name": name + suffix, "block": block, "params": params, "lr": lr, "weight_decay": decay}
                )
    return groups


def make_optimizer(
    model: MultiTaskModel, combiner: LossCombiner, config: TrainingConfig
) -> torch.optim.AdamW:
    """AdamW over the model's trainable parameter groups (see `parameter_groups`), plus the
    learned log-variances under `uncertainty` weighting, at their own rate (`config.loss_weight_lr`,
    by default the heads' rate; constant, see `make_scheduler`) and without weight decay; ValueError
    when every parameter is frozen."""
    groups = parameter_groups(
        model, config.encoder_lr, config.head_lr, config.layer_decay, config.weight_decay
    )
    if config.loss_weighting == "uncertainty":
        groups.append(  # no weight decay: it would pull the log-variances to 0, i.e. the weights to 1
            {
                "name": LOSS_WEIGHTS,
                "block": None,
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
    """Linear warm-up over `config.warmup_fraction` of the steps, then linear decay to zero.

    The learned loss weights of uncertainty weighting (the `LOSS_WEIGHTS` group) keep a constant
    rate: their targets move with the task losses all run long, and a decaying rate would freeze
    them wherever the schedule ends instead of letting them track the losses.
    """
    scheduler = get_linear_schedule_with_warmup(
        optimizer, int(config.warmup_fraction * total_steps), total_steps
    )
    names = [group.get("name") for group in optimizer.param_groups]
    if LOSS_WEIGHTS in names:
        lambdas = list(scheduler.lr_lambdas)
        lambdas = lambdas * len(names) if len(lambdas) == 1 else lambdas
        lambdas[names.index(LOSS_WEIGHTS)] = _constant
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambdas)
    return scheduler


def _constant(step: int) -> float:
    return 1.0


def clip_gradients(optimizer: torch.optim.Optimizer, max_norm: float) -> None:
    """Rescale the gradients of everything the optimiser updates to a total norm of at most `max_norm`."""
    torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], max_norm)


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite, or exploded: the run stops before its weights are used."""


def check_divergence(
    state: TrainingState, config: TrainingConfig, loss: torch.Tensor, task_loss: torch.Tensor, classes: int
) -> None:
    """TrainingDiverged, naming the step, the learning rates and what to try, when the combined
    `loss` (a scalar) is NaN or infinite, or the batch's task loss `task_loss` (a cross-entropy over
    `classes` labels) exceeds `EXPLOSION_FACTOR` times ln(`classes`), a uniform guess's loss."""
    value, task_value = float(loss.detach()), float(task_loss.detach())
    limit = EXPLOSION_FACTOR * math.log(max(classes, 2))
    if math.isfinite(value) and math.isfinite(task_value) and task_value <= limit:
        return
    what = f"the loss is {value:g}" if not math.isfinite(value) else f"the task loss reached {task_value:.4g}"
    raise TrainingDiverged(
        f"training diverged at step {state.step + 1} (epoch {state.epoch + 1}): {what} (a uniform guess "
        f"scores {math.log(max(classes, 2)):.3g}); learning rates: encoder {config.encoder_lr:g}, heads "
        f"{config.head_lr:g}. Its weights are unusable and nothing more is saved (a checkpoint of an "
        f"earlier epoch stays as it was). Try learning rates 10 to 100 times lower (defaults: encoder "
        f"{TrainingConfig.encoder_lr:g}, heads {TrainingConfig.head_lr:g}), "
        f"or check the data for broken labels."
    )
