"""Distributed training on CPU: two gloo processes end with identical weights; torchrun runs the CLI."""

import datetime
import hashlib
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from helpers import freezing
from helpers.distributed import shard
from helpers.model import MultiTaskModel
from helpers.task_data import TaskData
from helpers.tool.saving import load_model
from helpers.training import train_multitask
from helpers.training_config import TrainingConfig
from tests.conftest import TINY_MOOD_LABELS, TINY_MOODS, TINY_TYPE_LABELS, TINY_TYPES, TWO_TASKS

TYPES, MOODS = TINY_TYPES * 3, TINY_MOODS * 3


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def weight_digest(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, parameter in sorted(model.state_dict().items()):
        digest.update(name.encode() + parameter.detach().cpu().numpy().tobytes())
    return digest.hexdigest()


def train_on_rank(rank: int, world_size: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world_size)
    torch.set_num_threads(1)
    try:
        model = MultiTaskModel(TWO_TASKS, device="cpu")
        freezing.unfreeze_top_k(model, 1)
        before = weight_digest(model)
        data = {
            "sentence_type": TaskData(TYPES, np.array(TINY_TYPE_LABELS * 3)),
            "sentiment": TaskData(MOODS, np.array(TINY_MOOD_LABELS * 3)),
        }
        config = TrainingConfig(epochs=2, batch_size=4, encoder_lr=1e-4, head_lr=1e-2, progress=False)
        result = train_multitask(model, data, data, config)
        record = {
            "before": before,
            "after": weight_digest(model),
            "examples_seen": result.examples_seen,
            "epochs": len(result.history),
        }
        with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as handle:
            json.dump(record, handle)
    finally:
        torch.distributed.destroy_process_group()


def train_uneven_on_rank(rank: int, world_size: int, port: int, out_dir: str, sizes: dict) -> None:
    """Train on `sizes[task]` examples of each task; record the tasks drawn, the weights, or the error."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group(
        "gloo", rank=rank, world_size=world_size, timeout=datetime.timedelta(seconds=120)
    )
    torch.set_num_threads(1)
    try:
        model = MultiTaskModel(TWO_TASKS, device="cpu")
        freezing.freeze_backbone(model)
        sources = {"sentence_type": (TYPES, TINY_TYPE_LABELS * 3), "sentiment": (MOODS, TINY_MOOD_LABELS * 3)}
        data = {task: TaskData(sources[task][0][:n], sources[task][1][:n]) for task, n in sizes.items()}
        config = TrainingConfig(epochs=2, batch_size=2, head_lr=1e-2, progress=False)
        try:
            result = train_multitask(model, data, data, config)
            record = {"tasks": result.steps.task.tolist(), "after": weight_digest(model)}
        except ValueError as error:
            record = {"error": str(error)}
        with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as handle:
            json.dump(record, handle)
    finally:
        torch.distributed.destroy_process_group()


def run_uneven(tmp_path, sizes: dict) -> list[dict]:
    mp.spawn(train_uneven_on_rank, args=(2, free_port(), str(tmp_path), sizes), nprocs=2, join=True)
    return [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in range(2)]


def test_uneven_shards_draw_the_same_task_on_every_process(tmp_path):
    ranks = run_uneven(tmp_path, {"sentence_type": 9, "sentiment": 3})  # shards of 5/4 and 2/1
    assert "error" not in ranks[0], ranks[0]
    assert ranks[0]["tasks"] == ranks[1]["tasks"] and set(ranks[0]["tasks"]) == set(TWO_TASKS)
    assert ranks[0]["after"] == ranks[1]["after"], "the processes drifted apart"


@pytest.mark.parametrize(
    "sizes", [{"sentence_type": 9, "sentiment": 1}, {"sentence_type": 1, "sentiment": 1}]
)
def test_a_task_too_small_to_shard_is_the_same_clear_error_on_every_process(tmp_path, sizes):
    ranks = run_uneven(tmp_path, sizes)
    assert ranks[0] == ranks[1], "every process raises the same error"
    assert "every task needs at least 2 training examples" in ranks[0]["error"]


def test_shards_are_disjoint_and_cover_the_data():
    data = {"t": TaskData([str(i) for i in range(11)], np.arange(11) % 2)}
    shards = [shard(data, rank, 3)["t"].texts for rank in range(3)]
    assert sorted(sum(shards, [])) == sorted(data["t"].texts)
    assert all(not set(a) & set(b) for i, a in enumerate(shards) for b in shards[i + 1 :])


def test_two_gloo_processes_end_with_identical_weights(tmp_path):
    mp.spawn(train_on_rank, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    ranks = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in range(2)]
    assert ranks[0]["after"] == ranks[1]["after"], "the processes drifted apart"
    assert ranks[0]["after"] != ranks[0]["before"], "nothing was trained"  # heads start apart; DDP syncs them
    assert ranks[0]["examples_seen"] == ranks[1]["examples_seen"] > 0
    assert ranks[0]["epochs"] == ranks[1]["epochs"] == 2


def test_torchrun_trains_the_cli_and_rank_zero_saves_a_loadable_model(tmp_path):
    out = tmp_path / "model"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "helpers.tool.cli", "--out", str(out), "--epochs", "1", "--max-train-per-task", "32",
        "--max-eval-per-task", "16", "--unfreeze-top-k", "1", "--batch-size", "8", "--no-progress",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    reports = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(reports) == 1, "only rank 0 reports"
    assert set(json.loads(reports[0])["test"]) == {"sentence_type", "sentiment"}
    model = load_model(out, device="cpu")
    assert set(model.predict(["Is it raining?"])) == {"sentence_type", "sentiment"}
