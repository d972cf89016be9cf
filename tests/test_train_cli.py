"""The training command line: bad arguments exit 2 with a usage error; a tiny run saves a loadable model."""

import json
import subprocess
import sys

import numpy as np
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
        (["--loss-weight-lr", "0.1"], "use it with --loss-weighting uncertainty"),
        (["--linear-probe-epochs", "2", "--freeze-backbone"], "nothing is fine-tuned after it"),
        (["--linear-probe-epochs", "-1"], "--linear-probe-epochs must be at least 0"),
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
        "--linear-probe-epochs",
        "1",
        "--punctuation-dropout",
        "0.5",
        "--class-weighting",
        "balanced",
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
    assert config["punctuation_dropout"] == 0.5 and config["class_weighting"] == "balanced"
    assert not (tmp_path / ".model.checkpoint.pt").exists(), "a finished run removes its checkpoint"


def test_linear_probe_stage_trains_the_heads_alone_then_restores_the_trainable_layers(tmp_path):
    import argparse

    import numpy as np
    import torch

    from helpers.data import TASK_LABELS
    from helpers.freezing import frozen_prefix_length, unfreeze_top_k
    from helpers.prefix_cache import build_prefix_caches
    from helpers.task_data import limit_per_task, load_task_data
    from helpers.train import train_heads_first

    torch.manual_seed(0)
    model = MultiTaskModel(TASK_LABELS, device="cpu")
    unfreeze_top_k(model, 1)
    train = limit_per_task(load_task_data("train"), 24, seed=0)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    trainable = {name: p.requires_grad for name, p in model.named_parameters()}
    args = argparse.Namespace(
        linear_probe_epochs=2, batch_size=8, linear_probe_lr=1e-2, class_weighting="balanced",
        seed=0, no_progress=True,
    )  # fmt: skip
    caches = build_prefix_caches(model, train, frozen_prefix_length(model))
    train_heads_first(model, train, args, caches)
    changed = {name for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    assert changed and all(name.startswith("heads.") for name in changed)  # the heads, nothing else
    assert {name: p.requires_grad for name, p in model.named_parameters()} == trainable
    assert frozen_prefix_length(model) == len(model.layers) - 1
    assert np.isfinite([float(p.detach().sum()) for p in model.parameters()]).all()


def test_selection_split_strips_the_same_share_of_sentence_types_as_training():
    from helpers.data import has_terminal_punctuation
    from helpers.task_data import limit_per_task, load_task_data
    from helpers.train import selection_split

    validation = limit_per_task(load_task_data("validation"), 200, seed=0)
    selected = selection_split(validation, 0.5, seed=4)
    assert selected["sentiment"] is validation["sentiment"]
    kept = sum(has_terminal_punctuation(text) for text in selected["sentence_type"].texts)
    originally = sum(has_terminal_punctuation(text) for text in validation["sentence_type"].texts)
    assert abs(kept - originally / 2) <= 3  # about half of those with a mark lost it
    assert np.array_equal(selected["sentence_type"].labels, validation["sentence_type"].labels)
    again = selection_split(validation, 0.5, seed=4)
    assert again["sentence_type"].texts == selected["sentence_type"].texts  # seeded


def test_uncertainty_weights_learn_at_their_own_rate():
    from helpers.data import TASK_LABELS
    from helpers.freezing import unfreeze_top_k
    from helpers.losses import LossCombiner
    from helpers.optimization import make_optimizer
    from helpers.training_config import TrainingConfig

    model = MultiTaskModel(TASK_LABELS, device="cpu")
    unfreeze_top_k(model, 0)
    combiner = LossCombiner(list(TASK_LABELS), "uncertainty")
    for rate, expected in ((None, 1e-3), (0.05, 0.05)):
        config = TrainingConfig(head_lr=1e-3, loss_weighting="uncertainty", loss_weight_lr=rate)
        groups = {g["name"]: g for g in make_optimizer(model, combiner, config).param_groups}
        assert groups["loss weights"]["lr"] == expected and groups["loss weights"]["weight_decay"] == 0.0
    with pytest.raises(ValueError, match="loss_weight_lr"):
        TrainingConfig(loss_weight_lr=-1.0)
    with pytest.raises(ValueError, match="rate"):
        load_task_data_row().with_punctuation_dropout(1.5)


def load_task_data_row():
    from helpers.task_data import TaskData

    return TaskData(["Go home.", "Why?"], [0, 1])
