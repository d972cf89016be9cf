"""A disk cache for embeddings of the pre-trained encoder, so later notebooks need not re-encode.

Entries are keyed by everything the stored numbers depend on: the version of the embedding code
(`EMBEDDING_CODE_VERSION`), the versions of the libraries that compute them, the model's weight hash,
the settings and the exact texts. Change any of them and the cache misses and recomputes, so a warm
cache never serves values that today's code would not compute. Only use it for the frozen
pre-trained weights.

`make run` and `make test` point it at an empty folder of their own (`build/embedding-cache`), so
no state of the machine leaks into a run.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import sentence_transformers
import torch
import transformers
from sentence_transformers import SentenceTransformer

from helpers.checks import atomic_write, check_texts, existing_ancestor
from helpers.encoder import MODEL_SHA256, POOLING_STRATEGIES, embed_poolings

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
    ~/.cache/mtl-tutorial/embeddings."""
    configured = os.environ.get("MTL_TUTORIAL_CACHE", "").strip()
    if not configured:
        return Path.home() / ".cache" / "mtl-tutorial" / "embeddings"
    return Path(configured).expanduser()


def _check_cache_dir(folder: Path) -> None:
    """NotADirectoryError before any embedding work when the cache folder (or a parent) is a file."""
    existing = folder if folder.exists() else existing_ancestor(folder)
    if not existing.is_dir():
        raise NotADirectoryError(
            f"the embedding cache folder {folder} cannot be used: {existing} is a file, not a folder "
            "(set MTL_TUTORIAL_CACHE to a folder)"
        )


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
    model_key: str = MODEL_SHA256,
) -> dict[str, np.ndarray]:
    """`embed_poolings` with a disk cache: load what was embedded before, else compute and store it.

    A damaged, empty or wrong-shaped entry is recomputed and replaced (atomically). Raises
    NotADirectoryError, before any embedding work, when the cache folder is a file.
    """
    texts = check_texts(texts)
    folder = cache_dir()
    _check_cache_dir(folder)
    path = folder / f"{cache_key(texts, poolings, max_length, model_key)}.npz"
    if path.is_file():
        entry = _load_entry(path, poolings, len(texts))
        if entry is not None:
            return entry
    embeddings = embed_poolings(model, texts, poolings, max_length=max_length)
    with atomic_write(path) as handle:  # a crash never leaves a half-written entry behind
        np.savez(handle, **embeddings)
    return embeddings
