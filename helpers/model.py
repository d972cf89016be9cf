"""The multi-task model: one shared MiniLM encoder, one small classification head per task.

    sentences -> tokenizer -> transformer layers (shared) -> pooling (shared) -> head per task -> logits

Everything up to the pooled sentence embedding is shared by all tasks and trained by all of them;
only the heads are task-specific (hard parameter sharing). The encoder runs its layers in our own
loop, so training can start from a cached hidden state part-way up the stack (`hidden_states_at`,
`encode_from_layer`) when the lower layers are frozen.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Protocol

import numpy as np
import pandas as pd
import torch
import torch.utils.checkpoint
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase
from transformers.masking_utils import create_bidirectional_mask

from helpers.checks import check_bool, check_int, check_number, check_texts
from helpers.encoder import (
    POOLING_STRATEGIES,
    batch_order,
    load_encoder,
    pool,
    resolve_device,
    tokenize_texts,
    warn_if_cut,
)

SERIES_MAX_LENGTH = 128  # tokens; longer sentences are rare in our data and cost quadratic attention time
# A longer text keeps its first and its last tokens, half each: sentence type needs the opening (a
# verb, a wh-word) and the final mark, sentiment a review's opening and its verdict at the end
# (head + tail, the best of Sun et al., 2019's truncations). 5 of the 29,974 sentences in data/
# are longer than 128 tokens (1 sentence type, 4 sentiment; at most 203 tokens).
TRUNCATION = "start_and_end"
HEAD_KINDS = ("linear", "mlp")


class FrozenPrefixCache(Protocol):
    """One task's sentences after the frozen lower layers, computed once (`helpers.tool.prefix_cache`):
    what the loop and `evaluate` read from it. A speed-up only: without it they run those layers."""

    prefix: int  # the layers it has run: the model's frozen prefix

    def __len__(self) -> int: ...  # the sentences, in the task data's order

    def encode(self, model: MultiTaskModel, indices: Sequence[int]) -> torch.Tensor:
        """Sentence embeddings (len(indices), width) of those sentences, running the layers above."""

    def subset(self, indices: Sequence[int]) -> FrozenPrefixCache:
        """The cache of those sentences only, in that order (a process's shard)."""


@contextmanager
def modes_restored(module: nn.Module) -> Iterator[nn.Module]:
    """On exit, put every submodule back into its own train/eval mode, whatever the block switched.

    `module.train(was_training)` is not enough: it sets one mode for all submodules, so a frozen
    backbone that was in eval mode would come back with dropout on.
    """
    modes = [(submodule, submodule.training) for submodule in module.modules()]
    try:
        yield module
    finally:
        for submodule, training in modes:
            submodule.training = training


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Eval mode (dropout off) inside the block; every submodule's own mode is restored afterwards."""
    with modes_restored(module):
        module.eval()
        yield module


def _check_task_labels(task_labels) -> dict[str, list[str]]:
    if not isinstance(task_labels, Mapping):
        raise TypeError(
            "task_labels must map each task to its label names, e.g. "
            f"{{'sentiment': ['negative', 'positive']}}, got {type(task_labels).__name__}"
        )
    if not task_labels:
        raise ValueError("a multi-task model needs at least one task")
    checked = {}
    for task, labels in task_labels.items():
        if not isinstance(task, str) or not task or "." in task:
            raise ValueError(f"task names must be non-empty strings without '.', got {task!r}")
        if hasattr(nn.ModuleDict(), task):  # the heads live in an nn.ModuleDict keyed by task
            raise ValueError(f"task name {task!r} is reserved (an nn.ModuleDict attribute); rename the task")
        if isinstance(labels, str) or not isinstance(labels, Iterable):
            raise TypeError(f"the labels of task {task!r} must be a list of names, got {labels!r}")
        labels = list(labels)
        if len(labels) < 2 or not all(isinstance(label, str) for label in labels):
            raise ValueError(f"task {task!r} needs at least 2 label names (strings), got {labels!r}")
        if len(set(labels)) != len(labels):
            raise ValueError(f"task {task!r} has repeated label names: {labels!r}")
        checked[task] = labels
    return checked


def train_mode_above(model: MultiTaskModel, prefix: int) -> None:
    """Training mode (dropout on) above the frozen `prefix` layers; the frozen prefix (and the
    embeddings, when `prefix` > 0) runs as in inference."""
    model.train()
    if prefix > 0:
        model.backbone.embeddings.eval()
        for layer in model.layers[:prefix]:
            layer.eval()


@contextmanager
def training_settings(model: MultiTaskModel, gradient_checkpointing: bool) -> Iterator[None]:
    """The run's gradient-checkpointing setting inside; the model's modes and setting restored after,
    also when training is interrupted."""
    before = model.gradient_checkpointing
    model.gradient_checkpointing = gradient_checkpointing
    try:
        with modes_restored(model):
            yield
    finally:
        model.gradient_checkpointing = before


class TaskHead(nn.Module):
    """A task-specific classifier on top of the shared sentence embedding.

    `linear`: dropout, then one linear layer (a logistic regression on the embedding).
    `mlp`: linear -> GELU -> dropout -> linear, for decision boundaries a single layer cannot draw.
    """

    def __init__(
        self, input_dim: int, n_labels: int, kind: str = "linear", hidden_dim: int = 256, dropout: float = 0.1
    ):
        super().__init__()
        if kind == "linear":
            self.layers = nn.Sequential(nn.Dropout(dropout), nn.Linear(input_dim, n_labels))
        elif kind == "mlp":
            self.layers = nn.Sequential(
                nn.Linear(input_dim, hidden_dim),
                nn.GELU(),
                nn.Dropout(dropout),
                nn.Linear(hidden_dim, n_labels),
            )
        else:
            raise ValueError(f"unknown head kind {kind!r}; choose one of {HEAD_KINDS}")

    def forward(self, sentence_embeddings: torch.Tensor) -> torch.Tensor:
        """(batch, width) sentence embeddings -> (batch, n_labels) logits."""
        return self.layers(sentence_embeddings)


class MultiTaskModel(nn.Module):
    """A shared transformer encoder with mean (or cls/max) pooling and one head per task.

    With the defaults (mean pooling, L2 normalisation) the shared encoder computes the sentence
    embeddings of notebook 01, i.e. those of `SentenceTransformer.encode(normalize_embeddings=True)`.

    `task_labels` maps each task to its label names, e.g.
    `{"sentence_type": ["statement", "question", "command", "exclamation"], "sentiment": [...]}`;
    logits columns follow that order. Without `backbone`/`tokenizer`, the pre-trained
    all-MiniLM-L6-v2 is loaded offline. A new (or loaded) model is in eval mode.

    Raises TypeError/ValueError, before loading anything, for malformed `task_labels` (at least 2
    distinct string labels per task), an unknown pooling or head, `dropout` outside [0, 1),
    `max_length` outside 1..512 (the backbone's positions) or an unavailable device.
    """

    def __init__(
        self,
        task_labels: Mapping[str, Sequence[str]],
        backbone: PreTrainedModel | None = None,
        tokenizer: PreTrainedTokenizerBase | None = None,
        *,
        pooling: str = "mean",
        normalize: bool = True,
        head: str = "linear",
        head_hidden_dim: int = 256,
        dropout: float = 0.1,
        max_length: int = SERIES_MAX_LENGTH,
        device: str | torch.device | None = None,
    ):
        super().__init__()
        task_labels = _check_task_labels(task_labels)
        if pooling not in POOLING_STRATEGIES:
            raise ValueError(f"unknown pooling {pooling!r}; choose one of {POOLING_STRATEGIES}")
        if head not in HEAD_KINDS:
            raise ValueError(f"unknown head kind {head!r}; choose one of {HEAD_KINDS}")
        check_bool("normalize", normalize)
        check_int("head_hidden_dim", head_hidden_dim, 1)
        check_number("dropout", dropout, 0.0, 1.0, high_open=True)
        if (backbone is None) != (tokenizer is None):
            raise ValueError("pass both backbone and tokenizer, or neither")
        device = resolve_device(device)  # an unavailable device fails before the encoder loads
        if backbone is None:
            encoder = load_encoder()
            backbone, tokenizer = encoder[0].auto_model, encoder[0].tokenizer
        check_int("max_length", max_length, 1, backbone.config.max_position_embeddings)
        backbone.pooler = (
            None  # BERT's pooler is unused by our pooling; dropping it keeps every parameter trained
        )
        self.backbone = backbone
        self.tokenizer = tokenizer
        # Recompute each trainable layer's activations in the backward pass instead of keeping them:
        # less memory, about a fifth more time (`TrainingConfig.gradient_checkpointing` sets it).
        self.gradient_checkpointing = False
        self.task_labels = task_labels
        self.config = {
            "pooling": pooling,
            "normalize": normalize,
            "head": head,
            "head_hidden_dim": head_hidden_dim,
            "dropout": dropout,
            "max_length": max_length,
        }
        width = backbone.config.hidden_size
        self.heads = nn.ModuleDict(
            {
                task: TaskHead(width, len(labels), head, head_hidden_dim, dropout)
                for task, labels in self.task_labels.items()
            }
        )
        self.eval()  # a new model predicts deterministically; training switches dropout on itself
        self.to(device)

    # ----- the forward pass, in pieces ---------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def layers(self) -> nn.ModuleList:
        """The transformer layers of the shared encoder, bottom first."""
        return self.backbone.encoder.layer

    def tokenize(self, texts: str | Iterable[str]) -> dict[str, torch.Tensor]:
        """Raw sentences -> a padded batch on the model's device: `input_ids`, `attention_mask` (and
        `token_type_ids`), each (n, longest length <= `max_length`), padded on the right whatever the
        tokenizer's settings; a longer text keeps its first and last tokens (`TRUNCATION`); TypeError
        for a non-string."""
        batch = tokenize_texts(self.tokenizer, texts, self.config["max_length"], TRUNCATION)
        return {name: tensor.to(self.device) for name, tensor in batch.items()}

    def warn_if_cut(self, texts: Sequence[str]) -> int:
        """How many `texts` are longer than `max_length` tokens (`tokenize` cuts them, keeping their
        start and end); one TruncationWarning saying so when there are any."""
        return warn_if_cut(
            self.tokenizer, texts, self.config["max_length"], TRUNCATION,
            "to keep more, build the model with a larger max_length, at most 512 (CLI: --max-length)",
        )  # fmt: skip

    def hidden_states_at(self, batch: Mapping[str, torch.Tensor], layer_index: int) -> torch.Tensor:
        """Token states (batch, tokens, width) after the embeddings and the lowest `layer_index` layers."""
        hidden = self.backbone.embeddings(
            input_ids=batch["input_ids"], token_type_ids=batch.get("token_type_ids")
        )
        return self.run_layers(hidden, batch["attention_mask"], 0, layer_index)

    def run_layers(
        self, hidden: torch.Tensor, attention_mask: torch.Tensor, start: int, stop: int | None = None
    ) -> torch.Tensor:
        """Run the layers `start` to `stop - 1` (bottom first): token states (batch, tokens, width) in
        and out; `attention_mask` (batch, tokens) is 1 for real tokens, 0 for padding."""
        mask = self._attention_bias(attention_mask, hidden)
        for layer in self.layers[start:stop]:
            if self.gradient_checkpointing and layer.training and torch.is_grad_enabled():
                # the layer's dropout masks are replayed exactly (the RNG state is saved with it)
                hidden = torch.utils.checkpoint.checkpoint(layer, hidden, mask, use_reentrant=False)
            else:
                hidden = layer(hidden, mask)
        return hidden

    def encode_from_layer(
        self, hidden: torch.Tensor, attention_mask: torch.Tensor, layer_index: int
    ) -> torch.Tensor:
        """Run the layers from `layer_index` up over token states (batch, tokens, width), pool and
        normalise: sentence embeddings (batch, width), with gradients."""
        hidden = self.run_layers(hidden, attention_mask, layer_index)
        sentence = pool(hidden, attention_mask, self.config["pooling"])
        return nn.functional.normalize(sentence, dim=-1) if self.config["normalize"] else sentence

    def encode(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Sentence embeddings of a tokenised batch (differentiable, unlike `SentenceTransformer.encode`)."""
        return self.encode_from_layer(self.hidden_states_at(batch, 0), batch["attention_mask"], 0)

    def classify(
        self, sentence_embeddings: torch.Tensor, tasks: Iterable[str] | None = None
    ) -> dict[str, torch.Tensor]:
        """Every head (or those of `tasks`) on sentence embeddings (batch, width):
        `{task: logits (batch, n_labels)}`."""
        tasks = self.task_labels if tasks is None else tasks
        return {task: self.heads[task](sentence_embeddings) for task in tasks}

    def forward(
        self, batch: Mapping[str, torch.Tensor], tasks: Iterable[str] | None = None
    ) -> dict[str, torch.Tensor]:
        """Tokenised batch in, `{task: logits (batch, n_labels)}` out."""
        return self.classify(self.encode(batch), tasks)

    def _attention_bias(self, attention_mask: torch.Tensor, hidden: torch.Tensor):
        return create_bidirectional_mask(
            config=self.backbone.config, inputs_embeds=hidden, attention_mask=attention_mask
        )

    # ----- inference on raw text -----------------------------------------------------------------
    def predict_proba(self, texts: str | Iterable[str], batch_size: int = 64) -> dict[str, np.ndarray]:
        """Class probabilities per task: `{task: float32 array (n, n_labels)}`, columns in label order.

        Runs in eval mode (dropout off) and leaves every submodule's mode as it found it, so two
        calls give identical results. Raises TypeError for a non-string text (naming its position)
        and for a `batch_size` that is not an integer, ValueError for `batch_size < 1`. A text's
        probabilities do not depend on the others (padding is on the right, masked); a text longer
        than `max_length` tokens keeps its first and last tokens, with a TruncationWarning.
        """
        texts = check_texts(texts)
        check_int("batch_size", batch_size, 1)
        self.warn_if_cut(texts)
        probabilities = {
            task: np.zeros((len(texts), len(labels)), np.float32) for task, labels in self.task_labels.items()
        }
        order = batch_order(texts)  # similar lengths share a batch
        with eval_mode(self), torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                rows = order[start : start + batch_size]
                logits = self(self.tokenize([texts[i] for i in rows]))
                for task, task_logits in logits.items():
                    probabilities[task][rows] = task_logits.float().softmax(dim=-1).cpu().numpy()
        return probabilities

    def predict(self, texts: str | Iterable[str], batch_size: int = 64) -> dict[str, list[str]]:
        """The most likely label per task: `{task: [label, ...]}` (errors as in `predict_proba`)."""
        probabilities = self.predict_proba(texts, batch_size)
        return {
            task: [self.task_labels[task][i] for i in probs.argmax(axis=1)]
            for task, probs in probabilities.items()
        }

    # ----- bookkeeping ---------------------------------------------------------------------------
    def parameter_summary(self) -> pd.DataFrame:
        """Trainable and frozen parameter counts per component (embeddings, each layer, each head)."""
        components = [("embeddings", self.backbone.embeddings)]
        components += [(f"layer {i}", layer) for i, layer in enumerate(self.layers)]
        components += [(f"head: {task}", head) for task, head in self.heads.items()]
        rows = []
        for name, module in components:
            trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
            total = sum(p.numel() for p in module.parameters())
            rows.append({"component": name, "trainable": trainable, "frozen": total - trainable})
        summary = pd.DataFrame(rows)
        total_row = {
            "component": "total",
            "trainable": summary.trainable.sum(),
            "frozen": summary.frozen.sum(),
        }
        return pd.concat([summary, pd.DataFrame([total_row])], ignore_index=True)
