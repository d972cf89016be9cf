"""Issue 13, "nothing lost, nothing silently wrong": the public API used as a careless user would.

Each test names the case of the issue it covers: (1) saving never destroys a user's files,
(2) inference never switches dropout on, (4) a batch without labels, (5) degenerate settings and
data are refused where they enter, (6) checkpoints are read safely, (7) folder modes and weight
decay, and (kind) every entry point checks its arguments before doing any work.
"""

import json
import math
import os
import stat

import numpy as np
import pytest
import torch

from helpers import checkpointing as checkpointing_module
from helpers import evaluation as evaluation_module
from helpers import freezing
from helpers import model as model_module
from helpers import optimization as optimization_module
from helpers import saving as saving_module
from helpers import training as training_module
from helpers.checkpointing import CheckpointError, load_checkpoint, save_checkpoint
from helpers.encoder import embed
from helpers.evaluation import EarlyStopping, evaluate
from helpers.losses import IGNORE_INDEX, LossCombiner, masked_task_losses
from helpers.model import MultiTaskModel
from helpers.modes import eval_mode, modes_restored
from helpers.prefix_cache import build_prefix_caches
from helpers.sampling import TaskBatchSampler
from helpers.saving import CONFIG_FILE, PROJECT_ROOT, NotASavedModelError, SaveTargetError, check_save_target
from helpers.task_data import TaskData, limit_per_task, task_data
from helpers.train import checkpoint_path, main
from helpers.training import train_multitask
from helpers.training_config import TrainingConfig
from tests.conftest import TINY_MOOD_LABELS, TINY_MOODS, TINY_TYPE_LABELS, TINY_TYPES, TWO_TASKS

TEXTS = ["Is this thing on?", "Turn it off.", "What a day!", "The rain stopped at noon."]


def tiny_data():
    return {
        "sentence_type": TaskData(TINY_TYPES, np.array(TINY_TYPE_LABELS)),
        "sentiment": TaskData(TINY_MOODS, np.array(TINY_MOOD_LABELS)),
    }


def quick_config(**options):
    return TrainingConfig(**{"epochs": 1, "batch_size": 4, "progress": False, **options})


def modes(module: torch.nn.Module) -> dict[str, bool]:
    return {name: submodule.training for name, submodule in module.named_modules()}


# ----- (1) saving never destroys anything ---------------------------------------------------------
@pytest.fixture
def saved(make_model, tmp_path):
    """A model saved in tmp_path/model, and the model."""
    model = make_model()
    model.save(tmp_path / "model")
    return tmp_path / "model", model


def test_save_refuses_a_folder_holding_a_users_files(make_model, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    with pytest.raises(SaveTargetError, match="notes.txt"):
        make_model().save(folder)
    assert (folder / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"], "no temporary folder is left"


@pytest.mark.parametrize("place", [".", "..", "/", "cwd", "cwd parent", "repository", "repository parent"])
def test_save_refuses_places_that_contain_the_working_directory_or_the_repository(
    make_model, tmp_path, monkeypatch, place
):
    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.txt").write_text("keep me")
    monkeypatch.chdir(work)
    paths = {
        "cwd": work,
        "cwd parent": tmp_path,
        "repository": PROJECT_ROOT,
        "repository parent": PROJECT_ROOT.parent,
    }
    with pytest.raises(SaveTargetError):
        make_model().save(paths.get(place, place))
    assert (work / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]


def test_save_refuses_a_file_and_a_path_under_a_file(make_model, tmp_path):
    (tmp_path / "file").write_text("x")
    for path in (tmp_path / "file", tmp_path / "file" / "model"):
        with pytest.raises(SaveTargetError, match="file"):
            make_model().save(path)
    assert (tmp_path / "file").read_text() == "x"


@pytest.mark.parametrize("bad", [None, 3, ["models/a"]])
def test_save_wants_a_path(make_model, bad):
    with pytest.raises(TypeError, match="path"):
        make_model().save(bad)


def test_save_replaces_a_previous_model_only_when_complete(saved, make_model):
    directory, _ = saved
    newer = make_model()
    with torch.no_grad():
        newer.heads["sentiment"].layers[-1].bias.add_(1.0)
    newer.save(directory)
    loaded = MultiTaskModel.load(directory, device="cpu")
    torch.testing.assert_close(
        loaded.heads["sentiment"].layers[-1].bias, newer.heads["sentiment"].layers[-1].bias
    )
    assert sorted(p.name for p in directory.parent.iterdir()) == ["model"]


def test_save_into_an_existing_empty_folder(make_model, tmp_path):
    (tmp_path / "empty").mkdir()
    make_model().save(tmp_path / "empty")
    assert MultiTaskModel.load(tmp_path / "empty", device="cpu").task_labels == TWO_TASKS


def test_a_model_folder_with_a_users_file_added_is_not_replaced(saved, make_model):
    directory, _ = saved
    (directory / "notes.txt").write_text("keep me")
    with pytest.raises(SaveTargetError, match="notes.txt"):
        make_model().save(directory)
    assert (directory / "notes.txt").read_text() == "keep me"


def test_extra_files_belong_to_the_model(make_model, tmp_path):
    model = make_model()
    model.save(tmp_path / "model", extra_files={"training.json": "{}\n"})
    assert (tmp_path / "model" / "training.json").read_text() == "{}\n"
    model.save(tmp_path / "model")  # the old training.json is part of the old model: replaced
    assert not (tmp_path / "model" / "training.json").exists()
    for name in ("../escape.txt", "", ".hidden", CONFIG_FILE, "encoder"):
        with pytest.raises(ValueError, match="extra file"):
            model.save(tmp_path / "model", extra_files={name: "x"})
    assert not (tmp_path / "escape.txt").exists()


def test_save_through_a_symlink_replaces_the_model_it_points_to(saved, make_model):
    directory, _ = saved
    link = directory.parent / "latest"
    link.symlink_to(directory, target_is_directory=True)
    make_model(head="mlp").save(link)
    assert link.is_symlink()
    assert MultiTaskModel.load(directory, device="cpu").config["head"] == "mlp"


def test_an_interrupted_save_keeps_the_previous_model(saved, make_model, monkeypatch):
    directory, old = saved
    before = old.predict_proba(TEXTS)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(saving_module, "save_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        make_model(head="mlp").save(directory)
    loaded = MultiTaskModel.load(directory, device="cpu")
    for task in TWO_TASKS:
        np.testing.assert_allclose(loaded.predict_proba(TEXTS)[task], before[task], atol=1e-6)
    assert sorted(p.name for p in directory.parent.iterdir()) == ["model"], "the staging folder is gone"


def test_an_interrupted_swap_puts_the_previous_model_back(saved, make_model, monkeypatch):
    directory, _ = saved
    calls = []
    real_rename = os.rename

    def rename(source, destination):
        calls.append((source, destination))
        if len(calls) == 2:  # old model moved aside; interrupted before the new one is in place
            raise KeyboardInterrupt
        real_rename(source, destination)

    monkeypatch.setattr(saving_module.os, "rename", rename)
    with pytest.raises(KeyboardInterrupt):
        make_model(head="mlp").save(directory)
    monkeypatch.undo()
    assert MultiTaskModel.load(directory, device="cpu").config["head"] == "linear"
    assert sorted(p.name for p in directory.parent.iterdir()) == ["model"]


def test_saved_folders_follow_the_umask(make_model, tmp_path):
    previous = os.umask(0o022)
    try:
        make_model().save(tmp_path / "model")
    finally:
        os.umask(previous)
    mode = stat.S_IMODE((tmp_path / "model").stat().st_mode)
    assert mode == 0o755, oct(mode)  # (7) not mkdtemp's 0700: a team can read it
    assert stat.S_IMODE((tmp_path / "model" / CONFIG_FILE).stat().st_mode) == 0o644


def test_cli_out_dot_with_overwrite_deletes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("keep me")
    for out in (".", "..", str(tmp_path)):
        with pytest.raises(SystemExit) as stop:
            main(["--out", out, "--overwrite", "--freeze-backbone", "--epochs", "1"])
        assert stop.value.code == 2 and "refusing" in capsys.readouterr().err
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def test_cli_overwrite_replaces_a_model_and_nothing_else(tmp_path, saved, capsys):
    directory, _ = saved
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(SystemExit) as stop:
        main(["--out", str(tmp_path / "mine"), "--overwrite"])
    assert stop.value.code == 2 and "holds no saved model" in capsys.readouterr().err
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    with pytest.raises(SystemExit) as stop:
        main(["--out", str(directory)])
    assert stop.value.code == 2 and "--overwrite" in capsys.readouterr().err
    assert check_save_target(directory) == directory.resolve()  # with --overwrite it would be replaced


# ----- (2) inference never switches dropout on -----------------------------------------------------
def test_a_built_and_a_loaded_model_are_in_eval_mode(saved):
    directory, model = saved
    assert not any(modes(model).values())
    assert not any(modes(MultiTaskModel.load(directory, device="cpu")).values())


def test_predict_does_not_switch_the_backbone_into_training_mode(saved):
    directory, built = saved
    for model in (built, MultiTaskModel.load(directory, device="cpu")):
        batch = model.tokenize(TEXTS)
        with torch.inference_mode():
            first = model.encode(batch)
        model.predict(["anything"])
        with torch.inference_mode():
            second = model.encode(batch)
        assert torch.equal(first, second)


def test_every_inference_path_leaves_each_submodule_in_its_own_mode(make_model):
    model = make_model()
    freezing.unfreeze_top_k(model, 1)
    model.heads.train()  # a mixed state: heads training, backbone in eval
    before = modes(model)
    data = tiny_data()
    first = model.predict_proba(TEXTS)
    evaluate(model, data)
    assert modes(model) == before
    build_prefix_caches(model, data)
    build_prefix_caches(model, data, 6)
    assert modes(model) == before
    evaluation_module.predict_probabilities(model, data)
    evaluation_module.sentence_embeddings(model, data)
    assert modes(model) == before
    second = model.predict_proba(TEXTS)
    for task in TWO_TASKS:
        assert np.array_equal(first[task], second[task])


def test_training_restores_modes_and_predictions_repeat(make_model):
    model = make_model()
    freezing.unfreeze_top_k(model, 1)
    before = modes(model)
    train_multitask(model, tiny_data(), tiny_data(), quick_config())
    assert modes(model) == before
    first, second = model.predict_proba(TEXTS), model.predict_proba(TEXTS)
    for task in TWO_TASKS:
        assert np.array_equal(first[task], second[task])


def test_an_interrupted_run_restores_modes_and_gradient_checkpointing(make_model):
    model = make_model()
    freezing.unfreeze_top_k(model, 1)
    before = modes(model)

    def interrupt(step, _model):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_multitask(
            model, tiny_data(), tiny_data(), quick_config(gradient_checkpointing=True), on_step=interrupt
        )
    assert modes(model) == before and model.gradient_checkpointing is False


def test_mode_context_managers_restore_each_submodule():
    module = torch.nn.Sequential(torch.nn.Dropout(0.5), torch.nn.Sequential(torch.nn.Dropout(0.5)))
    module[1].eval()
    before = modes(module)
    with eval_mode(module):
        assert not any(modes(module).values())
    assert modes(module) == before
    with pytest.raises(RuntimeError), modes_restored(module):
        module.train()
        raise RuntimeError
    assert modes(module) == before


# ----- (4) a batch where no task has a label -------------------------------------------------------
def test_unlabelled_examples_are_refused_where_the_data_is_built():
    with pytest.raises(ValueError, match=r"label -100 at position 0 is negative"):
        TaskData(["a", "b"], np.array([IGNORE_INDEX, IGNORE_INDEX]))
    with pytest.raises(ValueError, match="position 1"):
        TaskData(["a", "b"], [0, -1])


def test_combining_no_losses_is_a_clear_error():
    logits = {"a": torch.zeros(2, 3)}
    losses = masked_task_losses(logits, {"a": torch.tensor([IGNORE_INDEX, IGNORE_INDEX])})
    assert losses == {}
    with pytest.raises(ValueError, match="no task has a labelled example"):
        LossCombiner(["a"])(losses)


# ----- (5) degenerate settings and data are refused where they enter -------------------------------
@pytest.mark.parametrize(
    "field, value, message",
    [
        ("patience", 0, "TrainingConfig.patience must be at least 1, got 0"),
        ("patience", -1, "TrainingConfig.patience must be at least 1, got -1"),
        ("warmup_fraction", -0.1, r"TrainingConfig.warmup_fraction must be a finite number in \[0.0, 1.0\]"),
        ("warmup_fraction", 1.5, "warmup_fraction"),
        ("epochs", 0, "TrainingConfig.epochs must be at least 1"),
        ("epochs", 2.5, "TrainingConfig.epochs must be an integer"),
        ("batch_size", True, "TrainingConfig.batch_size must be an integer"),
        ("eval_batch_size", 0, "eval_batch_size"),
        ("evaluations_per_epoch", 0, "evaluations_per_epoch"),
        ("encoder_lr", -1e-5, "encoder_lr"),
        ("head_lr", math.nan, "head_lr must be a finite number"),
        ("weight_decay", -0.01, "weight_decay"),
        ("layer_decay", 0.0, "layer_decay"),
        ("max_grad_norm", 0.0, "max_grad_norm"),
        ("temperature", 0.0, "temperature"),
        ("punctuation_dropout", 1.5, "punctuation_dropout"),
        ("seed", -3, "seed must be between 0 and 4294967295"),
        ("progress", "yes", "progress must be True or False"),
        ("amp", 1, "amp must be True or False"),
        ("sampling", "random", "unknown sampling"),
        ("loss_weighting", "mean", "unknown loss weighting"),
        ("loss_weights", {"sentiment": -1.0}, "loss_weights"),
        ("punctuation_tasks", "sentence_type", "punctuation_tasks must be a tuple"),
    ],
)
def test_training_config_names_the_field_the_value_and_the_range(field, value, message):
    with pytest.raises((TypeError, ValueError), match=message):
        TrainingConfig(**{field: value})


def test_fixed_weighting_needs_weights():
    with pytest.raises(ValueError, match="needs loss_weights"):
        TrainingConfig(loss_weighting="fixed")


def test_patience_one_keeps_going_while_the_score_improves():
    stopper = EarlyStopping(patience=1)
    module = torch.nn.Linear(1, 1)
    assert not any(stopper.update(score, epoch, module) for epoch, score in enumerate([0.1, 0.2, 0.3], 1))
    assert stopper.update(0.3, 4, module)
    with pytest.raises(ValueError, match="patience must be at least 1"):
        EarlyStopping(0)


def test_empty_validation_data_is_refused(make_model):
    model = make_model()
    with pytest.raises(ValueError, match="validation data is empty"):
        train_multitask(model, tiny_data(), {}, quick_config())
    empty_task = {**tiny_data(), "sentiment": TaskData([], [])}
    with pytest.raises(ValueError, match="validation data for task 'sentiment' has no examples"):
        train_multitask(model, tiny_data(), empty_task, quick_config())
    with pytest.raises(ValueError, match="train data for task 'sentiment' has no examples"):
        train_multitask(model, empty_task, tiny_data(), quick_config())
    with pytest.raises(ValueError, match="has no examples"):
        evaluate(model, empty_task)


@pytest.mark.parametrize(
    "labels, error, message",
    [
        ([0.0, math.nan], ValueError, "label nan at position 1 is not a whole number"),
        ([0.5, 1.0], ValueError, "position 0 is not a whole number"),
        (["question", "command"], TypeError, "integer class indices"),
        ([[0], [1]], ValueError, "one-dimensional"),
        ([0], ValueError, "2 texts but 1 labels"),
    ],
)
def test_task_data_refuses_bad_labels(labels, error, message):
    with pytest.raises(error, match=message):
        TaskData(["a", "b"], labels)


def test_task_data_refuses_bad_texts():
    with pytest.raises(TypeError, match="single string"):
        TaskData("Where is it?", [1])
    with pytest.raises(TypeError, match="item 1 is int"):
        TaskData(["fine", 7], [0, 1])
    assert TaskData(["a", "b"], np.array([1.0, 0.0])).labels.dtype == np.int64  # whole floats are fine


def test_labels_beyond_the_heads_labels_are_refused_before_training(make_model):
    data = {**tiny_data(), "sentiment": TaskData(TINY_MOODS, [0, 1, 2, 3, 0, 1])}
    with pytest.raises(ValueError, match=r"'sentiment' has label 3 at position 3.*3 labels \(0..2\)"):
        train_multitask(make_model(), data, tiny_data(), quick_config())
    with pytest.raises(ValueError, match="has label 3"):
        evaluate(make_model(), data)


@pytest.mark.parametrize("limit", [1, 2, 3, 5, 10, 99])
def test_limit_per_task_returns_at_most_the_limit(limit):
    labels = np.array([0] * 60 + [1] * 30 + [2] * 9 + [3] * 1)
    data = {"t": TaskData([str(i) for i in range(100)], labels)}
    limited = limit_per_task(data, limit, seed=0)["t"]
    assert len(limited) <= limit
    if limit >= 4:  # room for every label: each keeps at least one example
        assert set(limited.labels) == {0, 1, 2, 3}
    if limit == 1:
        assert limited.labels.tolist() == [0]  # the most common label


def test_limit_per_task_refuses_bad_limits():
    data = tiny_data()
    for bad in (0, -5):
        with pytest.raises(ValueError, match="max_per_task must be at least 1"):
            limit_per_task(data, bad)
    with pytest.raises(TypeError, match="max_per_task must be an integer"):
        limit_per_task(data, 2.5)
    with pytest.raises(ValueError, match=r"tasks \['sentimnt'\] that are not in the data"):
        limit_per_task(data, {"sentimnt": 2})


# ----- (6) checkpoints -----------------------------------------------------------------------------
@pytest.mark.parametrize("content", [os.urandom(2048), b""], ids=["random bytes", "empty"])
def test_a_damaged_checkpoint_is_reported_before_any_work(make_model, tmp_path, monkeypatch, content):
    checkpoint = tmp_path / "run.pt"
    checkpoint.write_bytes(content)
    with pytest.raises(CheckpointError, match="is unreadable .*: delete it or run without --resume"):
        load_checkpoint(checkpoint)

    def no_work(*args, **kwargs):
        raise AssertionError("the checkpoint must be checked before any expensive work")

    monkeypatch.setattr(training_module, "BatchEncoder", no_work)
    monkeypatch.setattr(optimization_module, "parameter_groups", no_work)
    with pytest.raises(CheckpointError, match="unreadable"):
        train_multitask(
            make_model(), tiny_data(), tiny_data(), quick_config(), checkpoint=checkpoint, resume=True
        )


def test_cli_resume_with_a_damaged_checkpoint_fails_before_loading_the_model(tmp_path, monkeypatch, capsys):
    out = tmp_path / "model"
    checkpoint_path(out).write_bytes(os.urandom(512))

    def no_model(*args, **kwargs):
        raise AssertionError("the model must not load before the checkpoint is checked")

    monkeypatch.setattr("helpers.train.MultiTaskModel", no_model)
    with pytest.raises(SystemExit) as stop:
        main(["--out", str(out), "--resume", "--freeze-backbone"])
    error = capsys.readouterr().err
    assert stop.value.code == 2 and "is unreadable" in error and "run without --resume" in error


class _Planted:
    """An object whose unpickling would create a file: what a tampered checkpoint could do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_checkpoint_with_code_in_it_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    checkpoint = tmp_path / "run.pt"
    torch.save({"epoch": 1, "payload": _Planted(marker)}, checkpoint)
    with pytest.raises(CheckpointError, match="unreadable"):
        load_checkpoint(checkpoint)
    assert not marker.exists()


def test_missing_or_absent_checkpoints_are_clear_errors(make_model, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "none.pt")
    with pytest.raises(ValueError, match="needs the checkpoint"):
        train_multitask(make_model(), tiny_data(), tiny_data(), quick_config(), resume=True)


def test_a_checkpoint_holds_only_tensors_and_plain_values(make_model, tmp_path):
    checkpoint = tmp_path / "run.pt"
    model = make_model()
    freezing.unfreeze_top_k(model, 1)
    config = quick_config(loss_weighting="uncertainty")
    train_multitask(model, tiny_data(), tiny_data(), config, checkpoint=checkpoint)
    state = torch.load(checkpoint, weights_only=True)  # raises if anything else is in it
    assert state["epoch"] == 1 and load_checkpoint(checkpoint, config)["step"] == state["step"]
    with pytest.raises(CheckpointError, match="different training configuration"):
        load_checkpoint(checkpoint, quick_config(epochs=2))


def test_an_interrupted_checkpoint_write_keeps_the_previous_one(tmp_path, monkeypatch):
    checkpoint = tmp_path / "run.pt"
    save_checkpoint(checkpoint, {"epoch": 1})

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpointing_module.torch, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(checkpoint, {"epoch": 2})
    monkeypatch.undo()
    assert torch.load(checkpoint, weights_only=True) == {"epoch": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.pt"]


# ----- (7) no weight decay on the loss weights -----------------------------------------------------
def test_the_uncertainty_weights_get_no_weight_decay(make_model, monkeypatch):
    created = []
    real_adamw = torch.optim.AdamW

    def recording_adamw(groups, *args, **kwargs):
        optimizer = real_adamw(groups, *args, **kwargs)
        created.append(optimizer)
        return optimizer

    monkeypatch.setattr(optimization_module.torch.optim, "AdamW", recording_adamw)
    model = make_model()
    freezing.freeze_backbone(model)
    train_multitask(model, tiny_data(), tiny_data(), quick_config(loss_weighting="uncertainty"))
    groups = {group["name"]: group for group in created[0].param_groups}
    assert groups["loss weights"]["weight_decay"] == 0.0
    assert groups["head: sentiment"]["weight_decay"] == 0.01


# ----- (kind) every entry point checks its arguments before working --------------------------------
@pytest.mark.parametrize(
    "options, error, message",
    [
        ({"batch_size": 0}, ValueError, "batch_size must be at least 1, got 0"),
        ({"batch_size": "8"}, TypeError, "batch_size must be an integer"),
        ({"max_length": 100_000}, ValueError, "max_length must be between 1 and 512, got 100000"),
        ({"max_length": 0}, ValueError, "max_length must be between 1 and 512"),
        ({"pooling": "avg"}, ValueError, "unknown pooling strategy 'avg'"),
        ({"normalize_embeddings": "no"}, TypeError, "normalize_embeddings must be True or False"),
    ],
)
def test_embed_checks_its_options(encoder, options, error, message):
    with pytest.raises(error, match=message):
        embed(encoder, ["fine"], **options)


@pytest.mark.parametrize("texts", [42, b"bytes", {"a": 1}, [1, 2, 3]])
def test_texts_that_are_not_strings_are_type_errors(encoder, make_model, texts):
    model = make_model()
    for call in (lambda: embed(encoder, texts), lambda: model.predict(texts), lambda: model.tokenize(texts)):
        with pytest.raises(TypeError, match="expected a string|item 0"):
            call()


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


def test_an_unavailable_accelerator_is_refused_up_front():
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ValueError, match="CUDA is not available"):
        model_module.resolve_device("cuda")


@pytest.mark.parametrize(
    "batch_size, error", [(0, ValueError), (-1, ValueError), ("64", TypeError), (2.0, TypeError)]
)
def test_predict_checks_the_batch_size(make_model, batch_size, error):
    with pytest.raises(error, match="batch_size"):
        make_model().predict(TEXTS, batch_size=batch_size)


def test_loading_something_that_is_not_a_model_names_the_problem(saved, tmp_path):
    directory, _ = saved
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotASavedModelError, match="not a directory"):
        MultiTaskModel.load(tmp_path / "file")
    with pytest.raises(TypeError, match="path"):
        MultiTaskModel.load(None)
    config = json.loads((directory / CONFIG_FILE).read_text())
    (directory / CONFIG_FILE).write_text("{not json")
    with pytest.raises(NotASavedModelError, match="not valid JSON"):
        MultiTaskModel.load(directory)
    (directory / CONFIG_FILE).write_text(json.dumps({**config, "format": "someone-else"}))
    with pytest.raises(NotASavedModelError, match="is not a"):
        MultiTaskModel.load(directory)
    (directory / CONFIG_FILE).write_text(json.dumps({**config, "task_labels": {"sentiment": ["a", "b"]}}))
    with pytest.raises(NotASavedModelError, match="damaged or incompatible"):
        MultiTaskModel.load(directory)  # the heads file holds other tasks
    (directory / CONFIG_FILE).write_text(json.dumps(config))
    (directory / "heads.safetensors").write_bytes(os.urandom(64))
    with pytest.raises(NotASavedModelError, match="damaged or incompatible"):
        MultiTaskModel.load(directory)


def test_train_multitask_checks_its_arguments_before_working(make_model):
    model, data = make_model(), tiny_data()
    with pytest.raises(TypeError, match="config must be a TrainingConfig"):
        train_multitask(model, data, data, {"epochs": 1})
    with pytest.raises(TypeError, match="train must map task names to TaskData"):
        train_multitask(model, [("sentiment", data["sentiment"])], data, quick_config())
    with pytest.raises(TypeError, match=r"train\['sentiment'\] must be TaskData"):
        train_multitask(model, {"sentiment": (TINY_MOODS, TINY_MOOD_LABELS)}, data, quick_config())
    with pytest.raises(TypeError, match="on_step must be a function"):
        train_multitask(model, data, data, quick_config(), on_step=3)
    with pytest.raises(TypeError, match="model must be a MultiTaskModel"):
        train_multitask(model.backbone, data, data, quick_config())


def test_task_data_from_a_frame_names_missing_columns():
    import pandas as pd

    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['label'\]"):
        task_data(pd.DataFrame({"text": ["a"]}), ["x", "y"])
    with pytest.raises(TypeError, match="DataFrame"):
        task_data([("a", "x")], ["x", "y"])


def test_the_sampler_refuses_an_empty_task_instead_of_dropping_it():
    with pytest.raises(ValueError, match="task 'b' has no examples here"):
        TaskBatchSampler({"a": 5, "b": 0}, batch_size=2, probability_sizes={"a": 10, "b": 1})
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        TaskBatchSampler({"a": 5}, batch_size=0)


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--encoder-lr", "nan"], "--encoder-lr must be a finite number"),
        (["--head-lr", "inf"], "--head-lr must be a finite number"),
        (["--device", "gpu"], "not a device name"),
    ],
)
def test_cli_checks_numbers_and_the_device_before_loading(tmp_path, capsys, arguments, message):
    with pytest.raises(SystemExit) as stop:
        main(["--out", str(tmp_path / "model"), *arguments])
    assert stop.value.code == 2 and message in capsys.readouterr().err


# ----- what trying the API as a careless user found ------------------------------------------------
def test_labels_from_a_pandas_nullable_column_are_accepted_and_na_is_refused():
    import pandas as pd

    assert TaskData(["a", "b"], pd.Series([1, 0], dtype="Int64")).labels.tolist() == [1, 0]
    with pytest.raises(ValueError, match="position 1 is not a whole number"):
        TaskData(["a", "b"], pd.Series([1, None], dtype="Int64"))


def test_numpy_numbers_in_the_config_still_give_a_readable_checkpoint(make_model, tmp_path):
    config = quick_config(epochs=np.int64(1), head_lr=np.float32(1e-2), seed=np.int64(0))
    assert type(config.epochs) is int and type(config.head_lr) is float
    model = make_model()
    freezing.freeze_backbone(model)
    train_multitask(model, tiny_data(), tiny_data(), config, checkpoint=tmp_path / "run.pt")
    assert load_checkpoint(tmp_path / "run.pt", config)["epoch"] == 1


def test_save_and_load_agree_on_a_home_relative_path(make_model, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    make_model().save("~/models/mtl")
    assert (tmp_path / "models" / "mtl" / CONFIG_FILE).is_file()
    assert MultiTaskModel.load("~/models/mtl", device="cpu").task_labels == TWO_TASKS


def test_small_helpers_check_their_arguments(make_model):
    import pandas as pd

    from helpers.baselines import RuleBasedTagger
    from helpers.data import probe_split
    from helpers.distributed import shard
    from helpers.metrics import confident_mistakes

    with pytest.raises(TypeError, match="k must be an integer"):
        freezing.unfreeze_top_k(make_model(), 2.5)
    with pytest.raises(ValueError, match="k must be between 0 and 6"):
        freezing.unfreeze_top_k(make_model(), 7)
    with pytest.raises(TypeError, match="text must be a string"):
        RuleBasedTagger().predict_one(None)
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        confident_mistakes(["a"], ["x"], np.zeros((1, 3)), ["x", "y"])
    with pytest.raises(ValueError, match="2 texts, 1 true labels"):
        confident_mistakes(["a", "b"], ["x"], np.zeros((2, 2)), ["x", "y"])
    with pytest.raises(ValueError, match="train_size must be"):
        probe_split(pd.DataFrame({"split": ["train"], "label": ["x"]}), 0, ["label"])
    with pytest.raises(ValueError, match="rank must be between 0 and 1"):
        shard(tiny_data(), 2, 2)


def test_a_model_saved_by_the_earlier_cli_can_be_replaced(saved, make_model):
    directory, _ = saved
    config = json.loads((directory / CONFIG_FILE).read_text())
    del config["extra_files"]  # the earlier format: the CLI added training.json after saving
    (directory / CONFIG_FILE).write_text(json.dumps(config))
    (directory / "training.json").write_text("{}")
    make_model(head="mlp").save(directory)
    assert MultiTaskModel.load(directory, device="cpu").config["head"] == "mlp"
    assert not (directory / "training.json").exists()


def test_predicting_needs_no_valid_labels(make_model):
    data = {"sentiment": TaskData(TINY_MOODS, [9] * len(TINY_MOODS))}  # placeholder labels
    assert evaluation_module.predict_labels(make_model(), data)["sentiment"].shape == (len(TINY_MOODS),)
