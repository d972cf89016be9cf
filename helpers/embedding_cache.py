"""A disk cache for embeddings of the pre-trained encoder, so later notebooks need not re-encode.

Entries are keyed by the model's weight hash, the settings and the exact texts: change any of them
and the cache misses and recomputes. Only use it for the frozen pre-trained weights.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sentence_transformers import SentenceTransformer

from helpers.encoder import MODEL_SHA256, POOLING_STRATEGIES, check_texts, embed_poolings


def cache_dir() -> Path:
    """The cache folder: $MTL_TUTORIAL_CACHE, else ~/.cache/mtl-tutorial/embeddings."""
    default = Path.home() / ".cache" / "mtl-tutorial" / "embeddings"
    return Path(os.environ.get("MTL_TUTORIAL_CACHE", default))


def cache_key(texts: Sequence[str], poolings: Sequence[str], max_length: int | None, model_key: str) -> str:
    """A hash of everything the embeddings depend on."""
    digest = hashlib.sha256()
    for part in (model_key, repr(tuple(poolings)), repr(max_length)):
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
