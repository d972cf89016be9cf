"""helpers.tool.cli: the command line, its checks before any work, resuming, a tiny end-to-end run."""

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict

import numpy as np
import pytest
import torch

from helpers.data.tasks import limit_per_task
from helpers.losses import LossCombiner
from helpers.model import MultiTaskModel
from helpers.task_data import TaskData
from helpers.tool import cli as train_module
from helpers.tool.checkpoint import CHECKPOINT_KEYS
from helpers.tool.cli import build_parser, checkpoint_path, main, run_options, training_config
from helpers.tool.prefix_cache import build_prefix_caches
from helpers.tool.saving import (
    check_save_target,
    load_model,
    save_model,
)
from helpers.training_config import TrainingConfig


@pytest.fixture
def saved(make_model, tmp_path):
    """A model saved in tmp_path/model, and the model."""
    model = make_model()
    save_model(model, tmp_path / "model")
    return tmp_path / "model", model


def _no_embedding(*args, **kwargs):
    raise AssertionError("no embedding work may start")


def _write_checkpoint(out, argv, **run_changes):
    args = build_parser().parse_args(["--out", str(out), *argv])
    state = {key: {} for key in CHECKPOINT_KEYS}
    state["config"] = asdict(training_config(args))
    state["run_options"] = {**run_options(args), **run_changes}
    torch.save(state, checkpoint_path(out))


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


def test_cli_resume_with_a_damaged_checkpoint_fails_before_loading_the_model(tmp_path, monkeypatch, capsys):
    out = tmp_path / "model"
    checkpoint_path(out).write_bytes(os.urandom(512))

    def no_model(*args, **kwargs):
        raise AssertionError("the model must not load before the checkpoint is checked")

    monkeypatch.setattr("helpers.tool.cli.MultiTaskModel", no_model)
    with pytest.raises(SystemExit) as stop:
        main(["--out", str(out), "--resume", "--freeze-backbone"])
    error = capsys.readouterr().err
    assert stop.value.code == 2 and "is unreadable" in error and "run without --resume" in error


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


def test_cli_out_with_a_tilde_is_expanded_before_the_checks(make_model, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    save_model(make_model(), tmp_path / "home" / "model")
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
    monkeypatch.setattr("helpers.tool.cli.MultiTaskModel", _no_embedding)
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


def test_cli_resume_from_a_checkpoint_without_options_is_refused(tmp_path, monkeypatch, capsys):
    out = tmp_path / "model"
    _write_checkpoint(out, [])
    state = torch.load(checkpoint_path(out), weights_only=True)
    del state["run_options"]
    torch.save(state, checkpoint_path(out))
    with pytest.raises(SystemExit) as stop:
        main(["--out", str(out), "--resume"])
    assert stop.value.code == 2 and "lacks run_options" in capsys.readouterr().err


@pytest.mark.parametrize("device", ["meta", "xpu"])
def test_cli_refuses_an_unsupported_device_before_loading(tmp_path, monkeypatch, capsys, device):
    monkeypatch.setattr("helpers.tool.cli.MultiTaskModel", _no_embedding)
    with pytest.raises(SystemExit) as stop:
        main(["--out", str(tmp_path / "model"), "--device", device])
    assert stop.value.code == 2 and "not supported" in capsys.readouterr().err


def test_seeds_must_fit_numpy_and_torch(capsys, tmp_path):
    with pytest.raises(ValueError, match="TrainingConfig.seed.*4294967295"):
        TrainingConfig(seed=2**40)
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "model"), "--seed", "4294967296"])
    assert "--seed must be between 0 and 4294967295" in capsys.readouterr().err


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--epochs", "-1"], "--epochs must be at least 1"),
        (["--max-train-per-task", "-5"], "--max-train-per-task must be at least 1"),
        (["--unfreeze-top-k", "9"], "between 0 and 6"),
        (["--punctuation-dropout", "1.5"], "in [0.0, 1.0], got 1.5"),
        (["--seed", "-3"], "--seed must be between 0 and 4294967295"),
        (["--sampling", "random"], "invalid choice"),
        (["--freeze-backbone", "--unfreeze-top-k", "2"], "not allowed with"),
        (["--bogus"], "unrecognized arguments"),
        (["--epochs", "two"], "not a valid int"),
        (["--loss-weight-lr", "0.1"], "use it with --loss-weighting uncertainty"),
        (["--linear-probe-epochs", "2", "--freeze-backbone"], "nothing is fine-tuned after it"),
        (["--linear-probe-epochs", "-1"], "--linear-probe-epochs must be at least 0"),
        (["--probe-heads", "--linear-probe-epochs", "2"], "without --linear-probe-epochs"),
        (["--probe-heads", "--freeze-backbone"], "without --freeze-backbone"),
        (["--probe-heads", "--head", "mlp"], "needs --head linear"),
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
        "helpers.tool.cli",
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
    model = load_model(out, device="cpu")
    predictions = model.predict(["Where is the nearest station?", "I love this phone."])
    assert set(predictions) == {"sentence_type", "sentiment"}
    config = json.loads((out / "training.json").read_text())["config"]
    assert config["seed"] == 3 and config["gradient_checkpointing"] is True
    assert config["punctuation_dropout"] == 0.5 and config["class_weighting"] == "balanced"
    assert not (tmp_path / ".model.checkpoint.pt").exists(), "a finished run removes its checkpoint"


def test_linear_probe_stage_trains_the_heads_alone_then_restores_the_trainable_layers(tmp_path):
    import numpy as np
    import torch

    from helpers.analysis.lp_ft import train_heads_first
    from helpers.data import TASK_LABELS
    from helpers.data.tasks import limit_per_task, load_task_data
    from helpers.freezing import frozen_prefix_length, unfreeze_top_k
    from helpers.tool.cli import build_parser, heads_config

    torch.manual_seed(0)
    model = MultiTaskModel(TASK_LABELS, device="cpu")
    unfreeze_top_k(model, 1)
    train = limit_per_task(load_task_data("train"), 24, seed=0)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    trainable = {name: p.requires_grad for name, p in model.named_parameters()}
    args = build_parser().parse_args(
        ["--out", "x", "--linear-probe-epochs", "2", "--batch-size", "8", "--class-weighting", "balanced",
         "--no-progress"]
    )  # fmt: skip
    caches = build_prefix_caches(model, train, frozen_prefix_length(model))
    train_heads_first(model, train, heads_config(args), caches)
    changed = {name for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    assert changed and all(name.startswith("heads.") for name in changed)  # the heads, nothing else
    assert {name: p.requires_grad for name, p in model.named_parameters()} == trainable
    assert frozen_prefix_length(model) == len(model.layers) - 1
    assert np.isfinite([float(p.detach().sum()) for p in model.parameters()]).all()


def test_selection_split_strips_the_same_share_of_sentence_types_as_training():
    from helpers.data.tasks import load_task_data
    from helpers.punctuation import has_terminal_punctuation
    from helpers.tool.cli import selection_split

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

    return TaskData(["Go home.", "Why?"], [0, 1])


# ----- a run never silently loses, replaces or corrupts work (issue 29) ---------------------------
TINY_RUN = ["--epochs", "1", "--max-train-per-task", "8", "--max-eval-per-task", "8", "--freeze-backbone"]


def test_a_diverging_run_exits_1_names_step_and_rates_and_saves_nothing(tmp_path, capsys):
    """The typo `--head-lr 1e3` (for 1e-3) and absurd rates: exit status 1, a message with the step,
    the rates and what to try; no model folder, so nothing half-trained can be mistaken for a model."""
    out = tmp_path / "model"
    for rate in ("1e30", "1e3"):
        code = main(["--out", str(out), *TINY_RUN, "--batch-size", "4", "--head-lr", rate, "--no-progress"])
        error = capsys.readouterr().err
        assert code == 1 and "diverged at step" in error and f"heads {float(rate):g}" in error, error
        assert "10 to 100 times lower" in error
        assert not out.exists()


def test_a_second_run_on_the_same_out_stops_at_once_and_the_first_is_kept(tmp_path, capsys):
    """Two terminals, one --out: the second run is refused before loading anything, naming the
    first; the first saves its model undisturbed."""
    out = tmp_path / "model"
    first = subprocess.Popen(
        [sys.executable, "-m", "helpers.tool.cli", "--out", str(out), *TINY_RUN, "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lock = tmp_path / ".model.lock"
    deadline = time.monotonic() + 300  # the first run starts (imports torch) in a few seconds
    while not (lock.exists() and lock.read_text().strip()):
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.05)
    with pytest.raises(SystemExit) as stop:
        main(["--out", str(out), *TINY_RUN, "--overwrite"])
    error = capsys.readouterr().err
    assert stop.value.code == 2 and f"another run (process {first.pid})" in error
    stdout, stderr = first.communicate(timeout=600)
    assert first.returncode == 0, stderr[-2000:]
    assert json.loads(stdout.strip().splitlines()[-1])["out"] == str(out)
    load_model(out, device="cpu")
    assert not lock.exists()


def test_a_model_that_appears_in_out_while_training_is_not_replaced(
    tmp_path, make_model, monkeypatch, capsys
):
    """Something else saves a model into --out while this run trains (no --overwrite): that model
    stays, this run's model is kept beside it, and the run says where (exit status 1)."""
    out = tmp_path / "model"
    other = make_model()
    real_evaluate = train_module.evaluate

    def evaluate_after_someone_saved(model, data, *args, **kwargs):
        if not out.exists():
            save_model(other, out)
        return real_evaluate(model, data, *args, **kwargs)

    monkeypatch.setattr(train_module, "evaluate", evaluate_after_someone_saved)
    assert main(["--out", str(out), *TINY_RUN, "--no-progress"]) == 1
    error = capsys.readouterr().err
    assert "already holds a saved model" in error and "saved to" in error
    (kept,) = tmp_path.glob("model.*-*")
    assert str(kept) in error
    json.loads((kept / "training.json").read_text())  # strict JSON
    heads = load_model(out, device="cpu").heads.state_dict()
    assert all(torch.equal(value, other.heads.state_dict()[name]) for name, value in heads.items())


def test_forgetting_resume_refuses_to_start_and_restart_starts_over(tmp_path, monkeypatch, capsys):
    """Re-running an interrupted command without --resume would overwrite its checkpoint at the
    next epoch's end: refused, saying how to go on or start over; --restart deletes it explicitly."""
    out = tmp_path / "model"
    _write_checkpoint(out, [])
    before = checkpoint_path(out).read_bytes()
    monkeypatch.setattr(train_module, "MultiTaskModel", _no_embedding)
    with pytest.raises(SystemExit) as stop:
        main(["--out", str(out)])
    error = capsys.readouterr().err
    assert stop.value.code == 2 and "--resume" in error and "--restart" in error
    assert checkpoint_path(out).read_bytes() == before
    with pytest.raises(SystemExit) as stop:
        main(["--out", str(out), "--resume", "--restart"])
    assert stop.value.code == 2 and "not allowed with" in capsys.readouterr().err
    seen = {}
    monkeypatch.setattr(train_module, "train_and_save", lambda *args: seen.setdefault("state", args[-1]) or 0)
    assert main(["--out", str(out), "--restart"]) == 0
    assert seen["state"] is None and not checkpoint_path(out).exists()


@pytest.mark.parametrize(
    "then, message",
    [({"processes": 2}, "torchrun processes 2 then, 1 now"), ({"device": "cuda"}, "device 'cuda' then")],
)
def test_resume_refuses_another_number_of_processes_or_device(tmp_path, monkeypatch, capsys, then, message):
    out = tmp_path / "model"
    _write_checkpoint(out, ["--device", "cpu"], **then)
    monkeypatch.setattr(train_module, "MultiTaskModel", _no_embedding)
    with pytest.raises(SystemExit) as stop:
        main(["--out", str(out), "--resume", "--device", "cpu"])
    assert stop.value.code == 2 and message in capsys.readouterr().err


def test_training_json_and_the_report_are_strict_json(tmp_path, capsys):
    out = tmp_path / "model"
    assert main(["--out", str(out), *TINY_RUN, "--no-progress"]) == 0
    strict = {"parse_constant": _no_constant}
    json.loads(capsys.readouterr().out.strip().splitlines()[-1], **strict)
    json.loads((out / "training.json").read_text(), **strict)
    json.loads((out / "multitask_config.json").read_text(), **strict)


def _no_constant(name):
    raise AssertionError(f"{name} is not JSON")


def test_another_name_for_the_same_out_is_the_same_run(tmp_path, monkeypatch, capsys):
    """A symlink to --out, or a RANK left set in the shell: still one run at a time per folder."""
    from helpers.tool.processes import exclusive_output

    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    with exclusive_output(tmp_path / "real"):  # a run is training into real/
        for env in ({}, {"RANK": "1"}):
            with monkeypatch.context() as patch:
                for name, value in env.items():
                    patch.setenv(name, value)
                with pytest.raises(SystemExit) as stop:
                    main(["--out", str(tmp_path / "alias"), *TINY_RUN, "--overwrite"])
            assert stop.value.code == 2 and "another run (process" in capsys.readouterr().err


def test_careless_command_lines_are_refused_clearly(tmp_path, monkeypatch, capsys):
    out = str(tmp_path / "model")
    for argv, message in (
        (["--rest"], "unrecognized arguments: --rest"),  # no abbreviation of a destructive option
        (["--over"], "unrecognized arguments: --over"),
        (["--max-length", "2"], "--max-length must be between 8 and 512"),
    ):
        with pytest.raises(SystemExit) as stop:
            main(["--out", out, *TINY_RUN, *argv])
        assert stop.value.code == 2 and message in capsys.readouterr().err, argv
    monkeypatch.setenv("WORLD_SIZE", "2")  # left over from a cluster job, without torchrun
    with pytest.raises(SystemExit) as stop:
        main(["--out", out, *TINY_RUN])
    assert stop.value.code == 2 and "not started by torchrun" in capsys.readouterr().err
    monkeypatch.delenv("WORLD_SIZE")
    with pytest.raises(SystemExit) as stop:
        main(["--out", "/proc/no-such-place/model", *TINY_RUN])
    assert stop.value.code == 2 and "--out" in capsys.readouterr().err  # a clear error, not a traceback


def test_ctrl_c_saves_nothing_says_how_to_go_on_and_leaves_no_lock(tmp_path, monkeypatch, capsys):
    out = tmp_path / "model"
    _write_checkpoint(out, [])  # an epoch was completed before the interruption

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "check_checkpoint", lambda *args: None)
    monkeypatch.setattr(train_module, "train_and_save", interrupted)
    assert main(["--out", str(out), *TINY_RUN]) == 130
    error = capsys.readouterr().err
    assert "interrupted: nothing saved" in error and "--resume" in error and "Traceback" not in error
    assert not out.exists() and not (tmp_path / ".model.lock").exists()


def test_probe_heads_start_fine_tuning_from_the_tuned_probe(tmp_path, capsys):
    """`--probe-heads`: the saved heads (nothing moves at rate 0) predict what a tuned probe of the
    pre-trained embeddings predicts, sentence by sentence, and the report names each probe's C."""
    from helpers.analysis.lp_ft import probe_predictions
    from helpers.analysis.probes import fit_tuned_probe
    from helpers.data import TASK_LABELS
    from helpers.data.tasks import limit_per_task, load_task_data
    from helpers.evaluation import predict_labels, sentence_embeddings

    out = tmp_path / "model"
    arguments = ["--out", str(out), "--probe-heads", "--unfreeze-top-k", "1", "--epochs", "1"]
    arguments += ["--encoder-lr", "0", "--head-lr", "0", "--max-train-per-task", "60"]
    assert main([*arguments, "--max-eval-per-task", "16", "--seed", "1", "--no-progress"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(report["probe_C"]) == set(TASK_LABELS)
    train = limit_per_task(load_task_data("train"), 60, seed=1)
    features = sentence_embeddings(MultiTaskModel(TASK_LABELS, device="cpu"), train, 32)
    saved = predict_labels(load_model(out, device="cpu"), train)
    for task in TASK_LABELS:
        probe = fit_tuned_probe(features[task], train[task].labels, seed=1)
        assert probe.C == report["probe_C"][task]
        np.testing.assert_array_equal(saved[task], probe_predictions(probe, features[task]))
