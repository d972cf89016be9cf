"""The embedding cache returns what a fresh computation gives, and misses when the texts change."""

import numpy as np

from helpers import embedding_cache
from helpers.encoder import embed_poolings


def test_cache_round_trip_and_miss(encoder, tmp_path, monkeypatch):
    monkeypatch.setenv("MTL_TUTORIAL_CACHE", str(tmp_path))
    texts = ["one sentence.", "and another one?"]
    first = embedding_cache.cached_embed_poolings(encoder, texts, ("mean", "cls"))
    assert len(list(tmp_path.glob("*.npz"))) == 1
    second = embedding_cache.cached_embed_poolings(encoder, texts, ("mean", "cls"))
    fresh = embed_poolings(encoder, texts, ("mean", "cls"))
    for strategy in ("mean", "cls"):
        np.testing.assert_array_equal(first[strategy], second[strategy])
        np.testing.assert_allclose(first[strategy], fresh[strategy], atol=1e-5)
    embedding_cache.cached_embed_poolings(encoder, texts + ["a third."], ("mean", "cls"))
    assert len(list(tmp_path.glob("*.npz"))) == 2


def test_key_depends_on_model_and_settings():
    texts = ["a", "b"]
    base = embedding_cache.cache_key(texts, ("mean",), None, "model-1")
    assert base != embedding_cache.cache_key(texts, ("mean",), None, "model-2")
    assert base != embedding_cache.cache_key(texts, ("cls",), None, "model-1")
    assert base != embedding_cache.cache_key(texts, ("mean",), 64, "model-1")
    assert base != embedding_cache.cache_key(["a", "c"], ("mean",), None, "model-1")


def test_key_depends_on_code_and_library_versions(monkeypatch):
    texts = ["a", "b"]
    base = embedding_cache.cache_key(texts, ("mean",), None, "model-1")
    assert base != embedding_cache.cache_key(texts, ("mean",), None, "model-1", code_version="next")
    monkeypatch.setattr(embedding_cache, "library_versions", lambda: "torch==0.0")
    assert base != embedding_cache.cache_key(texts, ("mean",), None, "model-1")


def test_new_code_version_misses_a_warm_cache(encoder, tmp_path, monkeypatch):
    monkeypatch.setenv("MTL_TUTORIAL_CACHE", str(tmp_path))
    texts = ["one sentence."]
    embedding_cache.cached_embed_poolings(encoder, texts, ("mean",))
    stored = next(tmp_path.glob("*.npz"))
    np.savez(stored, mean=np.zeros((1, 384), dtype=np.float32))  # a stale entry: today's code differs
    assert not embedding_cache.cached_embed_poolings(encoder, texts, ("mean",))["mean"].any()
    monkeypatch.setattr(embedding_cache, "EMBEDDING_CODE_VERSION", "next")
    fresh = embedding_cache.cached_embed_poolings(encoder, texts, ("mean",))["mean"]
    assert fresh.any()
    assert len(list(tmp_path.glob("*.npz"))) == 2
