"""MultiTaskModel: shapes for N tasks, gradients reaching the backbone, save/load, bad input."""

import numpy as np
import pytest
import torch

from helpers import freezing
from helpers.encoder import resolve_device
from helpers.model import MultiTaskModel, eval_mode, modes_restored
from helpers.tool.saving import (
    NotASavedModelError,
    load_model,
    save_model,
)
from tests.conftest import FOUR_TEXTS, TWO_TASKS, submodule_modes

TEXTS = ["Is this thing on?", "Turn it off.", "What a day!", "The rain stopped at noon.", "meh"]


@pytest.mark.parametrize("n_tasks", [1, 2, 3, 5])
def test_forward_gives_one_logit_matrix_per_task(make_model, n_tasks):
    tasks = {f"task{i}": [f"label{j}" for j in range(i + 2)] for i in range(n_tasks)}
    model = make_model(tasks)
    logits = model(model.tokenize(TEXTS))
    assert list(logits) == list(tasks)
    for i, task in enumerate(tasks):
        assert logits[task].shape == (len(TEXTS), i + 2)


@pytest.mark.parametrize("head", ["linear", "mlp"])
def test_predict_and_predict_proba(make_model, head):
    model = make_model(head=head)
    probabilities = model.predict_proba(TEXTS)
    predictions = model.predict(TEXTS)
    for task, labels in TWO_TASKS.items():
        assert probabilities[task].shape == (len(TEXTS), len(labels))
        np.testing.assert_allclose(probabilities[task].sum(axis=1), 1.0, atol=1e-5)
        assert predictions[task] == [labels[i] for i in probabilities[task].argmax(axis=1)]


def test_predictions_do_not_depend_on_batching(make_model):
    model = make_model()
    whole = model.predict_proba(TEXTS, batch_size=64)
    one_by_one = model.predict_proba(TEXTS, batch_size=1)
    for task in TWO_TASKS:
        np.testing.assert_allclose(whole[task], one_by_one[task], atol=1e-5)


def test_the_shared_encoder_computes_notebook_01s_sentence_embeddings(make_model, encoder):
    model = make_model().eval()
    with torch.no_grad():
        ours = model.encode(model.tokenize(TEXTS)).numpy()
    library = encoder.encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True)
    np.testing.assert_allclose(ours, library, atol=1e-5)


def test_encode_matches_the_library_forward_pass(make_model):
    model = make_model().eval()
    batch = model.tokenize(TEXTS)
    with torch.no_grad():
        ours = model.hidden_states_at(batch, len(model.layers))
        library = model.backbone(**batch).last_hidden_state
    torch.testing.assert_close(ours, library, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("layer_index", [0, 3, 6])
def test_starting_from_a_cached_layer_gives_the_same_logits(make_model, layer_index):
    model = make_model().eval()
    batch = model.tokenize(TEXTS)
    with torch.no_grad():
        full = model(batch)
        cached = model.hidden_states_at(batch, layer_index)
        resumed = model.classify(model.encode_from_layer(cached, batch["attention_mask"], layer_index))
    for task in TWO_TASKS:
        torch.testing.assert_close(full[task], resumed[task], atol=1e-5, rtol=1e-5)


def one_step(model, task="sentiment"):
    """One SGD step on a sentiment loss; returns copies of a backbone weight before and after."""
    weight = model.layers[0].attention.self.query.weight
    before = weight.detach().clone()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    logits = model(model.tokenize(TEXTS))[task]
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2, 0, 1]))
    loss.backward()
    optimizer.step()
    return weight, before


def test_gradients_reach_the_backbone_when_unfrozen(make_model):
    model = make_model()
    weight, before = one_step(model)
    assert weight.grad is not None and weight.grad.abs().sum() > 0
    assert not torch.equal(weight.detach(), before)


def test_frozen_backbone_gets_no_gradient_and_does_not_move(make_model):
    model = make_model()
    freezing.freeze_backbone(model)
    head_before = model.heads["sentiment"].layers[-1].weight.detach().clone()
    weight, before = one_step(model)
    assert weight.grad is None
    assert torch.equal(weight.detach(), before)
    assert not torch.equal(model.heads["sentiment"].layers[-1].weight.detach(), head_before)


def loss_and_gradients(model, seed=0):
    """Loss and every parameter's gradient for one training-mode (dropout on) forward/backward pass."""
    model.train()
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    logits = model(model.tokenize(TEXTS))["sentiment"]
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2, 0, 1]))
    loss.backward()
    return loss.detach(), {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def saved_activation_bytes(model) -> int:
    """Bytes that autograd keeps for the backward pass of one training-mode forward pass."""
    saved = []

    def pack(tensor):
        saved.append(tensor.untyped_storage().nbytes())
        return tensor

    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        model(model.tokenize(TEXTS * 4))
    return sum(saved)


def test_gradient_checkpointing_gives_the_same_gradients_with_dropout_on(make_model):
    model = make_model()
    loss, gradients = loss_and_gradients(model)
    model.gradient_checkpointing = True
    checkpointed_loss, checkpointed = loss_and_gradients(model)
    assert loss.item() == pytest.approx(checkpointed_loss.item(), abs=1e-6)
    assert gradients.keys() == checkpointed.keys() and len(gradients) > 100
    for name, gradient in gradients.items():
        torch.testing.assert_close(checkpointed[name], gradient, atol=1e-6, rtol=1e-5, msg=name)
    # and a different dropout draw does change them: the comparison above can fail
    _, other_draw = loss_and_gradients(model, seed=1)
    assert not torch.allclose(
        other_draw["heads.sentiment.layers.1.weight"], gradients["heads.sentiment.layers.1.weight"]
    )


def test_gradient_checkpointing_keeps_far_fewer_activations(make_model):
    model = make_model()
    plain = saved_activation_bytes(model)
    model.gradient_checkpointing = True
    assert saved_activation_bytes(model) < plain / 3


def test_gradient_checkpointing_does_nothing_at_inference(make_model):
    model = make_model().eval()
    model.gradient_checkpointing = True
    with torch.no_grad():
        checkpointed = model(model.tokenize(TEXTS))
    model.gradient_checkpointing = False
    with torch.no_grad():
        plain = model(model.tokenize(TEXTS))
    for task in TWO_TASKS:
        torch.testing.assert_close(checkpointed[task], plain[task], atol=0, rtol=0)


def test_save_and_load_round_trip(make_model, tmp_path):
    model = make_model(head="mlp", pooling="mean")
    with torch.no_grad():  # make the weights differ from the pre-trained ones
        model.layers[5].output.dense.bias.add_(0.05)
    saved = model.predict_proba(TEXTS)
    save_model(model, tmp_path / "model")
    loaded = load_model(tmp_path / "model", device="cpu")
    assert loaded.task_labels == model.task_labels and loaded.config == model.config
    for task in TWO_TASKS:
        np.testing.assert_allclose(loaded.predict_proba(TEXTS)[task], saved[task], atol=1e-6)
    assert loaded.predict(TEXTS) == model.predict(TEXTS)


def test_save_replaces_an_old_model_and_leaves_no_temporary_files(make_model, tmp_path):
    model = make_model()
    save_model(model, tmp_path / "model")
    save_model(model, tmp_path / "model")
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_loading_a_missing_directory_names_it(tmp_path):
    with pytest.raises(NotASavedModelError, match="nowhere"):
        load_model(tmp_path / "nowhere")


def test_loading_a_directory_that_is_not_a_model_says_what_is_missing(tmp_path):
    (tmp_path / "heads.safetensors").write_bytes(b"")
    with pytest.raises(NotASavedModelError, match="missing multitask_config.json"):
        load_model(tmp_path)


def test_parameter_summary_counts_trainable_and_frozen(make_model):
    model = make_model()
    freezing.freeze_backbone(model)
    summary = model.parameter_summary().set_index("component")
    assert summary.loc["layer 0", "trainable"] == 0 and summary.loc["layer 0", "frozen"] > 0
    assert summary.loc["head: sentiment", "trainable"] == 384 * 3 + 3
    assert summary.loc["total"].sum() == sum(p.numel() for p in model.parameters())


def test_a_single_string_is_one_sentence(make_model):
    predictions = make_model().predict("Where is the station?")
    assert all(len(labels) == 1 for labels in predictions.values())


@pytest.mark.parametrize("bad, position", [([None], 0), (["ok", 3], 1), (["a", "b", 2.5], 2)])
def test_non_strings_raise_type_error_naming_the_position(make_model, bad, position):
    model = make_model()
    with pytest.raises(TypeError, match=f"item {position} "):
        model.predict(bad)
    with pytest.raises(TypeError, match=f"item {position} "):
        model.predict_proba(bad)


def test_none_and_numbers_are_rejected(make_model):
    model = make_model()
    for bad in (None, 42):
        with pytest.raises(TypeError):
            model.predict(bad)


def test_empty_list_gives_empty_results(make_model):
    model = make_model()
    assert model.predict([]) == {task: [] for task in TWO_TASKS}
    probabilities = model.predict_proba([])
    assert all(probabilities[task].shape == (0, len(labels)) for task, labels in TWO_TASKS.items())


def test_odd_but_valid_text_works(make_model):
    texts = ["", "🎉🎉🎉", "¿Dónde está la biblioteca?", "这是一个句子。", "very long " * 1000]
    predictions = make_model().predict(texts)
    assert all(len(labels) == len(texts) for labels in predictions.values())


def test_device_defaults_to_cpu_without_an_accelerator(make_model):
    if torch.cuda.is_available() or torch.backends.mps.is_available():
        pytest.skip("an accelerator is present")

    assert resolve_device() == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.fixture
def saved(make_model, tmp_path):
    """A model saved in tmp_path/model, and the model."""
    model = make_model()
    save_model(model, tmp_path / "model")
    return tmp_path / "model", model


def test_predict_does_not_switch_the_backbone_into_training_mode(saved):
    directory, built = saved
    for model in (built, load_model(directory, device="cpu")):
        batch = model.tokenize(FOUR_TEXTS)
        with torch.inference_mode():
            first = model.encode(batch)
        model.predict(["anything"])
        with torch.inference_mode():
            second = model.encode(batch)
        assert torch.equal(first, second)


def test_mode_context_managers_restore_each_submodule():
    module = torch.nn.Sequential(torch.nn.Dropout(0.5), torch.nn.Sequential(torch.nn.Dropout(0.5)))
    module[1].eval()
    before = submodule_modes(module)
    with eval_mode(module):
        assert not any(submodule_modes(module).values())
    assert submodule_modes(module) == before
    with pytest.raises(RuntimeError), modes_restored(module):
        module.train()
        raise RuntimeError
    assert submodule_modes(module) == before


@pytest.mark.parametrize(
    "task_labels, options, error, message",
    [
        (["sentiment"], {}, TypeError, "task_labels must map"),
        ({}, {}, ValueError, "at least one task"),
        ({"sentiment": "negative"}, {}, TypeError, "must be a list of names"),
        ({"sentiment": ["only"]}, {}, ValueError, "at least 2 label names"),
        ({"sentiment": ["a", "a"]}, {}, ValueError, "repeated label names"),
        ({"senti.ment": ["a", "b"]}, {}, ValueError, "without '.'"),
        ({"s": ["a", "b"]}, {"dropout": 1.5}, ValueError, r"dropout must be a finite number in \[0.0, 1.0\)"),
        ({"s": ["a", "b"]}, {"max_length": 10_000}, ValueError, "max_length must be between 1 and 512"),
        ({"s": ["a", "b"]}, {"head": "deep"}, ValueError, "unknown head kind"),
        ({"s": ["a", "b"]}, {"pooling": "avg"}, ValueError, "unknown pooling"),
        ({"s": ["a", "b"]}, {"device": "gpu"}, ValueError, "not a device name"),
    ],
)
def test_the_model_checks_its_configuration(make_model, task_labels, options, error, message):
    with pytest.raises(error, match=message):
        make_model(task_labels, **options) if task_labels else MultiTaskModel(task_labels, **options)


@pytest.mark.parametrize(
    "batch_size, error", [(0, ValueError), (-1, ValueError), ("64", TypeError), (2.0, TypeError)]
)
def test_predict_checks_the_batch_size(make_model, batch_size, error):
    with pytest.raises(error, match="batch_size"):
        make_model().predict(FOUR_TEXTS, batch_size=batch_size)


@pytest.mark.parametrize("task", ["__class__", "keys", "training", "forward"])
def test_task_names_that_clash_with_module_dict_attributes_are_refused(make_model, task):
    with pytest.raises(ValueError, match=f"task name '{task}' is reserved"):
        make_model({task: ["a", "b"]})


# ----- a prediction depends on its own text only (issue 29) ---------------------------------------
LONG_QUESTION = (  # 150-odd tokens: the question mark at the very end decides its sentence type
    "Given that the committee met on Monday, that the minutes were circulated to every member "
    "of the board, that the auditors had raised no objection in their letter of the fourth, "
    "that the budget for the coming year had already been approved by the finance office, and "
    "that nobody at the meeting, neither the chair nor the secretary nor any of the eleven other "
    "members present, said a single word against the proposal when it was read out in full, "
    "with all of its appendices and the long list of amendments proposed since the spring, "
    "why was the vote postponed again?"
)


@pytest.mark.parametrize("padding_side", ["left", "right"])
def test_a_prediction_does_not_depend_on_the_rest_of_the_batch_whatever_the_tokenizer_says(
    make_model, tmp_path, padding_side
):
    """A user who sets the tokenizer to pad on the left (as for a decoder model), before or after
    saving, still gets for each sentence what it gets alone."""
    model = make_model()
    model.tokenizer.padding_side = padding_side
    try:
        alone = {text: model.predict_proba([text]) for text in FOUR_TEXTS}
        together = model.predict_proba([*FOUR_TEXTS, LONG_QUESTION[:200]], batch_size=8)
        for row, text in enumerate(FOUR_TEXTS):
            for task, probabilities in alone[text].items():
                np.testing.assert_allclose(together[task][row], probabilities[0], atol=1e-5)
        save_model(model, tmp_path / "model")
        loaded = load_model(tmp_path / "model", device="cpu")
        assert loaded.tokenizer.padding_side == padding_side  # the setting travels with the model ...
        again = loaded.predict_proba([*FOUR_TEXTS, LONG_QUESTION[:200]], batch_size=8)
        for task, probabilities in together.items():  # ... and changes nothing
            np.testing.assert_allclose(again[task], probabilities, atol=1e-5)
    finally:
        model.tokenizer.padding_side = "right"  # the tokenizer object is shared with other tests


def test_a_long_text_keeps_its_start_and_end_with_a_warning_and_short_ones_are_unchanged(make_model, encoder):
    """Over the limit: counted in a warning that says how to raise it, the final mark kept; within
    it: the ids the library's own truncating tokenizer gives, bit for bit."""
    from helpers.encoder import TruncationWarning

    model = make_model(max_length=32)
    batch = model.tokenize([LONG_QUESTION, "Short one?"])
    tokens = model.tokenizer.convert_ids_to_tokens(batch["input_ids"][0])
    assert (
        len(tokens) == 32
        and tokens[:3] == ["[CLS]", "given", "that"]
        and tokens[-3:] == ["again", "?", "[SEP]"]
    )
    library = encoder[0].tokenizer(
        ["Short one?"], padding=True, truncation=True, max_length=32, return_tensors="pt"
    )
    assert torch.equal(model.tokenize(["Short one?"])["input_ids"], library["input_ids"])
    with pytest.warns(TruncationWarning, match=r"1 of 2 texts are longer than 32 tokens.*max_length"):
        model.predict([LONG_QUESTION, "Short one?"])
    with pytest.warns(TruncationWarning, match="1 of 1 texts are longer than 256 tokens.*first tokens"):
        from helpers.encoder import embed

        embed(encoder, [LONG_QUESTION * 3])


def test_within_the_limit_nothing_warns(make_model, recwarn):
    model = make_model()
    model.predict(FOUR_TEXTS)
    assert not [w for w in recwarn if "longer than" in str(w.message)]


def test_the_committed_data_has_5_texts_over_the_series_limit(make_model):
    """The count quoted beside `TRUNCATION` in helpers/model.py (1 sentence type, 4 sentiment)."""
    from helpers.data import load_sentence_types, load_sentiment
    from helpers.encoder import TruncationWarning

    model = make_model()
    with pytest.warns(TruncationWarning) as caught:
        counts = [
            model.warn_if_cut(frame.text.tolist()) for frame in (load_sentence_types(), load_sentiment())
        ]
    assert counts == [1, 4] and len(caught) == 2
