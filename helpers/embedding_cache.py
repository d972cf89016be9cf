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
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import sentence_transformers
import torch
import transformers
from sentence_transformers import SentenceTransformer

from helpers.encoder import MODEL_SHA256, POOLING_STRATEGIES, check_texts, embed_poolings

# Bump whenever helpers.encoder changes how embeddings are computed (tokenising, pooling, batching).
EMBEDDING_CODE_VERSION = "2"


def library_versions() -> str:
    """The versions of the libraries whose arithmetic the stored embeddings depend on."""
    return " ".join(
        f"{module.__name__}=={module.__version__}"
        for module in (torch, transformers, sentence_transformers, np)
    )


def cache_dir() -> Path:
    """The cache folder: $MTL_TUTORIAL_CACHE, else ~/.cache/mtl-tutorial/embeddings."""
    default = Path.home() / ".cache" / "mtl-tutorial" / "embeddings"
    return Path(os.environ.get("MTL_TUTORIAL_CACHE", default))


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
    for text in texts:
        digest.update(text.encode() + b"\0")
    return digest.hexdigest()[:32]


def cached_embed_poolings(
    model: SentenceTransformer,
    texts: Sequence[str],
    poolings: Sequence[str] = POOLING_STRATEGIES,
    max_length: int | None = None,
    model_key: str = MODEL_SHA256,
) -> dict[str, np.ndarray]:
    """`embed_poolings` with a disk cache: load what was embedded before, else compute and store it."""
    texts = check_texts(texts)
    path = cache_dir() / f"{cache_key(texts, poolings, max_length, model_key)}.npz"
    if path.is_file():
        with np.load(path) as stored:
            if set(stored.files) == set(poolings) and all(len(stored[p]) == len(texts) for p in poolings):
                return {strategy: stored[strategy] for strategy in poolings}
    embeddings = embed_poolings(model, texts, poolings, max_length=max_length)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp.npz")
    np.savez(partial, **embeddings)
    partial.replace(path)  # atomic: a crash never leaves a half-written entry behind
    return embeddings
