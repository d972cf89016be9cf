"""The embedding cache returns what a fresh computation gives, and misses when the texts change."""

import numpy as np
import pytest

from helpers.encoder import embed_poolings
from helpers.tool import embedding_cache


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


def _no_embedding(*args, **kwargs):
    raise AssertionError("no embedding work may start")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("~/x", "home/x"),
        ("", "home/.cache/mtl-tutorial/embeddings"),
        ("  ", "home/.cache/mtl-tutorial/embeddings"),
    ],
)
def test_cache_dir_expands_a_tilde_and_treats_empty_as_unset(tmp_path, monkeypatch, value, expected):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MTL_TUTORIAL_CACHE", value)
    assert embedding_cache.cache_dir() == tmp_path / expected


def test_a_cache_folder_that_is_a_file_fails_before_any_embedding(tmp_path, monkeypatch):
    (tmp_path / "cache").write_text("not a folder")
    monkeypatch.setenv("MTL_TUTORIAL_CACHE", str(tmp_path / "cache" / "sub"))
    monkeypatch.setattr(embedding_cache, "embed_poolings", _no_embedding)
    with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
        embedding_cache.cached_embed_poolings(None, ["a"], ("mean",), model_key="m")


@pytest.mark.parametrize(
    "damage",
    [
        lambda path: path.write_bytes(b""),
        lambda path: path.write_bytes(b"garbage" * 10),
        lambda path: np.savez(path, mean=np.ones((3, 4), dtype=np.float32)),  # wrong number of rows
        lambda path: np.savez(path, mean=np.ones(2, dtype=np.float32)),  # not two-dimensional
        lambda path: np.savez(path, mean=np.ones((2, 4), dtype=np.float64)),  # wrong dtype
        lambda path: np.savez(path, mean=np.array(["a", "b"])),
    ],
    ids=["empty", "garbage", "rows", "1-d", "float64", "strings"],
)
def test_a_damaged_cache_entry_is_recomputed_and_replaced(tmp_path, monkeypatch, damage):
    monkeypatch.setenv("MTL_TUTORIAL_CACHE", str(tmp_path))
    texts = ["a", "b"]
    path = tmp_path / f"{embedding_cache.cache_key(texts, ('mean',), None, 'm')}.npz"
    damage(path)
    fresh = {"mean": np.arange(8, dtype=np.float32).reshape(2, 4)}
    monkeypatch.setattr(embedding_cache, "embed_poolings", lambda *args, **kwargs: fresh)
    result = embedding_cache.cached_embed_poolings(None, texts, ("mean",), model_key="m")
    np.testing.assert_array_equal(result["mean"], fresh["mean"])
    monkeypatch.setattr(embedding_cache, "embed_poolings", _no_embedding)  # now served from the cache
    served = embedding_cache.cached_embed_poolings(None, texts, ("mean",), model_key="m")
    np.testing.assert_array_equal(served["mean"], fresh["mean"])
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name], "no temporary file is left"


def test_cache_keys_of_texts_with_nul_characters_differ():
    key = embedding_cache.cache_key
    assert key(["a\0b", "c"], ("mean",), None, "m") != key(["a", "b\0c"], ("mean",), None, "m")
    assert key(["a\0"], ("mean",), None, "m") != key(["a", ""], ("mean",), None, "m")
