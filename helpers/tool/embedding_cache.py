"""A disk cache for sentence embeddings, so later notebooks need not re-encode.

Entries are keyed by everything the stored numbers depend on: the version of the embedding code
(`EMBEDDING_CODE_VERSION`), the versions of the libraries that compute them, a hash of the weights
actually used (`weights_key`: a fine-tuned encoder never gets the pre-trained encoder's vectors), the
settings and the exact texts. Change any of them and the cache misses and recomputes, so a warm
cache never serves values that today's code and weights would not compute.

A cache folder that cannot be used (no home directory, no write permission, a file in the way)
never costs the work: the embeddings are computed without it, with one warning naming
`MTL_TUTORIAL_CACHE`. `make run` and `make test` point it at an empty folder of their own
(`build/embedding-cache`), so no state of the machine leaks into a run.
"""

from __future__ import annotations

import hashlib
import os
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import sentence_transformers
import torch
import transformers
from sentence_transformers import SentenceTransformer

from helpers.checks import check_texts
from helpers.encoder import POOLING_STRATEGIES, embed_poolings
from helpers.tool.files import atomic_write, existing_ancestor

# Bump whenever helpers.encoder changes how embeddings are computed (tokenising, pooling, batching).
EMBEDDING_CODE_VERSION = "2"


def library_versions() -> str:
    """The versions of the libraries whose arithmetic the stored embeddings depend on."""
    return " ".join(
        f"{module.__name__}=={module.__version__}"
        for module in (torch, transformers, sentence_transformers, np)
    )


def cache_dir() -> Path:
    """The cache folder: $MTL_TUTORIAL_CACHE (`~` expanded; empty counts as unset), else
    ~/.cache/mtl-tutorial/embeddings. RuntimeError when neither is set and there is no home folder."""
    configured = os.environ.get("MTL_TUTORIAL_CACHE", "").strip()
    if not configured:
        return Path.home() / ".cache" / "mtl-tutorial" / "embeddings"
    return Path(configured).expanduser()


class CacheUnavailableWarning(UserWarning):
    """The embedding cache folder cannot be used; embeddings are computed without it."""


_WARNED: set[str] = set()  # one warning per reason and folder, per process


def _warn_unusable(folder: Path | None, reason: str, stacklevel: int = 4) -> None:
    key = f"{folder}: {reason}"
    if key not in _WARNED:
        _WARNED.add(key)
        warnings.warn(
            f"the embedding cache {folder or ''} cannot be used ({reason}); embeddings are computed without "
            "it. Set MTL_TUTORIAL_CACHE to a folder you can write to, to cache them.",
            CacheUnavailableWarning,
            stacklevel=stacklevel,  # the caller of `cached_embed_poolings`
        )


def _usable_folder() -> Path | None:
    """The cache folder, or None (after one warning) when there is none or a file is in its way."""
    try:
        folder = cache_dir()
    except RuntimeError as error:  # Path.home(): "Could not determine home directory."
        _warn_unusable(None, str(error).rstrip("."))
        return None
    existing = folder if folder.exists() else existing_ancestor(folder)
    if not existing.is_dir():
        _warn_unusable(folder, f"{existing} is a file, not a folder")
        return None
    return folder


def weights_key(model: torch.nn.Module) -> str:
    """A hash (64 hex digits) of a model's weights: their names, shapes, types and values."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}\0".encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _load_entry(path: Path, poolings: Sequence[str], rows: int) -> dict[str, np.ndarray] | None:
    """A stored entry if it is complete and sound (the poolings, float arrays of `rows` rows of one
    width); None when it is missing, damaged, empty or of the wrong shape (it is then recomputed)."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            if set(stored.files) != set(poolings):
                return None
            entry = {strategy: stored[strategy] for strategy in poolings}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError):
        return None
    shapes = {array.shape for array in entry.values()}
    if any(array.dtype != np.float32 for array in entry.values()) or len(shapes) > 1:
        return None
    (shape,) = shapes or {(rows, 1)}
    return entry if len(shape) == 2 and shape[0] == rows and shape[1] >= 1 else None


def cache_key(
    texts: Sequence[str],
    poolings: Sequence[str],
    max_length: int | None,
    model_key: str,
    code_version: str | None = None,
) -> str:
    """A hash (32 hex digits) of everything the embeddings depend on (`code_version`: default
    `EMBEDDING_CODE_VERSION`)."""
    digest = hashlib.sha256()
    parts = (
        code_version or EMBEDDING_CODE_VERSION,
        library_versions(),
        model_key,
        repr(tuple(poolings)),
        repr(max_length),
    )
    for part in parts:
        digest.update(part.encode() + b"\0")
    for text in texts:  # each text's length first: texts holding "\0" cannot collide
        encoded = text.encode()
        digest.update(f"{len(encoded)}:".encode() + encoded)
    return digest.hexdigest()[:32]


def cached_embed_poolings(
    model: SentenceTransformer,
    texts: Sequence[str],
    poolings: Sequence[str] = POOLING_STRATEGIES,
    max_length: int | None = None,
    model_key: str | None = None,
) -> dict[str, np.ndarray]:
    """`embed_poolings` with a disk cache: load what was embedded before, else compute and store it.

    `model_key` names the weights (default: `weights_key(model)`, a hash of the weights in use). A
    damaged, empty or wrong-shaped entry is recomputed and replaced (atomically). A cache folder that
    cannot be used or written costs nothing but the caching (one CacheUnavailableWarning).
    """
    texts = check_texts(texts)
    folder = _usable_folder()
    key = weights_key(model) if model_key is None else model_key
    path = None if folder is None else folder / f"{cache_key(texts, poolings, max_length, key)}.npz"
    entry = None if path is None else _load_entry(path, poolings, len(texts))  # None: missing, unreadable
    if entry is not None:
        return entry
    embeddings = embed_poolings(model, texts, poolings, max_length=max_length)
    if path is not None:
        try:
            with atomic_write(path) as handle:  # a crash never leaves a half-written entry behind
                np.savez(handle, **embeddings)
        except OSError as error:  # no permission, a read-only or full disk: keep the embeddings
            _warn_unusable(folder, f"{type(error).__name__}: {error.strerror or error}", stacklevel=3)
    return embeddings
