"""The training command line: bad arguments exit 2 with a usage error; a tiny run saves a loadable model."""

import json
import subprocess
import sys

import pytest

from helpers.model import MultiTaskModel
from helpers.train import main


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--epochs", "-1"], "--epochs must be at least 1"),
        (["--max-train-per-task", "-5"], "--max-train-per-task must be at least 1"),
        (["--unfreeze-top-k", "9"], "between 0 and 6"),
        (["--punctuation-dropout", "1.5"], "between 0.0 and 1.0"),
        (["--seed", "-3"], "--seed must be between 0 and 4294967295"),
        (["--sampling", "random"], "invalid choice"),
        (["--freeze-backbone", "--unfreeze-top-k", "2"], "not allowed with"),
        (["--bogus"], "unrecognized arguments"),
        (["--epochs", "two"], "not a valid int"),
    ],
)
def test_bad_arguments_exit_2_with_a_usage_error(tmp_path, capsys, arguments, message):
    with pytest.raises(SystemExit) as stop:
        main(["--out", str(tmp_path / "model"), *arguments])
    assert stop.value.code == 2
    error = capsys.readouterr().err
    assert "usage:" in error and message in error


def test_out_must_not_be_a_file(tmp_path, capsys):
    existing = tmp_path / "notes.txt"
    existing.write_text("keep me")
    with pytest.raises(SystemExit) as stop:
        main(["--out", str(existing)])
    assert stop.value.code == 2 and "is an existing file" in capsys.readouterr().err
    assert existing.read_text() == "keep me"


def test_a_previous_model_is_never_overwritten_silently(tmp_path, capsys):
    previous = tmp_path / "model"
    previous.mkdir()
    (previous / "multitask_config.json").write_text("{}")
    with pytest.raises(SystemExit) as stop:
        main(["--out", str(previous)])
    assert stop.value.code == 2 and "--overwrite" in capsys.readouterr().err
    assert (previous / "multitask_config.json").read_text() == "{}"


def test_resume_without_a_checkpoint_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--out", str(tmp_path / "model"), "--resume"])
    assert stop.value.code == 2 and "no checkpoint to resume from" in capsys.readouterr().err


def test_missing_out_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as stop:
        main([])
    assert stop.value.code == 2 and "--out" in capsys.readouterr().err


def test_a_tiny_run_end_to_end_saves_a_loadable_model(tmp_path):
    out = tmp_path / "model"
    command = [
        sys.executable,
        "-m",
        "helpers.train",
        "--out",
        str(out),
        "--epochs",
        "1",
        "--max-train-per-task",
        "48",
        "--max-eval-per-task",
        "32",
        "--unfreeze-top-k",
        "1",
        "--no-progress",
        "--gradient-checkpointing",
        "--seed",
        "3",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(report["test"]) == {"sentence_type", "sentiment"}
    assert 0.0 <= report["test"]["sentiment"]["macro_f1"] <= 1.0
    model = MultiTaskModel.load(out, device="cpu")
    predictions = model.predict(["Where is the nearest station?", "I love this phone."])
    assert set(predictions) == {"sentence_type", "sentiment"}
    config = json.loads((out / "training.json").read_text())["config"]
    assert config["seed"] == 3 and config["gradient_checkpointing"] is True
    assert not (tmp_path / ".model.checkpoint.pt").exists(), "a finished run removes its checkpoint"
