"""helpers.tool.checkpoint: a run written after every epoch resumes bit for bit; bad checkpoints are
refused before any work, and nothing in one can run code."""

import functools
import os

import numpy as np
import pytest
import torch

from helpers import freezing
from helpers import optimization as optimization_module
from helpers import training as training_module
from helpers.tool.checkpoint import CheckpointError, load_checkpoint, train_with_checkpoints
from helpers.training import train_multitask
from helpers.training_config import TrainingConfig
from tests.conftest import quick_config, tiny_examples, tiny_split


def _no_embedding(*args, **kwargs):
    raise AssertionError("no embedding work may start")


class Interrupt(Exception):
    pass


class _Planted:
    """An object whose unpickling would create a file: what a tampered checkpoint could do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("content", [os.urandom(2048), b""], ids=["random bytes", "empty"])
def test_a_damaged_checkpoint_is_reported_before_any_work(make_model, tmp_path, monkeypatch, content):
    checkpoint = tmp_path / "run.pt"
    checkpoint.write_bytes(content)
    with pytest.raises(CheckpointError, match="is unreadable .*; to start over, delete it"):
        load_checkpoint(checkpoint)

    def no_work(*args, **kwargs):
        raise AssertionError("the checkpoint must be checked before any expensive work")

    monkeypatch.setattr(training_module, "BatchEncoder", no_work)
    monkeypatch.setattr(optimization_module, "parameter_groups", no_work)
    with pytest.raises(CheckpointError, match="unreadable"):
        train_with_checkpoints(
            make_model(), tiny_examples(), tiny_examples(), quick_config(), checkpoint=checkpoint, resume=True
        )


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
    with pytest.raises(TypeError, match="resume must be a TrainingState.state_dict"):
        train_multitask(make_model(), tiny_examples(), tiny_examples(), quick_config(), resume=True)


def test_a_checkpoint_holds_only_tensors_and_plain_values(make_model, tmp_path):
    checkpoint = tmp_path / "run.pt"
    model = make_model()
    freezing.unfreeze_top_k(model, 1)
    config = quick_config(loss_weighting="uncertainty")
    train_with_checkpoints(model, tiny_examples(), tiny_examples(), config, checkpoint=checkpoint)
    state = torch.load(checkpoint, weights_only=True)  # raises if anything else is in it
    assert state["epoch"] == 1 and load_checkpoint(checkpoint, config)["step"] == state["step"]
    with pytest.raises(CheckpointError, match="different training configuration"):
        load_checkpoint(checkpoint, quick_config(epochs=2))


def test_numpy_numbers_in_the_config_still_give_a_readable_checkpoint(make_model, tmp_path):
    config = quick_config(epochs=np.int64(1), head_lr=np.float32(1e-2), seed=np.int64(0))
    assert type(config.epochs) is int and type(config.head_lr) is float
    model = make_model()
    freezing.freeze_backbone(model)
    train_with_checkpoints(model, tiny_examples(), tiny_examples(), config, checkpoint=tmp_path / "run.pt")
    assert load_checkpoint(tmp_path / "run.pt", config)["epoch"] == 1


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
    options = {
        "checkpoint": tmp_path / "run.pt",
        **{key: places.get(value, value) for key, value in options.items()},
    }
    monkeypatch.setattr(training_module, "make_optimizer", _no_embedding)
    with pytest.raises(error, match=message):
        train_with_checkpoints(make_model(), tiny_examples(), tiny_examples(), quick_config(), **options)


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
        train, validation = tiny_split()

        def on_step(step, _model):
            if step == stop_at_step:
                raise Interrupt

        run = functools.partial(train_with_checkpoints, checkpoint=checkpoint, resume=resume)
        result = (train_multitask if checkpoint is None else run)(
            model, train, validation, config, on_step=on_step
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
    train, validation = tiny_split()
    checkpoint = tmp_path / "run.pt"
    train_with_checkpoints(
        model, train, validation, TrainingConfig(epochs=1, progress=False), checkpoint=checkpoint
    )
    with pytest.raises(ValueError, match="different training configuration"):
        train_with_checkpoints(
            make_model(), train, validation, TrainingConfig(epochs=2, progress=False), checkpoint=checkpoint,
            resume=True,
        )  # fmt: skip
    with pytest.raises(ValueError, match="different training configuration"):  # a state read earlier too
        train_with_checkpoints(
            make_model(), train, validation, TrainingConfig(epochs=2, progress=False), checkpoint=checkpoint,
            resume=load_checkpoint(checkpoint),
        )  # fmt: skip


def test_a_diverging_run_stops_and_keeps_the_last_good_checkpoint(make_model, tmp_path):
    """The weights blow up in epoch 2 (as a too-high rate makes them): the run stops at the next
    step with TrainingDiverged naming it, and the checkpoint of epoch 1 stays exactly as written."""
    from helpers.optimization import TrainingDiverged

    model = make_model()
    freezing.unfreeze_top_k(model, 1)
    train, validation = tiny_split()
    checkpoint = tmp_path / "run.pt"
    written = {}

    def blow_up(step, model):  # at the first step after epoch 1's checkpoint was written
        if checkpoint.exists() and not written:
            written["epoch 1"] = checkpoint.read_bytes()
            with torch.no_grad():
                model.heads["sentiment"].layers[-1].weight.mul_(float("inf"))

    config = TrainingConfig(epochs=3, batch_size=4, patience=5, progress=False)
    with pytest.raises(
        TrainingDiverged, match=r"diverged at step \d+ \(epoch 2\).*encoder 5e-05, heads 0\.001"
    ):
        train_with_checkpoints(model, train, validation, config, on_step=blow_up, checkpoint=checkpoint)
    assert checkpoint.read_bytes() == written["epoch 1"]


def test_a_new_run_never_overwrites_an_earlier_runs_checkpoint(make_model, tmp_path):
    """Forgetting resume=True: refused before any work, the earlier checkpoint untouched."""
    checkpoint = tmp_path / "run.pt"
    checkpoint.write_bytes(b"an interrupted run's checkpoint")
    train, validation = tiny_split()
    with pytest.raises(ValueError, match="exists.*resume=True or delete it"):
        train_with_checkpoints(make_model(), train, validation, quick_config(), checkpoint=checkpoint)
    assert checkpoint.read_bytes() == b"an interrupted run's checkpoint"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_resumed_run_on_cuda_draws_the_same_dropout_masks(make_model, tmp_path):
    """Dropout on a GPU draws from the GPU's generator: the checkpoint restores it, bit for bit."""
    config = TrainingConfig(epochs=2, batch_size=4, encoder_lr=1e-4, head_lr=1e-2, patience=5, progress=False)

    def trained(checkpoint=None, stop_at_step=None, resume=False):
        model = make_model(device="cuda")
        torch.manual_seed(0)
        for head in model.heads.values():
            head.layers[-1].reset_parameters()
        freezing.unfreeze_top_k(model, 2)

        def on_step(step, _model):
            if step == stop_at_step:
                raise Interrupt

        train, validation = tiny_split()
        run = functools.partial(train_with_checkpoints, checkpoint=checkpoint, resume=resume)
        (train_multitask if checkpoint is None else run)(model, train, validation, config, on_step=on_step)
        return model

    reference = trained()
    checkpoint = tmp_path / "run.pt"
    with pytest.raises(Interrupt):
        trained(checkpoint, stop_at_step=4)
    resumed = trained(checkpoint, resume=True)
    for name, parameter in reference.state_dict().items():
        assert torch.equal(parameter, resumed.state_dict()[name]), name


def test_a_run_that_stopped_early_stays_stopped_when_resumed(make_model, tmp_path):
    """Interrupted after early stopping decided (while the CLI evaluates and saves): --resume must not
    train on. With zero learning rates the score never improves, so patience 1 stops after epoch 2."""
    config = TrainingConfig(epochs=5, batch_size=4, encoder_lr=0.0, head_lr=0.0, patience=1, progress=False)
    checkpoint = tmp_path / "run.pt"
    train, validation = tiny_split()
    first = train_with_checkpoints(make_model(), train, validation, config, checkpoint=checkpoint)
    assert first.stopped_early and len(first.history) == 2
    resumed = train_with_checkpoints(
        make_model(), train, validation, config, checkpoint=checkpoint, resume=True
    )
    assert resumed.stopped_early and len(resumed.history) == 2 and len(resumed.steps) == len(first.steps)
    assert resumed.seconds >= torch.load(checkpoint, weights_only=True)["seconds"] > 0  # earlier time counts


def test_a_resume_that_does_not_fit_leaves_the_model_as_it_was(make_model, tmp_path):
    """The state of a run with one trainable layer, resumed into a model with two: the optimiser's
    groups differ, and the weights the model had are still there after the error."""
    train, validation = tiny_split()
    trained = make_model()
    freezing.unfreeze_top_k(trained, 1)
    checkpoint = tmp_path / "run.pt"
    config = TrainingConfig(epochs=1, progress=False)
    train_with_checkpoints(trained, train, validation, config, checkpoint=checkpoint)
    other = make_model()
    freezing.unfreeze_top_k(other, 2)
    before = {name: tensor.clone() for name, tensor in other.state_dict().items()}
    with pytest.raises(ValueError, match="does not fit this model"):
        train_multitask(other, train, validation, config, resume=load_checkpoint(checkpoint))
    after = other.state_dict()
    assert all(torch.equal(before[name], after[name]) for name in before)
