"""The training loop: masking of missing labels, task samplers, loss weighting, caching, early stopping."""

import numpy as np
import pandas as pd
import pytest
import torch

from helpers import freezing
from helpers.evaluation import (
    EarlyStopping,
    evaluate,
    predict_labels,
    predict_probabilities,
    sentence_embeddings,
)
from helpers.losses import IGNORE_INDEX, LossCombiner, batch_labels, class_weights, masked_task_losses
from helpers.optimization import unfreezing_start_steps
from helpers.prefix_cache import PrefixCache, build_prefix_caches
from helpers.sampling import TaskBatchSampler, task_probabilities
from helpers.task_data import TaskData, limit_per_task, random_rows
from helpers.training import train_multitask
from helpers.training_config import TrainingConfig
from tests.conftest import TINY_MOOD_LABELS, TINY_MOODS, TINY_TYPE_LABELS, TINY_TYPES

TEXTS = ["Shut the window.", "Is it late?", "What a mess!", "It rained.", "Go home.", "Why?"]


def test_a_batch_with_one_tasks_labels_gives_the_other_head_no_gradient(make_model):
    model = make_model()
    labels = batch_labels(list(model.task_labels), "sentence_type", np.array([2, 1, 3, 0, 2, 1]))
    assert (labels["sentiment"] == IGNORE_INDEX).all()
    losses = masked_task_losses(model(model.tokenize(TEXTS)), labels)
    assert list(losses) == ["sentence_type"]
    sum(losses.values()).backward()
    assert model.heads["sentiment"].layers[-1].weight.grad is None
    assert model.heads["sentence_type"].layers[-1].weight.grad.abs().sum() > 0


def test_partially_labelled_batches_average_over_labelled_examples_only():
    logits = {"a": torch.tensor([[2.0, 0.0], [0.0, 2.0], [5.0, -5.0]])}
    labels = {"a": torch.tensor([0, 1, IGNORE_INDEX])}
    expected = torch.nn.functional.cross_entropy(logits["a"][:2], labels["a"][:2])
    torch.testing.assert_close(masked_task_losses(logits, labels)["a"], expected)


@pytest.mark.parametrize(
    "strategy, expected",
    [
        ("proportional", {"big": 0.9, "small": 0.1}),
        ("uniform", {"big": 0.5, "small": 0.5}),
        ("temperature", None),
    ],
)
def test_samplers_draw_tasks_in_the_stated_proportions(strategy, expected):
    sizes = {"big": 9000, "small": 1000}
    if expected is None:  # T = 2: proportional to the square root of the size
        expected = {"big": 3 / 4, "small": 1 / 4}
    assert task_probabilities(sizes, strategy, temperature=2.0) == pytest.approx(expected)
    sampler = TaskBatchSampler(sizes, batch_size=10, strategy=strategy, temperature=2.0, seed=0)
    drawn = [task for task, _ in sampler]
    assert len(drawn) == 1000
    for task, share in expected.items():
        assert drawn.count(task) / len(drawn) == pytest.approx(share, abs=0.03)


def test_sampler_batches_are_valid_and_every_example_is_used():
    sampler = TaskBatchSampler({"a": 95, "b": 5}, batch_size=10, strategy="uniform", seed=1)
    seen = {"a": set(), "b": set()}
    for task, rows in sampler:
        assert len(rows) == (10 if task == "a" else 5) and len(set(rows)) == len(rows)
        seen[task].update(rows.tolist())
    assert len(seen["a"]) == 50  # five batches of "a", no example twice before all were seen
    assert seen["b"] == set(range(5))  # the small task is cycled through


def test_uncertainty_weights_receive_gradients_and_fixed_weights_apply():
    combiner = LossCombiner(["a", "b"], "uncertainty")
    total = combiner({"a": torch.tensor(2.0), "b": torch.tensor(0.8)})  # d/ds = 1/2 - L, zero at L = 1/2
    total.backward()
    assert all(p.grad is not None and p.grad.abs() > 0 for p in combiner.parameters())
    assert combiner.task_weights() == {"a": 1.0, "b": 1.0}
    fixed = LossCombiner(["a", "b"], "fixed", {"a": 2.0, "b": 0.5})
    assert float(fixed({"a": torch.tensor(1.0), "b": torch.tensor(4.0)})) == pytest.approx(4.0)
    with pytest.raises(ValueError):
        LossCombiner(["a", "b"], "fixed", {"a": 1.0})


def test_early_stopping_keeps_the_best_state_and_stops_after_patience():
    module = torch.nn.Linear(1, 1)
    stopper = EarlyStopping(patience=2)
    assert not stopper.update(0.5, 1, module)
    with torch.no_grad():
        module.weight.fill_(3.0)
    assert not stopper.update(0.7, 2, module)
    assert not stopper.update(0.6, 3, module)
    assert stopper.update(0.65, 4, module)
    assert stopper.best_epoch == 2 and float(stopper.best_state["weight"]) == 3.0
    with torch.no_grad():
        module.weight.fill_(-1.0)
    stopper.restore_best(module)
    assert float(module.weight.detach()) == 3.0


@pytest.mark.parametrize("k", [0, 2])
def test_cached_prefix_gives_the_same_logits_as_the_full_forward(make_model, k):
    model = make_model().eval()
    freezing.unfreeze_top_k(model, k)
    prefix = freezing.frozen_prefix_length(model)
    cache = PrefixCache.build(model, TEXTS, prefix)
    half = PrefixCache.build(model, TEXTS, prefix, storage_dtype=torch.float16)
    with torch.no_grad():
        cached = model.classify(cache.encode(model, np.arange(len(TEXTS))))
        cached_half = model.classify(half.encode(model, np.arange(len(TEXTS))))
        full = model(model.tokenize(TEXTS))
    for task in model.task_labels:
        torch.testing.assert_close(cached[task], full[task], atol=1e-5, rtol=0)
        torch.testing.assert_close(cached_half[task], full[task], atol=1e-3, rtol=0)


def test_heads_can_train_from_precomputed_embeddings(make_model, encoder):
    from helpers.encoder import embed

    model = make_model().eval()
    freezing.freeze_backbone(model)
    cache = PrefixCache.from_sentence_embeddings(embed(encoder, TEXTS, max_length=128), model)
    with torch.no_grad():
        cached = model.classify(cache.encode(model, np.arange(len(TEXTS))))
        full = model(model.tokenize(TEXTS))
    for task in model.task_labels:
        torch.testing.assert_close(cached[task], full[task], atol=1e-5, rtol=0)
    train, validation = tiny_data(model)
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
    train, validation = tiny_data(model)
    wrong = {"sentiment": PrefixCache.from_sentence_embeddings(embed(encoder, TEXTS[:3]), model)}
    with pytest.raises(ValueError, match="holds 3 sentences"):
        train_multitask(
            model, train, validation, TrainingConfig(epochs=1, progress=False), train_caches=wrong
        )


def test_limit_per_task_keeps_label_proportions():
    data = {"t": TaskData([str(i) for i in range(1000)], np.array([0] * 900 + [1] * 100))}
    limited = limit_per_task(data, 100, seed=0)["t"]
    assert len(limited) == 100 and (limited.labels == 1).sum() == 10
    assert limit_per_task(data, None) == data


def tiny_data(model):
    types, moods = TINY_TYPES, TINY_MOODS
    train = {
        "sentence_type": TaskData(types, np.array(TINY_TYPE_LABELS)),
        "sentiment": TaskData(moods, np.array(TINY_MOOD_LABELS)),
    }
    return train, train


@pytest.mark.parametrize("k, weighting", [(6, "sum"), (1, "uncertainty"), (1, "fixed")])
def test_training_runs_learns_and_keeps_the_best_epoch(make_model, k, weighting):
    model = make_model()
    freezing.unfreeze_top_k(model, k)
    train, validation = tiny_data(model)
    weights = {"sentence_type": 1.0, "sentiment": 0.5} if weighting == "fixed" else None
    config = TrainingConfig(
        epochs=4,
        batch_size=4,
        encoder_lr=1e-4,
        head_lr=5e-2,
        loss_weighting=weighting,
        loss_weights=weights,
        progress=False,
        patience=4,
    )
    result = train_multitask(model, train, validation, config)
    history = result.history
    assert len(history) == 4 and result.best_epoch == int(history.mean_macro_f1.idxmax()) + 1
    assert history.mean_macro_f1.max() > 0.5  # memorising six examples per task is easy
    assert history.train_loss.iloc[-1] < history.train_loss.iloc[0]
    assert result.best_scores() == evaluate(model, validation, config.eval_batch_size)  # the kept weights


def test_a_fixed_budget_run_evaluates_once_and_keeps_the_final_weights(make_model):
    config = TrainingConfig(
        epochs=3, batch_size=4, encoder_lr=1e-4, head_lr=5e-2, patience=1, progress=False, keep_best=False
    )
    final = {}

    def on_step(step, m):  # the trainable weights after every step; the last call holds the final ones
        final.update({n: p.detach().clone() for n, p in m.named_parameters() if p.requires_grad})

    def trained(evaluated: bool):
        torch.manual_seed(0)  # the same initial heads in both runs
        model = make_model()
        freezing.unfreeze_top_k(model, 1)
        train, validation = tiny_data(model)
        result = train_multitask(model, train, validation if evaluated else None, config, on_step=on_step)
        return model, result, validation

    model, result, validation = trained(evaluated=True)
    assert list(result.history.epoch) == [3] and result.best_epoch == 3 and not result.stopped_early
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            assert torch.equal(parameter, final[name]), name
    assert result.best_scores() == evaluate(model, validation, config.eval_batch_size)
    unevaluated, quiet, _ = trained(evaluated=False)  # validation=None: no evaluation, the same run
    assert quiet.history.empty
    for name, parameter in unevaluated.state_dict().items():
        assert torch.equal(parameter, model.state_dict()[name]), name
    with pytest.raises(ValueError, match="not evaluated"):
        quiet.best_scores()
    with pytest.raises(ValueError, match="needs TrainingConfig\\(keep_best=False\\)"):
        train_multitask(make_model(), tiny_data(model)[0], None, TrainingConfig(progress=False))
    with pytest.raises(ValueError, match="keep_best=False evaluates once"):
        TrainingConfig(keep_best=False, evaluations_per_epoch=2)
    with pytest.raises(TypeError, match="keep_best"):
        TrainingConfig(keep_best="no")


def test_punctuation_dropout_with_the_cache(make_model):
    model = make_model()
    freezing.unfreeze_top_k(model, 1)
    train, validation = tiny_data(model)
    config = TrainingConfig(epochs=1, batch_size=3, punctuation_dropout=0.5, progress=False)
    result = train_multitask(model, train, validation, config)
    assert result.examples_seen == 12


def test_data_for_a_task_without_a_head_is_refused(make_model):
    model = make_model()
    train, validation = tiny_data(model)
    extra = {**train, "topic": TaskData(["a b", "c d"], np.array([0, 1]))}
    with pytest.raises(ValueError, match="no head for"):
        train_multitask(model, extra, validation, TrainingConfig(epochs=1, progress=False))


def test_training_everything_frozen_is_refused(make_model):
    model = make_model()
    freezing.freeze_all(model)
    train, validation = tiny_data(model)
    with pytest.raises(ValueError, match="nothing to train"):
        train_multitask(model, train, validation, TrainingConfig(epochs=1, progress=False))


def test_config_rejects_bad_values():
    with pytest.raises(ValueError):
        TrainingConfig(sampling="random")
    with pytest.raises(ValueError):
        TrainingConfig(punctuation_dropout=1.5)
    with pytest.raises(ValueError):
        TrainingConfig(epochs=0)


def test_balanced_class_weights_follow_scikit_learn_and_weigh_every_class_equally():
    labels = {"t": np.array([0, 0, 0, 0, 0, 0, 1, 1, 2, 2])}  # class 3 absent
    weights = class_weights(labels, {"t": 4})["t"]
    expected = [10 / (3 * 6), 10 / (3 * 2), 10 / (3 * 2), 1.0]  # n / (classes present * count)
    assert torch.allclose(weights, torch.tensor(expected))
    per_class_total = [float(weights[c]) * int((labels["t"] == c).sum()) for c in range(3)]
    assert np.allclose(per_class_total, per_class_total[0])
    assert class_weights(labels, {"t": 4}, "none") is None
    with pytest.raises(ValueError, match="class weighting"):
        class_weights(labels, {"t": 4}, "inverse")
    with pytest.raises(ValueError, match="0..1, got 2"):
        class_weights(labels, {"t": 2})
    whole = class_weights({"t": labels["t"].astype(float).tolist()}, {"t": 4})["t"]
    assert torch.equal(whole, weights)  # whole-number floats in a list, as TaskData accepts them
    with pytest.raises(ValueError, match="whole numbers"):
        class_weights({"t": [0.5, 1.0]}, {"t": 2})
    with pytest.raises(TypeError, match="n_classes"):
        class_weights(labels, {"other": 4})


def test_class_weighted_loss_is_the_weighted_mean_over_labelled_examples():
    torch.manual_seed(0)
    logits = {"t": torch.randn(5, 3)}
    labels = {"t": torch.tensor([0, 0, 1, IGNORE_INDEX, 2])}
    weight = torch.tensor([0.5, 2.0, 4.0])
    loss = masked_task_losses(logits, labels, {"t": weight})["t"]
    kept = torch.tensor([0, 1, 2, 4])
    per_example = torch.nn.functional.cross_entropy(logits["t"][kept], labels["t"][kept], reduction="none")
    example_weight = weight[labels["t"][kept]]
    assert torch.isclose(loss, (example_weight * per_example).sum() / example_weight.sum())
    with pytest.raises(KeyError, match="unknown tasks"):
        masked_task_losses(logits, labels, {"T": weight})  # a misspelt task is not silently unweighted


def test_class_weighting_changes_the_run_and_is_validated(make_model):
    train, validation = tiny_data(None)
    runs = {}
    for weighting in ("none", "balanced"):
        model = make_model()
        freezing.freeze_backbone(model)
        config = TrainingConfig(
            epochs=1, batch_size=4, head_lr=5e-2, class_weighting=weighting, progress=False
        )
        runs[weighting] = train_multitask(model, train, validation, config).steps["loss"].to_numpy()
    assert not np.allclose(runs["none"], runs["balanced"])  # the tiny sentence types are imbalanced
    with pytest.raises(ValueError, match="class weighting"):
        TrainingConfig(class_weighting="inverse")


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("keep_best", [True, False])
def test_a_resumed_run_ends_exactly_like_an_uninterrupted_one(make_model, tmp_path, keep_best):
    config = TrainingConfig(
        epochs=3, batch_size=4, encoder_lr=1e-4, head_lr=1e-2, patience=5, progress=False, keep_best=keep_best
    )

    def trained(checkpoint=None, stop_at_step=None, resume=False):
        model = make_model()
        torch.manual_seed(0)
        for head in model.heads.values():  # identical starting heads in every run
            head.layers[-1].reset_parameters()
        freezing.unfreeze_top_k(model, 1)
        train, validation = tiny_data(model)

        def on_step(step, _model):
            if step == stop_at_step:
                raise Interrupt

        result = train_multitask(
            model, train, validation, config, on_step=on_step, checkpoint=checkpoint, resume=resume
        )
        return model, result

    reference, reference_result = trained()
    checkpoint = tmp_path / "run.checkpoint.pt"
    with pytest.raises(Interrupt):
        trained(checkpoint, stop_at_step=5)  # three steps per epoch: dies in epoch 2
    assert checkpoint.exists() and not (tmp_path / "run.checkpoint.pt.partial").exists()
    resumed, resumed_result = trained(checkpoint, resume=True)
    for name, parameter in reference.state_dict().items():
        assert torch.equal(parameter, resumed.state_dict()[name]), name
    assert resumed_result.history.equals(reference_result.history)
    assert resumed_result.steps.equals(reference_result.steps)


def test_resuming_with_another_configuration_is_refused(make_model, tmp_path):
    model = make_model()
    train, validation = tiny_data(model)
    checkpoint = tmp_path / "run.pt"
    train_multitask(model, train, validation, TrainingConfig(epochs=1, progress=False), checkpoint=checkpoint)
    with pytest.raises(ValueError, match="different training configuration"):
        train_multitask(
            make_model(), train, validation, TrainingConfig(epochs=2, progress=False), checkpoint=checkpoint,
            resume=True,
        )  # fmt: skip


def test_gradual_unfreezing_starts_from_the_top():
    names = ["embeddings", "layer 3", "layer 3 (no decay)", "layer 4", "layer 5", "head: sentiment"]
    starts = unfreezing_start_steps(names, total_steps=100)
    assert starts["head: sentiment"] == starts["layer 5"] == 0
    assert starts["layer 4"] == 25 and starts["layer 3"] == starts["layer 3 (no decay)"] == 50
    assert starts["embeddings"] == 75


def test_held_back_layers_do_not_move_until_their_turn(make_model):
    model = make_model()
    freezing.unfreeze_top_k(model, 2)
    train, validation = tiny_data(model)
    lowest = model.layers[4].output.dense.weight
    before = lowest.detach().clone()
    seen = {}

    def on_step(step, m):
        seen[step] = torch.equal(before, lowest.detach())

    config = TrainingConfig(
        epochs=2, batch_size=4, gradual_unfreezing=True, warmup_fraction=0.0, progress=False
    )
    train_multitask(model, train, validation, config, on_step=on_step)
    # 3 steps per epoch, 6 in all: layer 4 starts learning at step 3 (the scheduler counts from 0)
    assert seen[1] and seen[2] and seen[3]
    assert not seen[6]


def test_length_grouped_batches_cover_every_example_once_per_pass():
    lengths = {"t": np.arange(200) % 37}
    sampler = TaskBatchSampler({"t": 200}, batch_size=10, seed=0, lengths=lengths, pool_batches=5)
    batches = [rows for _, rows in sampler]
    assert len(batches) == 20
    assert sorted(np.concatenate(batches).tolist()) == list(range(200))
    spread = np.mean([np.ptp(lengths["t"][rows]) for rows in batches])
    random_spread = np.mean(
        [np.ptp(lengths["t"][rows]) for rows in np.array_split(np.random.default_rng(0).permutation(200), 20)]
    )
    assert spread < random_spread / 2  # similar lengths share a batch


def test_given_caches_with_punctuation_dropout_and_no_cache_building(make_model):
    model = make_model()
    freezing.unfreeze_top_k(model, 1)
    train, validation = tiny_data(model)
    caches = build_prefix_caches(model, train)
    config = TrainingConfig(
        epochs=1, batch_size=3, punctuation_dropout=1.0, use_prefix_cache=False, progress=False
    )
    result = train_multitask(model, train, validation, config, train_caches=caches)
    assert result.examples_seen == 12


def test_evaluating_within_epochs_and_the_step_log(make_model):
    model = make_model()
    freezing.unfreeze_top_k(model, 1)
    train, validation = tiny_data(model)
    config = TrainingConfig(
        epochs=2, batch_size=2, evaluations_per_epoch=3, loss_weighting="uncertainty", patience=10,
        progress=False,
    )  # fmt: skip
    result = train_multitask(model, train, validation, config)
    # 12 examples in batches of 2: 6 steps per epoch, evaluated after steps 2, 4 and 6 of each
    assert result.history.epoch.round(3).tolist() == [0.333, 0.667, 1.0, 1.333, 1.667, 2.0]
    assert result.history.step.tolist() == [2, 4, 6, 8, 10, 12]
    steps = result.steps
    assert steps.step.tolist() == list(range(1, 13)) and set(steps.task) <= set(model.task_labels)
    assert (steps.loss > 0).all() and steps.sentiment_loss_weight.nunique() > 1  # the weights learn
    assert result.best_epoch in result.history.epoch.tolist()


def test_prebuilt_stripped_caches_give_the_same_run_as_building_them(make_model):
    runs = []
    for prebuilt in (False, True):
        model = make_model()
        torch.manual_seed(0)
        for head in model.heads.values():
            head.layers[-1].reset_parameters()
        freezing.unfreeze_top_k(model, 1)
        train, validation = tiny_data(model)
        stripped = None
        if prebuilt:
            stripped_data = {"sentence_type": train["sentence_type"].without_terminal_punctuation()}
            stripped = build_prefix_caches(model, stripped_data)
        config = TrainingConfig(epochs=1, batch_size=3, punctuation_dropout=0.5, progress=False)
        runs.append(train_multitask(model, train, validation, config, stripped_caches=stripped).history)
    assert runs[0].equals(runs[1])


def test_a_cache_subset_matches_the_data_subset(make_model):
    model = make_model().eval()
    freezing.unfreeze_top_k(model, 2)
    data = {"sentence_type": TaskData(TEXTS, np.array([2, 1, 3, 0, 2, 1]))}
    cache = build_prefix_caches(model, data, storage_dtype=torch.float16)["sentence_type"]
    rows = random_rows(data, {"sentence_type": 4}, seed=1)["sentence_type"]
    assert len(rows) == 4 and rows.tolist() == sorted(rows.tolist())
    subset = cache.subset(rows)
    assert len(subset) == 4 and subset.nbytes < cache.nbytes
    with torch.no_grad():
        torch.testing.assert_close(subset.encode(model, np.arange(4)), cache.encode(model, rows))


@pytest.mark.parametrize("target", [4, 5, 6])
def test_an_advanced_cache_matches_one_built_from_the_texts(make_model, target):
    model = make_model().eval()
    data = {"sentence_type": TaskData(TEXTS, np.array([2, 1, 3, 0, 2, 1]))}
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
    data = {"sentence_type": TaskData(TEXTS, np.array([2, 1, 3, 0, 2, 1]))}
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


def test_predictions_and_embeddings_come_back_in_the_datas_order(make_model):
    model = make_model().eval()
    data = {"sentence_type": TaskData(TEXTS, np.zeros(len(TEXTS)))}
    probabilities = predict_probabilities(model, data, batch_size=4)["sentence_type"]
    embeddings = sentence_embeddings(model, data, batch_size=4)["sentence_type"]
    with torch.no_grad():
        for i, text in enumerate(TEXTS):  # one sentence at a time: no batching, no reordering
            single = model.encode(model.tokenize([text]))
            np.testing.assert_allclose(embeddings[i], single[0].numpy(), atol=1e-5)
            expected = model.classify(single, ["sentence_type"])["sentence_type"].softmax(-1)[0].numpy()
            np.testing.assert_allclose(probabilities[i], expected, atol=1e-5)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
    assert (predict_labels(model, data, batch_size=4)["sentence_type"] == probabilities.argmax(axis=1)).all()


def test_stripping_terminal_punctuation_keeps_the_labels():
    data = TaskData(["Is it late?", "Go home!"], np.array([1, 2]))
    stripped = data.without_terminal_punctuation()
    assert stripped.texts == ["Is it late", "Go home"] and stripped.labels.tolist() == [1, 2]


def test_limit_per_task_takes_one_limit_per_task():
    data = {
        "a": TaskData([str(i) for i in range(100)], np.arange(100) % 2),
        "b": TaskData([str(i) for i in range(50)], np.zeros(50)),
    }
    limited = limit_per_task(data, {"a": 10}, seed=0)
    assert len(limited["a"]) == 10 and (limited["a"].labels == 1).sum() == 5
    assert len(limited["b"]) == 50  # not named: kept whole


def test_a_run_with_gradient_checkpointing_ends_in_the_same_weights(make_model):
    weights, histories = [], []
    for checkpointing in (False, True):
        model = make_model()
        torch.manual_seed(0)
        for head in model.heads.values():
            head.layers[-1].reset_parameters()
        train, validation = tiny_data(model)
        config = TrainingConfig(
            epochs=2, batch_size=4, encoder_lr=1e-4, progress=False, gradient_checkpointing=checkpointing
        )
        histories.append(train_multitask(model, train, validation, config).history)
        assert model.gradient_checkpointing is False  # the setting lasts for the run only
        weights.append(model.layers[0].attention.self.query.weight.detach().clone())
    pd.testing.assert_frame_equal(histories[0], histories[1], atol=1e-5)
    torch.testing.assert_close(weights[0], weights[1], atol=1e-6, rtol=1e-5)
    assert not torch.equal(weights[0], make_model().layers[0].attention.self.query.weight)  # it trained
