"""helpers.tool.saving: saving never destroys anything; loading names what is wrong."""

import json
import os
import stat

import numpy as np
import pytest
import torch

from helpers.tool import saving as saving_module
from helpers.tool.saving import (
    CONFIG_FILE,
    PROJECT_ROOT,
    NotASavedModelError,
    SaveTargetError,
    load_model,
    save_model,
)
from tests.conftest import FOUR_TEXTS, TWO_TASKS, submodule_modes


@pytest.fixture
def saved(make_model, tmp_path):
    """A model saved in tmp_path/model, and the model."""
    model = make_model()
    save_model(model, tmp_path / "model")
    return tmp_path / "model", model


def test_save_refuses_a_folder_holding_a_users_files(make_model, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    with pytest.raises(SaveTargetError, match="notes.txt"):
        save_model(make_model(), folder)
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
    assert (PROJECT_ROOT / "helpers" / "tool" / "saving.py").is_file()  # the repository, not helpers/
    paths = {
        "cwd": work,
        "cwd parent": tmp_path,
        "repository": PROJECT_ROOT,
        "repository parent": PROJECT_ROOT.parent,
    }
    with pytest.raises(SaveTargetError):
        save_model(make_model(), paths.get(place, place))
    assert (work / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]


def test_save_refuses_a_file_and_a_path_under_a_file(make_model, tmp_path):
    (tmp_path / "file").write_text("x")
    for path in (tmp_path / "file", tmp_path / "file" / "model"):
        with pytest.raises(SaveTargetError, match="file"):
            save_model(make_model(), path)
    assert (tmp_path / "file").read_text() == "x"


@pytest.mark.parametrize("bad", [None, 3, ["models/a"]])
def test_save_wants_a_path(make_model, bad):
    with pytest.raises(TypeError, match="path"):
        save_model(make_model(), bad)


def test_save_replaces_a_previous_model_only_when_complete(saved, make_model):
    directory, _ = saved
    newer = make_model()
    with torch.no_grad():
        newer.heads["sentiment"].layers[-1].bias.add_(1.0)
    save_model(newer, directory)
    loaded = load_model(directory, device="cpu")
    torch.testing.assert_close(
        loaded.heads["sentiment"].layers[-1].bias, newer.heads["sentiment"].layers[-1].bias
    )
    assert sorted(p.name for p in directory.parent.iterdir()) == ["model"]


def test_save_into_an_existing_empty_folder(make_model, tmp_path):
    (tmp_path / "empty").mkdir()
    save_model(make_model(), tmp_path / "empty")
    assert load_model(tmp_path / "empty", device="cpu").task_labels == TWO_TASKS


def test_a_model_folder_with_a_users_file_added_is_not_replaced(saved, make_model):
    directory, _ = saved
    (directory / "notes.txt").write_text("keep me")
    with pytest.raises(SaveTargetError, match="notes.txt"):
        save_model(make_model(), directory)
    assert (directory / "notes.txt").read_text() == "keep me"


def test_extra_files_belong_to_the_model(make_model, tmp_path):
    model = make_model()
    save_model(model, tmp_path / "model", extra_files={"training.json": "{}\n"})
    assert (tmp_path / "model" / "training.json").read_text() == "{}\n"
    save_model(model, tmp_path / "model")  # the old training.json is part of the old model: replaced
    assert not (tmp_path / "model" / "training.json").exists()
    for name in ("../escape.txt", "", ".hidden", CONFIG_FILE, "encoder"):
        with pytest.raises(ValueError, match="extra file"):
            save_model(model, tmp_path / "model", extra_files={name: "x"})
    assert not (tmp_path / "escape.txt").exists()


def test_save_through_a_symlink_replaces_the_model_it_points_to(saved, make_model):
    directory, _ = saved
    link = directory.parent / "latest"
    link.symlink_to(directory, target_is_directory=True)
    save_model(make_model(head="mlp"), link)
    assert link.is_symlink()
    assert load_model(directory, device="cpu").config["head"] == "mlp"


def test_an_interrupted_save_keeps_the_previous_model(saved, make_model, monkeypatch):
    directory, old = saved
    before = old.predict_proba(FOUR_TEXTS)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(saving_module, "save_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_model(make_model(head="mlp"), directory)
    loaded = load_model(directory, device="cpu")
    for task in TWO_TASKS:
        np.testing.assert_allclose(loaded.predict_proba(FOUR_TEXTS)[task], before[task], atol=1e-6)
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
        save_model(make_model(head="mlp"), directory)
    monkeypatch.undo()
    assert load_model(directory, device="cpu").config["head"] == "linear"
    assert sorted(p.name for p in directory.parent.iterdir()) == ["model"]


def test_saved_folders_follow_the_umask(make_model, tmp_path):
    previous = os.umask(0o022)
    try:
        save_model(make_model(), tmp_path / "model")
    finally:
        os.umask(previous)
    mode = stat.S_IMODE((tmp_path / "model").stat().st_mode)
    assert mode == 0o755, oct(mode)  # (7) not mkdtemp's 0700: a team can read it
    assert stat.S_IMODE((tmp_path / "model" / CONFIG_FILE).stat().st_mode) == 0o644


def test_a_built_and_a_loaded_model_are_in_eval_mode(saved):
    directory, model = saved
    assert not any(submodule_modes(model).values())
    assert not any(submodule_modes(load_model(directory, device="cpu")).values())


def test_loading_something_that_is_not_a_model_names_the_problem(saved, tmp_path):
    directory, _ = saved
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotASavedModelError, match="not a directory"):
        load_model(tmp_path / "file")
    with pytest.raises(TypeError, match="path"):
        load_model(None)
    config = json.loads((directory / CONFIG_FILE).read_text())
    (directory / CONFIG_FILE).write_text("{not json")
    with pytest.raises(NotASavedModelError, match="not valid JSON"):
        load_model(directory)
    (directory / CONFIG_FILE).write_text(json.dumps({**config, "format": "someone-else"}))
    with pytest.raises(NotASavedModelError, match="is not a"):
        load_model(directory)
    (directory / CONFIG_FILE).write_text(json.dumps({**config, "task_labels": {"sentiment": ["a", "b"]}}))
    with pytest.raises(NotASavedModelError, match="damaged or incompatible"):
        load_model(directory)  # the heads file holds other tasks
    (directory / CONFIG_FILE).write_text(json.dumps(config))
    (directory / "heads.safetensors").write_bytes(os.urandom(64))
    with pytest.raises(NotASavedModelError, match="damaged or incompatible"):
        load_model(directory)


def test_save_and_load_agree_on_a_home_relative_path(make_model, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    save_model(make_model(), "~/models/mtl")
    assert (tmp_path / "models" / "mtl" / CONFIG_FILE).is_file()
    assert load_model("~/models/mtl", device="cpu").task_labels == TWO_TASKS


@pytest.mark.parametrize("where", ["encoder/my_notes.txt", "encoder/sub/deep.txt", "notes/a.txt", "top.txt"])
def test_resave_refuses_user_files_anywhere_in_the_model_tree(make_model, tmp_path, where):
    model = make_model()
    folder = tmp_path / "model"
    save_model(model, folder)
    user_file = folder / where
    user_file.parent.mkdir(parents=True, exist_ok=True)
    user_file.write_text("keep me")
    with pytest.raises(SaveTargetError, match=where.split("/")[-1]):
        save_model(model, folder)
    assert user_file.read_text() == "keep me"


def test_resave_replaces_a_model_that_holds_only_its_own_files(make_model, tmp_path):
    model = make_model()
    save_model(model, tmp_path / "model", extra_files={"log.txt": "x"})
    save_model(model, tmp_path / "model", extra_files={"log.txt": "y"})
    assert (tmp_path / "model" / "log.txt").read_text() == "y"


def test_save_refuses_extra_files_that_are_not_a_mapping(make_model, tmp_path):
    with pytest.raises(TypeError, match="extra_files must map file names.*str"):
        save_model(make_model(), tmp_path / "model", extra_files="abc")
    assert not (tmp_path / "model").exists()


def test_a_diverged_model_with_nan_weights_is_never_saved(make_model, tmp_path):
    model = make_model()
    with torch.no_grad():
        model.heads["sentiment"].layers[-1].bias.fill_(float("nan"))
    with pytest.raises(ValueError, match="NaN or infinite weights.*heads.sentiment"):
        save_model(model, tmp_path / "model")
    assert list(tmp_path.iterdir()) == []


def test_without_replace_a_model_already_there_is_refused_and_kept(saved, make_model):
    directory, original = saved
    before = (directory / "heads.safetensors").read_bytes()
    with pytest.raises(SaveTargetError, match="already holds a saved model"):
        save_model(make_model(), directory, replace=False)
    assert (directory / "heads.safetensors").read_bytes() == before
