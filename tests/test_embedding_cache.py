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


@pytest.mark.parametrize("place", ["file", "no home", "read-only"])
def test_a_cache_that_cannot_be_used_costs_only_the_caching_with_one_warning(tmp_path, monkeypatch, place):
    """A user whose cache folder is a file, who has no home folder, or whose folder is read-only
    still gets the embeddings (computed once, not thrown away), and one warning naming the setting."""
    fresh = {"mean": np.arange(8, dtype=np.float32).reshape(2, 4)}
    calls = []
    monkeypatch.setattr(embedding_cache, "embed_poolings", lambda *a, **k: calls.append(1) or fresh)
    monkeypatch.setattr(embedding_cache, "_WARNED", set())
    if place == "file":
        (tmp_path / "cache").write_text("not a folder")
        monkeypatch.setenv("MTL_TUTORIAL_CACHE", str(tmp_path / "cache" / "sub"))
    elif place == "no home":
        monkeypatch.delenv("MTL_TUTORIAL_CACHE", raising=False)
        monkeypatch.setattr(embedding_cache.Path, "home", _no_home)
    else:
        monkeypatch.setenv("MTL_TUTORIAL_CACHE", str(tmp_path / "cache"))
        monkeypatch.setattr(embedding_cache, "atomic_write", _read_only_disk)
    with pytest.warns(embedding_cache.CacheUnavailableWarning, match="MTL_TUTORIAL_CACHE") as caught:
        for _ in range(2):
            result = embedding_cache.cached_embed_poolings(None, ["a", "b"], ("mean",), model_key="m")
            np.testing.assert_array_equal(result["mean"], fresh["mean"])
    assert len(calls) == 2 and len(caught) == 1  # computed each time, warned once


def _no_home():
    raise RuntimeError("Could not determine home directory.")


def _read_only_disk(path):
    raise PermissionError(13, "Permission denied", str(path))


def test_a_fine_tuned_encoder_never_gets_the_pre_trained_vectors(encoder, tmp_path, monkeypatch):
    """Cached embeddings of the pre-trained weights are not served for other weights."""
    import copy

    import torch

    monkeypatch.setenv("MTL_TUTORIAL_CACHE", str(tmp_path))
    texts = ["The cache must know the weights.", "Why?"]
    pretrained = embedding_cache.cached_embed_poolings(encoder, texts, ("mean",))["mean"]
    tuned = copy.deepcopy(encoder)
    torch.manual_seed(0)
    with torch.no_grad():  # one step of "fine-tuning": the top layer's weights move a little
        weight = tuned[0].auto_model.encoder.layer[5].output.dense.weight
        weight.add_(0.05 * torch.randn_like(weight))
    served = embedding_cache.cached_embed_poolings(tuned, texts, ("mean",))["mean"]
    expected = embed_poolings(tuned, texts, ("mean",))["mean"]
    np.testing.assert_allclose(served, expected, atol=1e-6)
    assert not np.allclose(served, pretrained, atol=1e-3)
    assert len(list(tmp_path.glob("*.npz"))) == 2


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
