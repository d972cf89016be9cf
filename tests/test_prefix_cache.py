"""helpers.tool.prefix_cache: the frozen layers computed once; caches that must fit their data."""

import numpy as np
import pytest
import torch

from helpers import freezing
from helpers.task_data import TaskData
from helpers.tool.prefix_cache import PrefixCache, build_prefix_caches
from helpers.training import train_multitask
from helpers.training_config import TrainingConfig
from tests.conftest import SIX_TEXTS, tiny_split


@pytest.mark.parametrize("k", [0, 2])
def test_cached_prefix_gives_the_same_logits_as_the_full_forward(make_model, k):
    model = make_model().eval()
    freezing.unfreeze_top_k(model, k)
    prefix = freezing.frozen_prefix_length(model)
    cache = PrefixCache.build(model, SIX_TEXTS, prefix)
    half = PrefixCache.build(model, SIX_TEXTS, prefix, storage_dtype=torch.float16)
    with torch.no_grad():
        cached = model.classify(cache.encode(model, np.arange(len(SIX_TEXTS))))
        cached_half = model.classify(half.encode(model, np.arange(len(SIX_TEXTS))))
        full = model(model.tokenize(SIX_TEXTS))
    for task in model.task_labels:
        torch.testing.assert_close(cached[task], full[task], atol=1e-5, rtol=0)
        torch.testing.assert_close(cached_half[task], full[task], atol=1e-3, rtol=0)


def test_heads_can_train_from_precomputed_embeddings(make_model, encoder):
    from helpers.encoder import embed

    model = make_model().eval()
    freezing.freeze_backbone(model)
    cache = PrefixCache.from_sentence_embeddings(embed(encoder, SIX_TEXTS, max_length=128), model)
    with torch.no_grad():
        cached = model.classify(cache.encode(model, np.arange(len(SIX_TEXTS))))
        full = model(model.tokenize(SIX_TEXTS))
    for task in model.task_labels:
        torch.testing.assert_close(cached[task], full[task], atol=1e-5, rtol=0)
    train, validation = tiny_split()
    caches = {
        task: PrefixCache.from_sentence_embeddings(embed(encoder, d.texts), model)
        for task, d in train.items()
    }
    result = train_multitask(
        model,
        train,
        validation,
        TrainingConfig(epochs=2, progress=False),
        train_caches=caches,
        validation_caches=caches,
    )
    assert len(result.history) == 2


def test_a_cache_that_does_not_fit_is_refused(make_model, encoder):
    from helpers.encoder import embed

    model = make_model()
    freezing.freeze_backbone(model)
    train, validation = tiny_split()
    wrong = {"sentiment": PrefixCache.from_sentence_embeddings(embed(encoder, SIX_TEXTS[:3]), model)}
    with pytest.raises(ValueError, match="holds 3 sentences"):
        train_multitask(
            model, train, validation, TrainingConfig(epochs=1, progress=False), train_caches=wrong
        )


def test_a_cache_subset_matches_the_data_subset(make_model):
    model = make_model().eval()
    freezing.unfreeze_top_k(model, 2)
    data = {"sentence_type": TaskData(SIX_TEXTS, np.array([2, 1, 3, 0, 2, 1]))}
    cache = build_prefix_caches(model, data, storage_dtype=torch.float16)["sentence_type"]
    rows = np.array([0, 2, 3, 5])
    subset = cache.subset(rows)
    assert len(subset) == 4 and subset.nbytes < cache.nbytes
    with torch.no_grad():
        torch.testing.assert_close(subset.encode(model, np.arange(4)), cache.encode(model, rows))


@pytest.mark.parametrize("target", [4, 5, 6])
def test_an_advanced_cache_matches_one_built_from_the_texts(make_model, target):
    model = make_model().eval()
    data = {"sentence_type": TaskData(SIX_TEXTS, np.array([2, 1, 3, 0, 2, 1]))}
    lower = build_prefix_caches(model, data, 3)
    advanced = build_prefix_caches(model, data, target, start_from=lower)["sentence_type"]
    built = build_prefix_caches(model, data, target)["sentence_type"]
    assert advanced.prefix == target and advanced.sentence_level == (target == 6)
    assert advanced.lengths.tolist() == built.lengths.tolist()
    torch.testing.assert_close(advanced.states, built.states, atol=1e-5, rtol=1e-5)
    if target < 6:  # the layers in between did change the states: the comparison above can fail
        assert not torch.allclose(lower["sentence_type"].states, built.states, atol=1e-3)


def test_a_cache_cannot_move_down_or_past_the_top(make_model):
    model = make_model().eval()
    data = {"sentence_type": TaskData(SIX_TEXTS, np.array([2, 1, 3, 0, 2, 1]))}
    cache = build_prefix_caches(model, data, 3)["sentence_type"]
    for prefix in (2, 7):
        with pytest.raises(ValueError, match="cannot move"):
            cache.advanced(model, prefix)
    with pytest.raises(ValueError, match="does not hold"):
        build_prefix_caches(
            model,
            {"sentence_type": data["sentence_type"].subset([0, 1])},
            4,
            start_from={"sentence_type": cache},
        )
