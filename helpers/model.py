"""The multi-task model: one shared MiniLM encoder, one small classification head per task.

    sentences -> tokenizer -> transformer layers (shared) -> pooling (shared) -> head per task -> logits

Everything up to the pooled sentence embedding is shared by all tasks and trained by all of them;
only the heads are task-specific (hard parameter sharing). The encoder runs its layers in our own
loop, so training can start from a cached hidden state part-way up the stack (`hidden_states_at`,
`encode_from_layer`) when the lower layers are frozen.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.utils.checkpoint
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase
from transformers.masking_utils import create_bidirectional_mask

from helpers.encoder import POOLING_STRATEGIES, batch_order, check_texts, load_encoder, pool

SERIES_MAX_LENGTH = 128  # tokens; longer sentences are rare in our data and cost quadratic attention time
HEAD_KINDS = ("linear", "mlp")
CONFIG_FILE = "multitask_config.json"
HEADS_FILE = "heads.safetensors"
ENCODER_DIR = "encoder"
FORMAT_NAME = "mtl-tutorial/multitask-model"


class NotASavedModelError(FileNotFoundError):
    """A directory passed to `MultiTaskModel.load` is missing or does not hold a saved model."""


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """The device to use: the one asked for, else CUDA or Apple's MPS when available, else the CPU."""
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


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
        return self.layers(sentence_embeddings)


class MultiTaskModel(nn.Module):
    """A shared transformer encoder with mean (or cls/max) pooling and one head per task.

    With the defaults (mean pooling, L2 normalisation) the shared encoder computes the sentence
    embeddings of notebook 01, i.e. those of `SentenceTransformer.encode(normalize_embeddings=True)`.

    `task_labels` maps each task to its label names, e.g.
    `{"sentence_type": ["statement", "question", "command", "exclamation"], "sentiment": [...]}`;
    logits columns follow that order. Without `backbone`/`tokenizer`, the pre-trained
    all-MiniLM-L6-v2 is loaded offline.
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
        if not task_labels:
            raise ValueError("a multi-task model needs at least one task")
        if pooling not in POOLING_STRATEGIES:
            raise ValueError(f"unknown pooling {pooling!r}; choose one of {POOLING_STRATEGIES}")
        if (backbone is None) != (tokenizer is None):
            raise ValueError("pass both backbone and tokenizer, or neither")
        if backbone is None:
            encoder = load_encoder()
            backbone, tokenizer = encoder[0].auto_model, encoder[0].tokenizer
        backbone.pooler = (
            None  # BERT's pooler is unused by our pooling; dropping it keeps every parameter trained
        )
        self.backbone = backbone
        self.tokenizer = tokenizer
        # Recompute each trainable layer's activations in the backward pass instead of keeping them:
        # less memory, about a fifth more time (`TrainingConfig.gradient_checkpointing` sets it).
        self.gradient_checkpointing = False
        self.task_labels = {task: list(labels) for task, labels in task_labels.items()}
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
        self.to(resolve_device(device))

    # ----- the forward pass, in pieces ---------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def layers(self) -> nn.ModuleList:
        """The transformer layers of the shared encoder, bottom first."""
        return self.backbone.encoder.layer

    def tokenize(self, texts: str | Iterable[str]) -> dict[str, torch.Tensor]:
        """Tokenise raw sentences into a padded batch on the model's device."""
        texts = check_texts(texts)
        batch = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.config["max_length"], return_tensors="pt"
        )
        return {name: tensor.to(self.device) for name, tensor in batch.items()}

    def hidden_states_at(self, batch: Mapping[str, torch.Tensor], layer_index: int) -> torch.Tensor:
        """Token states after the embeddings and the lowest `layer_index` transformer layers."""
        hidden = self.backbone.embeddings(
            input_ids=batch["input_ids"], token_type_ids=batch.get("token_type_ids")
        )
        return self.run_layers(hidden, batch["attention_mask"], 0, layer_index)

    def run_layers(
        self, hidden: torch.Tensor, attention_mask: torch.Tensor, start: int, stop: int | None = None
    ) -> torch.Tensor:
        """Run the transformer layers `start` to `stop - 1` (bottom first) over the token states `hidden`."""
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
        """Run the layers from `layer_index` up, pool and normalise: sentence embeddings, with gradients."""
        hidden = self.run_layers(hidden, attention_mask, layer_index)
        sentence = pool(hidden, attention_mask, self.config["pooling"])
        return nn.functional.normalize(sentence, dim=-1) if self.config["normalize"] else sentence

    def encode(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Sentence embeddings of a tokenised batch (differentiable, unlike `SentenceTransformer.encode`)."""
        return self.encode_from_layer(self.hidden_states_at(batch, 0), batch["attention_mask"], 0)

    def classify(
        self, sentence_embeddings: torch.Tensor, tasks: Iterable[str] | None = None
    ) -> dict[str, torch.Tensor]:
        """Apply the task heads to sentence embeddings: `{task: logits}`."""
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
        """Class probabilities per task: `{task: array (n, n_labels)}`, columns in label order."""
        texts = check_texts(texts)
        probabilities = {
            task: np.zeros((len(texts), len(labels)), np.float32) for task, labels in self.task_labels.items()
        }
        order = batch_order(texts)  # similar lengths share a batch
        was_training = self.training
        self.eval()
        try:
            with torch.inference_mode():
                for start in range(0, len(texts), batch_size):
                    rows = order[start : start + batch_size]
                    logits = self(self.tokenize([texts[i] for i in rows]))
                    for task, task_logits in logits.items():
                        probabilities[task][rows] = task_logits.float().softmax(dim=-1).cpu().numpy()
        finally:
            self.train(was_training)
        return probabilities

    def predict(self, texts: str | Iterable[str], batch_size: int = 64) -> dict[str, list[str]]:
        """The most likely label per task: `{task: [label, ...]}`."""
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

    def save(self, directory: str | Path) -> Path:
        """Save encoder, tokenizer, heads (safetensors) and configuration (JSON) into `directory`.

        The files are written to a temporary sibling folder first and moved into place at the end,
        so an interrupted save never leaves a half-written model behind.
        """
        directory = Path(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
        try:
            self.backbone.save_pretrained(staging / ENCODER_DIR, safe_serialization=True)
            self.tokenizer.save_pretrained(staging / ENCODER_DIR)
            heads = {
                name: tensor.detach().cpu().contiguous() for name, tensor in self.heads.state_dict().items()
            }
            save_file(heads, staging / HEADS_FILE)
            config = {"format": FORMAT_NAME, "version": 1, "task_labels": self.task_labels, **self.config}
            (staging / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
            if directory.exists():
                shutil.rmtree(directory)
            staging.rename(directory)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return directory

    @classmethod
    def load(cls, directory: str | Path, device: str | torch.device | None = None) -> MultiTaskModel:
        """Load a model written by `save`; it predicts exactly what the saved model did."""
        directory = Path(directory)
        if not directory.is_dir():
            raise NotASavedModelError(f"{directory} does not exist or is not a directory")
        required = [CONFIG_FILE, HEADS_FILE, f"{ENCODER_DIR}/config.json", f"{ENCODER_DIR}/model.safetensors"]
        missing = [name for name in required if not (directory / name).is_file()]
        if missing:
            raise NotASavedModelError(
                f"{directory} is not a saved MultiTaskModel: missing {', '.join(missing)}"
            )
        config = json.loads((directory / CONFIG_FILE).read_text())
        if config.get("format") != FORMAT_NAME:
            raise NotASavedModelError(f"{directory / CONFIG_FILE} is not a {FORMAT_NAME} configuration")
        backbone = AutoModel.from_pretrained(
            directory / ENCODER_DIR, add_pooling_layer=False, local_files_only=True
        )
        tokenizer = AutoTokenizer.from_pretrained(directory / ENCODER_DIR, local_files_only=True)
        model = cls(
            config["task_labels"],
            backbone,
            tokenizer,
            pooling=config["pooling"],
            normalize=config.get("normalize", True),
            head=config["head"],
            head_hidden_dim=config["head_hidden_dim"],
            dropout=config["dropout"],
            max_length=config["max_length"],
            device="cpu",
        )
        model.heads.load_state_dict(load_file(directory / HEADS_FILE))
        return model.to(resolve_device(device))
