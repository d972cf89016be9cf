"""The multi-task model: one shared MiniLM encoder, one small classification head per task.

    sentences -> tokenizer -> transformer layers (shared) -> pooling (shared) -> head per task -> logits

Everything up to the pooled sentence embedding is shared by all tasks and trained by all of them;
only the heads are task-specific (hard parameter sharing). The encoder runs its layers in our own
loop, so training can start from a cached hidden state part-way up the stack (`hidden_states_at`,
`encode_from_layer`) when the lower layers are frozen.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.utils.checkpoint
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase
from transformers.masking_utils import create_bidirectional_mask

from helpers.encoder import (
    POOLING_STRATEGIES,
    batch_order,
    check_bool,
    check_int,
    check_number,
    check_texts,
    load_encoder,
    pool,
)

SERIES_MAX_LENGTH = 128  # tokens; longer sentences are rare in our data and cost quadratic attention time
HEAD_KINDS = ("linear", "mlp")
CONFIG_FILE = "multitask_config.json"
HEADS_FILE = "heads.safetensors"
ENCODER_DIR = "encoder"
FORMAT_NAME = "mtl-tutorial/multitask-model"
FORMAT_VERSION = 1
MODEL_ENTRIES = (CONFIG_FILE, HEADS_FILE, ENCODER_DIR)  # what `save` writes at the top of a model folder
PROJECT_ROOT = Path(__file__).resolve().parent.parent  # the repository (or site-packages when installed)


class NotASavedModelError(FileNotFoundError):
    """A directory passed to `MultiTaskModel.load` is missing or does not hold a saved model."""


class SaveTargetError(ValueError):
    """A folder that `MultiTaskModel.save` refuses to write into, because it would destroy something."""


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """The device to use: the one asked for, else CUDA or Apple's MPS when available, else the CPU.

    Raises ValueError for a device name torch does not know, or an accelerator that is not available.
    """
    if device is not None:
        if not isinstance(device, str | torch.device):
            raise TypeError(f"device must be a string such as 'cpu' or 'cuda', got {type(device).__name__}")
        try:
            device = torch.device(device)
        except RuntimeError as error:
            raise ValueError(
                f"device {device!r} is not a device name (try 'cpu', 'cuda' or 'mps')"
            ) from error
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {str(device)!r} was asked for, but CUDA is not available here")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise ValueError(f"device {str(device)!r} was asked for, but MPS is not available here")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@contextmanager
def modes_restored(module: nn.Module) -> Iterator[nn.Module]:
    """On exit, put every submodule back into its own train/eval mode, whatever the body switched.

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


def is_saved_model(directory: str | Path) -> bool:
    """True if `directory` holds a model written by `MultiTaskModel.save` (its config file and format tag)."""
    config_path = Path(directory) / CONFIG_FILE
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(config, dict) and config.get("format") == FORMAT_NAME


def _saved_entries(directory: Path) -> set[str]:
    """The top-level names `save` wrote into a saved model folder (model files and extra files)."""
    try:
        config = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
        extra = config.get("extra_files", ["training.json"])  # older saves: the CLI's training.json
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        extra = []
    return {*MODEL_ENTRIES, *[name for name in extra if isinstance(name, str)]}


def check_save_target(directory: str | os.PathLike) -> Path:
    """Check that `MultiTaskModel.save(directory)` destroys nothing; return the folder, resolved.

    Allowed: a path that does not exist yet (under a writable folder), an empty folder, or a folder
    that holds a model saved by `save` (config file with the format tag) and nothing else, which is
    then replaced. Refused with SaveTargetError: `.`, `..`, the file-system root, a folder that
    contains the working directory or this project's repository, a file, and any folder holding
    files that are not part of a saved model (they are listed). A symlink is followed.
    """
    if not isinstance(directory, str | os.PathLike):
        raise TypeError(f"directory must be a path (str or Path), got {type(directory).__name__}")
    given = Path(directory)
    if str(directory).strip() == "":
        raise SaveTargetError("directory is an empty path; name the folder to save the model in")
    if given.name in ("", ".", ".."):
        raise SaveTargetError(f"refusing to save into {str(directory)!r}: name a new or a model folder")
    target = given.expanduser().resolve()
    if target == Path(target.anchor):
        raise SaveTargetError(f"refusing to save into the file-system root {target}")
    protected = {Path.cwd().resolve(): "the working directory", PROJECT_ROOT: "the project's repository"}
    for place, what in protected.items():
        if target == place or target in place.parents:
            raise SaveTargetError(
                f"refusing to save into {directory} ({target}): it is or contains {what} ({place}); "
                "choose a folder of its own, e.g. models/mtl"
            )
    if target.exists() or target.is_symlink():
        if not target.is_dir():
            raise SaveTargetError(f"{directory} is an existing file, not a folder; choose another path")
        entries = {entry.name for entry in target.iterdir()}
        if entries and not is_saved_model(target):
            raise SaveTargetError(
                f"{directory} is not empty and holds no saved model ({', '.join(sorted(entries)[:5])}"
                f"{', ...' if len(entries) > 5 else ''}); refusing to replace it: choose a new folder"
            )
        unexpected = entries - _saved_entries(target)
        if unexpected:
            raise SaveTargetError(
                f"{directory} holds a saved model but also {', '.join(sorted(unexpected))}, which "
                "saving would delete; move them away first"
            )
        if not os.access(target.parent, os.W_OK):
            raise SaveTargetError(f"cannot write into {target.parent} (no write permission)")
        return target
    existing = target.parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise SaveTargetError(f"cannot create {directory}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK):
        raise SaveTargetError(f"cannot create {directory}: no write permission in {existing}")
    return target


def _new_sibling(target: Path, kind: str) -> Path:
    """A fresh hidden folder beside `target`, created with the user's umask (not mkdtemp's 0700)."""
    while True:
        candidate = target.parent / f".{target.name}.{kind}-{secrets.token_hex(4)}"
        try:
            candidate.mkdir(mode=0o777)
            return candidate
        except FileExistsError:
            continue


def _unused_sibling(target: Path, kind: str) -> Path:
    while True:
        candidate = target.parent / f".{target.name}.{kind}-{secrets.token_hex(4)}"
        if not candidate.exists() and not candidate.is_symlink():
            return candidate


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
        if isinstance(labels, str) or not isinstance(labels, Iterable):
            raise TypeError(f"the labels of task {task!r} must be a list of names, got {labels!r}")
        labels = list(labels)
        if len(labels) < 2 or not all(isinstance(label, str) for label in labels):
            raise ValueError(f"task {task!r} needs at least 2 label names (strings), got {labels!r}")
        if len(set(labels)) != len(labels):
            raise ValueError(f"task {task!r} has repeated label names: {labels!r}")
        checked[task] = labels
    return checked


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
        """Tokenise raw sentences into a padded batch on the model's device.

        Returns `input_ids`, `attention_mask` (and `token_type_ids`), each (n, longest length <=
        `max_length`). Raises TypeError for anything but a string or a sequence of strings.
        """
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
        """Class probabilities per task: `{task: float32 array (n, n_labels)}`, columns in label order.

        Runs in eval mode (dropout off) and leaves every submodule's mode as it found it, so two
        calls give identical results. Raises TypeError for a non-string text (naming its position)
        and for a `batch_size` that is not an integer, ValueError for `batch_size < 1`.
        """
        texts = check_texts(texts)
        check_int("batch_size", batch_size, 1)
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

    def save(self, directory: str | Path, extra_files: Mapping[str, str] | None = None) -> Path:
        """Save encoder, tokenizer, heads (safetensors) and configuration (JSON) into `directory`.

        `directory` must be new, empty, or hold a model saved here before (and nothing else); see
        `check_save_target` for what is refused (SaveTargetError) and why. `extra_files` maps plain
        file names to text written beside the model (e.g. a training log); they belong to the model
        and are replaced with it. The files are written to a hidden sibling folder (with the user's
        umask) and moved into place only when complete; an old model is moved aside, replaced, then
        deleted, so an interruption at any point leaves the old or the new model in `directory`
        (never a half-written one, never neither: at worst the old one is in `.NAME.replaced-*`).
        """
        target = check_save_target(directory)
        extra_files = dict(extra_files or {})
        for name, text in extra_files.items():
            if not isinstance(name, str) or not name or name != Path(name).name or name in MODEL_ENTRIES:
                raise ValueError(f"extra file name {name!r} must be a plain file name, not a model file")
            if name.startswith(".") or not isinstance(text, str):
                raise ValueError(f"extra file {name!r} must have a name not starting with '.' and str text")
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = _new_sibling(target, "saving")
        try:
            self.backbone.save_pretrained(staging / ENCODER_DIR, safe_serialization=True)
            self.tokenizer.save_pretrained(staging / ENCODER_DIR)
            heads = {
                name: tensor.detach().cpu().contiguous() for name, tensor in self.heads.state_dict().items()
            }
            save_file(heads, staging / HEADS_FILE)
            for name, text in extra_files.items():
                (staging / name).write_text(text, encoding="utf-8")
            config = {
                "format": FORMAT_NAME,
                "version": FORMAT_VERSION,
                "task_labels": self.task_labels,
                **self.config,
                "extra_files": sorted(extra_files),
            }
            (staging / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
            check_save_target(directory)  # again: something may have appeared there meanwhile
            if target.is_dir() and any(target.iterdir()):  # a previous model: swap, then delete it
                previous = _unused_sibling(target, "replaced")
                try:
                    os.rename(target, previous)
                    os.rename(staging, target)
                except BaseException:  # Ctrl-C included: put the previous model back
                    if previous.exists() and not target.exists():
                        os.rename(previous, target)
                    raise
                shutil.rmtree(previous, ignore_errors=True)
            else:
                if target.is_dir():
                    target.rmdir()  # empty
                os.rename(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return Path(directory)

    @classmethod
    def load(cls, directory: str | Path, device: str | torch.device | None = None) -> MultiTaskModel:
        """Load a model written by `save`, in eval mode; it predicts exactly what the saved model did.

        Raises NotASavedModelError (a FileNotFoundError) naming the folder when it is missing, lacks
        a file, or holds an unreadable or foreign configuration or weights; ValueError for a device
        that is not available.
        """
        if not isinstance(directory, str | os.PathLike):
            raise TypeError(f"directory must be a path (str or Path), got {type(directory).__name__}")
        directory = Path(directory).expanduser()  # as `save` does
        if not directory.is_dir():
            raise NotASavedModelError(f"{directory} does not exist or is not a directory")
        required = [CONFIG_FILE, HEADS_FILE, f"{ENCODER_DIR}/config.json", f"{ENCODER_DIR}/model.safetensors"]
        missing = [name for name in required if not (directory / name).is_file()]
        if missing:
            raise NotASavedModelError(
                f"{directory} is not a saved MultiTaskModel: missing {', '.join(missing)}"
            )
        target = resolve_device(device)
        try:
            config = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise NotASavedModelError(f"{directory / CONFIG_FILE} is not valid JSON: {error}") from None
        if not isinstance(config, dict) or config.get("format") != FORMAT_NAME:
            raise NotASavedModelError(f"{directory / CONFIG_FILE} is not a {FORMAT_NAME} configuration")
        if config.get("version") != FORMAT_VERSION:
            raise NotASavedModelError(
                f"{directory / CONFIG_FILE} has format version {config.get('version')!r}; "
                f"this code reads version {FORMAT_VERSION}"
            )
        try:
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
        except (KeyError, TypeError, ValueError, OSError, RuntimeError, SafetensorError) as error:
            if isinstance(error, NotASavedModelError):
                raise
            raise NotASavedModelError(
                f"{directory} holds a damaged or incompatible saved model: {type(error).__name__}: {error}"
            ) from error
        return model.to(target)
