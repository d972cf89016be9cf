"""Reliability, second review: the public API used as a careless user would (kinds A1-D13).

Each test names the item of the review it covers.
"""

from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest
import torch

from helpers import embedding_cache
from helpers import encoder as encoder_module
from helpers import train as train_module
from helpers import training as training_module
from helpers.checkpointing import CHECKPOINT_KEYS, load_checkpoint
from helpers.encoder import check_texts
from helpers.evaluation import predict_labels
from helpers.model import resolve_device
from helpers.saving import SaveTargetError
from helpers.task_data import TaskData, limit_per_task, random_rows
from helpers.train import build_parser, checkpoint_path, main, run_options, training_config
from helpers.training import train_multitask
from helpers.training_config import TrainingConfig
from tests.test_reliability import quick_config, tiny_data


# ----- A1: re-saving never deletes a user's files anywhere in the model folder --------------------
@pytest.mark.parametrize("where", ["encoder/my_notes.txt", "encoder/sub/deep.txt", "notes/a.txt", "top.txt"])
def test_resave_refuses_user_files_anywhere_in_the_model_tree(make_model, tmp_path, where):
    model = make_model()
    folder = tmp_path / "model"
    model.save(folder)
    user_file = folder / where
    user_file.parent.mkdir(parents=True, exist_ok=True)
    user_file.write_text("keep me")
    with pytest.raises(SaveTargetError, match=where.split("/")[-1]):
        model.save(folder)
    assert user_file.read_text() == "keep me"


def test_resave_replaces_a_model_that_holds_only_its_own_files(make_model, tmp_path):
    model = make_model()
    model.save(tmp_path / "model", extra_files={"log.txt": "x"})
    model.save(tmp_path / "model", extra_files={"log.txt": "y"})
    assert (tmp_path / "model" / "log.txt").read_text() == "y"


def test_save_refuses_extra_files_that_are_not_a_mapping(make_model, tmp_path):
    with pytest.raises(TypeError, match="extra_files must map file names.*str"):
        make_model().save(tmp_path / "model", extra_files="abc")
    assert not (tmp_path / "model").exists()


# ----- A2: a literal ~ in the CLI's --out is expanded once, before every check ---------------------
def test_cli_out_with_a_tilde_is_expanded_before_the_checks(make_model, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    make_model().save(tmp_path / "home" / "model")
    with pytest.raises(SystemExit) as stop:
        main(["--out", "~/model"])
    assert stop.value.code == 2 and "--overwrite" in capsys.readouterr().err
    assert not (tmp_path / "~").exists()


def test_cli_checkpoint_of_a_tilde_out_lies_in_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    seen = {}
    monkeypatch.setattr(train_module, "train_and_save", lambda args, *rest: seen.setdefault("out", args.out))
    assert main(["--out", "~/model"]) is not None
    assert seen["out"] == tmp_path / "home" / "model"
    assert checkpoint_path(seen["out"]).parent == tmp_path / "home"


# ----- A3: the embedding cache's folder and damaged entries ---------------------------------------
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


def _no_embedding(*args, **kwargs):
    raise AssertionError("no embedding work may start")


def test_a_cache_folder_that_is_a_file_fails_before_any_embedding(tmp_path, monkeypatch):
    (tmp_path / "cache").write_text("not a folder")
    monkeypatch.setenv("MTL_TUTORIAL_CACHE", str(tmp_path / "cache" / "sub"))
    monkeypatch.setattr(embedding_cache, "embed_poolings", _no_embedding)
    with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
        embedding_cache.cached_embed_poolings(None, ["a"], ("mean",), model_key="m")


def _wrong_width(path):
    np.savez(path, mean=np.ones((2, 3), dtype=np.float32), extra=np.ones((2, 4), dtype=np.float32))


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


# ----- A4: --resume must repeat every option that defines the run ---------------------------------
def _write_checkpoint(out, argv, **run_changes):
    args = build_parser().parse_args(["--out", str(out), *argv])
    state = {key: {} for key in CHECKPOINT_KEYS}
    state["config"] = asdict(training_config(args))
    state["run_options"] = {**run_options(args), **run_changes}
    torch.save(state, checkpoint_path(out))


@pytest.mark.parametrize(
    "argv",
    [
        ["--max-train-per-task", "5"],
        ["--max-eval-per-task", "5"],
        ["--head", "mlp"],
        ["--freeze-backbone"],
        ["--unfreeze-top-k", "2"],
        ["--epochs", "2"],
        ["--class-weighting", "balanced"],
    ],
)
def test_cli_resume_with_other_options_names_them_before_loading(tmp_path, monkeypatch, capsys, argv):
    out = tmp_path / "model"
    _write_checkpoint(out, [])
    monkeypatch.setattr("helpers.train.MultiTaskModel", _no_embedding)
    with pytest.raises(SystemExit) as stop:
        main(["--out", str(out), "--resume", *argv])
    error = capsys.readouterr().err
    assert stop.value.code == 2 and argv[0] in error and "differ" in error


def test_cli_resume_with_the_same_options_goes_on(tmp_path, monkeypatch):
    out = tmp_path / "model"
    argv = ["--max-train-per-task", "5", "--head", "mlp", "--unfreeze-top-k", "1"]
    _write_checkpoint(out, argv)
    monkeypatch.setattr(train_module, "train_and_save", lambda args, *rest: 0)
    assert main(["--out", str(out), "--resume", *argv, "--no-progress"]) == 0
    loaded = torch.load(checkpoint_path(out), weights_only=True)  # plain values only
    assert loaded["run_options"]["max_train_per_task"] == 5


def test_cli_resume_from_a_checkpoint_older_than_an_option_takes_its_default(tmp_path, monkeypatch):
    out = tmp_path / "model"
    _write_checkpoint(out, [])
    state = torch.load(checkpoint_path(out), weights_only=True)
    del state["run_options"]["class_weighting"]  # written before --class-weighting existed
    del state["config"]["class_weighting"]
    torch.save(state, checkpoint_path(out))
    assert load_checkpoint(checkpoint_path(out), training_config(build_parser().parse_args(["--out", "x"])))
    monkeypatch.setattr(train_module, "train_and_save", lambda args, *rest: 0)
    assert main(["--out", str(out), "--resume", "--no-progress"]) == 0
    args = build_parser().parse_args(["--out", str(out), "--class-weighting", "balanced"])
    assert training_config(args).class_weighting == "balanced"


def test_cli_resume_from_a_checkpoint_without_options_is_refused(tmp_path, monkeypatch, capsys):
    out = tmp_path / "model"
    _write_checkpoint(out, [])
    state = torch.load(checkpoint_path(out), weights_only=True)
    del state["run_options"]
    torch.save(state, checkpoint_path(out))
    with pytest.raises(SystemExit) as stop:
        main(["--out", str(out), "--resume"])
    assert stop.value.code == 2 and "does not record the run's options" in capsys.readouterr().err


# ----- B5-B7: texts must be ordered; labels in range; subsets by plain indices ---------------------
@pytest.mark.parametrize(
    "texts",
    [pd.DataFrame({"text": ["a", "b"]}), {"a", "b"}, frozenset({"a"}), {"a": 1}, {"a": 1}.keys()],
    ids=["DataFrame", "set", "frozenset", "dict", "keys"],
)
def test_unordered_texts_are_refused(texts):
    with pytest.raises(TypeError, match="texts must be ordered|a mapping|got dict"):
        check_texts(texts)
    with pytest.raises(TypeError):
        TaskData(texts, np.zeros(len(texts), dtype=np.int64))


def test_a_dataframe_error_suggests_its_column():
    with pytest.raises(TypeError, match=r"df\['text'\]"):
        check_texts(pd.DataFrame({"text": ["a"]}))


@pytest.mark.parametrize(
    "labels",
    [
        np.array([2**64 - 1], dtype=np.uint64),
        np.array([1e20]),
        np.array([2.0**63]),
        np.array([2**70], dtype=object),
    ],
    ids=["uint64-max", "1e20", "2**63", "python-int"],
)
def test_labels_that_would_overflow_int64_are_refused(labels):
    with pytest.raises(ValueError, match="position 0"):
        TaskData(["a"], labels)


def test_large_valid_labels_are_kept_exactly():
    assert TaskData(["a"], np.array([2**62], dtype=np.uint64)).labels[0] == 2**62


def test_subset_refuses_a_boolean_mask_and_negative_or_too_large_indices():
    data = TaskData(["a", "b", "c"], np.array([0, 1, 0]))
    with pytest.raises(TypeError, match="boolean mask"):
        data.subset(np.array([True, False, True]))
    with pytest.raises(TypeError, match="boolean mask"):
        data.subset([True, False, True])
    with pytest.raises(IndexError, match="index -1 .* 0..2"):
        data.subset([0, -1])
    with pytest.raises(IndexError, match="index 3 .* 0..2"):
        data.subset([3])
    assert data.subset([2, 0]).texts == ["c", "a"] and len(data.subset([])) == 0


# ----- B8: cache keys cannot collide through texts holding "\0" ----------------------------------
def test_cache_keys_of_texts_with_nul_characters_differ():
    key = embedding_cache.cache_key
    assert key(["a\0b", "c"], ("mean",), None, "m") != key(["a", "b\0c"], ("mean",), None, "m")
    assert key(["a\0"], ("mean",), None, "m") != key(["a", ""], ("mean",), None, "m")


# ----- B9: task names in the configuration must be the model's --------------------------------------
def test_loss_weights_are_refused_unless_the_weighting_is_fixed():
    with pytest.raises(ValueError, match="loss_weighting='fixed'.*'sum'"):
        TrainingConfig(loss_weights={"sentiment": 1.0}, loss_weighting="sum")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"loss_weighting": "fixed", "loss_weights": {"sentence_type": 1.0, "sentimnet": 1.0}}, "sentimnet"),
        ({"loss_weighting": "fixed", "loss_weights": {"sentence_type": 1.0}}, "lacks a weight .*sentiment"),
        ({"punctuation_dropout": 0.5, "punctuation_tasks": ("sentence_typ",)}, "sentence_typ"),
    ],
)
def test_task_names_in_the_config_must_be_the_models(make_model, monkeypatch, options, message):
    monkeypatch.setattr(training_module, "make_optimizer", _no_embedding)
    with pytest.raises(ValueError, match=message):
        train_multitask(make_model(), tiny_data(), tiny_data(), quick_config(**options))


# ----- C10, D13: checkpoint and resume arguments, checked up front ----------------------------------
@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"checkpoint": "FOLDER"}, ValueError, "is a folder"),
        ({"checkpoint": "FILE/run.pt"}, ValueError, "is a file, not a folder"),
        ({"checkpoint": 5}, TypeError, "checkpoint must be a file path"),
        ({"resume": "no"}, TypeError, "resume must be True or False"),
    ],
)
def test_checkpoint_and_resume_are_checked_before_training(
    make_model, tmp_path, monkeypatch, options, error, message
):
    (tmp_path / "FILE").write_text("x")
    places = {"FOLDER": tmp_path, "FILE/run.pt": tmp_path / "FILE" / "run.pt"}
    options = {key: places.get(value, value) for key, value in options.items()}
    monkeypatch.setattr(training_module, "make_optimizer", _no_embedding)
    with pytest.raises(error, match=message):
        train_multitask(make_model(), tiny_data(), tiny_data(), quick_config(), **options)


# ----- C12: only cpu, cuda[:n] and mps, checked before loading -------------------------------------
@pytest.mark.parametrize("device", ["meta", "xpu", "cuda:99" if torch.cuda.is_available() else "cuda"])
def test_unsupported_or_missing_devices_are_refused(device):
    with pytest.raises(ValueError, match=repr(device)):
        resolve_device(device)


@pytest.mark.parametrize("device", ["meta", "xpu"])
def test_cli_refuses_an_unsupported_device_before_loading(tmp_path, monkeypatch, capsys, device):
    monkeypatch.setattr("helpers.train.MultiTaskModel", _no_embedding)
    with pytest.raises(SystemExit) as stop:
        main(["--out", str(tmp_path / "model"), "--device", device])
    assert stop.value.code == 2 and "not supported" in capsys.readouterr().err


# ----- D13: seeds and other settings -------------------------------------------------------------
def test_seeds_must_fit_numpy_and_torch(capsys, tmp_path):
    with pytest.raises(ValueError, match="TrainingConfig.seed.*4294967295"):
        TrainingConfig(seed=2**40)
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "model"), "--seed", "4294967296"])
    assert "--seed must be between 0 and 4294967295" in capsys.readouterr().err


def test_punctuation_tasks_none_is_a_clear_error():
    with pytest.raises(TypeError, match="punctuation_tasks must be a tuple of task names"):
        TrainingConfig(punctuation_tasks=None)


def test_subset_seeds_must_fit_numpy():
    with pytest.raises(ValueError, match="seed must be between 0 and 4294967295, got 4294967296"):
        limit_per_task(tiny_data(), 2, seed=2**32)
    with pytest.raises(TypeError, match="seed"):
        random_rows(tiny_data(), {}, seed=1.5)


def test_tokenizing_no_texts_gives_an_empty_batch(make_model, encoder):
    model = make_model()
    for batch in (model.tokenize([]), encoder_module.tokenize(encoder, [])):
        assert set(batch) >= {"input_ids", "attention_mask"}
        assert all(tensor.shape[0] == 0 for tensor in batch.values())
    assert (
        model.tokenize(["a b"])["input_ids"].tolist()
        == encoder_module.tokenize(encoder, ["a b"])["input_ids"].tolist()
    )


def test_predicting_labels_for_a_task_without_examples_is_a_clear_error(make_model):
    empty = {"sentiment": TaskData([], np.zeros(0, dtype=np.int64))}
    with pytest.raises(ValueError, match=r"\['sentiment'\] has no examples"):
        predict_labels(make_model(), empty)


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"device": "meta"}, ValueError, "not supported"),
        ({"model_dir": 5}, TypeError, "model_dir must be a folder"),
    ],
)
def test_load_encoder_checks_its_arguments_before_hashing(monkeypatch, options, error, message):
    monkeypatch.setattr(encoder_module, "verify_model_dir", _no_embedding)
    with pytest.raises(error, match=message):
        encoder_module.load_encoder(**options)


@pytest.mark.parametrize("task", ["__class__", "keys", "training", "forward"])
def test_task_names_that_clash_with_module_dict_attributes_are_refused(make_model, task):
    with pytest.raises(ValueError, match=f"task name '{task}' is reserved"):
        make_model({task: ["a", "b"]})
