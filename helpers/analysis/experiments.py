"""`make experiments`: named grids of fine-tuning runs too long for a notebook, one JSON file per run.

Every run starts from the pre-trained all-MiniLM-L6-v2 and the same seeded, stratified training
subset, fine-tunes with notebook 03's recipe (class-weighted, two epochs, batch 16, final weights
kept: nothing is selected on the validation or test sentences) and is scored on notebook 03's
validation subset and on a test subset built the same way (all 637 sentence-type test sentences,
a stratified 637 of the 2,362 sentiment ones: scoring is most of a run's cost). Arms that differ in
one setting share seeds, so their per-seed differences are paired. `RunSpec` defines a run;
`GRIDS` lists every run the command makes; `scripts/experiments.py` runs them and
`load_results` reads the files back.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.analysis.forgetting import LWF_TEMPERATURE, LWF_WEIGHT, PROTECTIONS
from helpers.data import TASK_LABELS
from helpers.data.tasks import limit_per_task, load_task_data
from helpers.training_config import TrainingConfig

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "experiments"
COMMAND = "make experiments"
SEEDS = (0, 1, 2)
SUBSET_SEED = 0  # the training and validation subsets: notebook 03's with SEED = 0
VALIDATION_PER_TASK = 637
TEST_PER_TASK = 637  # all 637 sentence-type test sentences, a stratified 637 of sentiment's 2,362
N_LAYERS = 6
HEAD_KINDS = ("probe", "random")  # heads start as the tuned probe (LP-FT) or seeded random
# scenario 3 with its data removed: after the run, `new` trains alone on as many sentences it has not
# seen (stratified, from the rest of its training split) for `then_epochs` (the same rates, a fresh
# schedule), `old`'s head frozen; rehearsal keeps `rehearsal_share` of `old`'s training sentences
# (stratified) in the mix, LwF distils `old`'s outputs instead
FORGETTING = {"new": "sentiment", "old": "sentence_type", "rehearsal_share": 0.1, "new_sentences": "unseen"}


@dataclass(frozen=True)
class RunSpec:
    """One run: which layers train, how the heads start, which heads are frozen, data and rates.

    `k` top layers train (with `embeddings`: the whole encoder, full fine-tuning). `seed=None` with
    `k=0` is the linear-probe stage alone (deterministic, no fine-tuning).
    """

    grid: str
    k: int
    seed: int | None
    embeddings: bool = False
    heads: str = "probe"
    frozen_heads: tuple[str, ...] = ()
    train_per_task: int = 500
    encoder_lr: float = 1e-4
    head_lr: float = 1e-3
    epochs: int = 2
    tasks: tuple[str, ...] = tuple(TASK_LABELS)  # one task: a single-task run (its head alone trains)
    protection: str | None = None  # then sentiment alone, sentence type's head frozen: see FORGETTING
    then_epochs: int = 4

    def __post_init__(self):
        if not 0 <= self.k <= N_LAYERS or (self.embeddings and self.k != N_LAYERS):
            raise ValueError(f"k must be 0..{N_LAYERS} (and {N_LAYERS} with embeddings), got {self.k}")
        if self.heads not in HEAD_KINDS:
            raise ValueError(f"heads must be one of {HEAD_KINDS}, got {self.heads!r}")
        if (self.seed is None) != (self.k == 0):
            raise ValueError("k = 0 is the probe (seed None); every fine-tuning run needs a seed")
        known = set(TASK_LABELS)
        if not self.tasks or not set(self.tasks) <= known or len(set(self.tasks)) < len(self.tasks):
            raise ValueError(f"tasks must be distinct names of {list(TASK_LABELS)}, got {self.tasks!r}")
        if self.protection is not None and (
            self.protection not in PROTECTIONS or self.single_task or self.is_probe
        ):
            raise ValueError(
                f"protection must be one of {PROTECTIONS}, after a multi-task fine-tuning run; "
                f"got {self.protection!r}"
            )

    @property
    def single_task(self) -> bool:
        return tuple(self.tasks) != tuple(TASK_LABELS)

    @property
    def is_probe(self) -> bool:
        return self.k == 0

    @property
    def prefix(self) -> int:
        """How many of the lowest layers stay frozen (and are cached)."""
        return 0 if self.embeddings else N_LAYERS - self.k

    @property
    def name(self) -> str:
        """The file name's stem, e.g. `depth-k3-seed0`."""
        parts = [self.grid, "full" if self.embeddings else f"k{self.k}"]
        if self.heads != "probe":
            parts.append(f"{self.heads}-heads")
        parts += [f"frozen-{task}" for task in self.frozen_heads]
        if self.single_task:
            parts += [f"only-{task}" for task in self.tasks]
        if self.train_per_task != 500:
            parts.append(f"n{self.train_per_task}")
        if self.encoder_lr != 1e-4 and not self.is_probe:
            parts.append(f"enc{self.encoder_lr:.0e}")
        if self.epochs != 2 and not self.is_probe:
            parts.append(f"e{self.epochs}")
        if self.protection is not None:
            parts += [f"then-{FORGETTING['new']}-e{self.then_epochs}", self.protection]
        parts.append("probe" if self.is_probe else f"seed{self.seed}")
        return "-".join(parts)

    def training_config(self) -> TrainingConfig:
        """The fine-tuning recipe, every setting that matters spelled out."""
        return TrainingConfig(
            epochs=self.epochs,
            batch_size=16,
            encoder_lr=self.encoder_lr,
            head_lr=self.head_lr,
            weight_decay=0.01,
            warmup_fraction=0.1,
            max_grad_norm=1.0,
            sampling="proportional",
            class_weighting="balanced",
            keep_best=False,
            eval_batch_size=64,
            seed=0 if self.seed is None else self.seed,
            progress=False,
        )

    def configuration(self) -> dict:
        """What the run's file must record for it to count as this run (plain JSON values)."""
        recipe = self.training_config()
        keys = (
            "epochs", "batch_size", "encoder_lr", "head_lr", "weight_decay", "warmup_fraction",
            "max_grad_norm", "sampling", "class_weighting", "keep_best", "layer_decay", "seed",
        )  # fmt: skip
        fields = asdict(self)
        if not self.single_task:  # as recorded before single-task runs existed
            del fields["tasks"]
        if self.protection is None:  # as recorded before the forgetting runs existed
            del fields["protection"], fields["then_epochs"]
        else:
            fields["forgetting"] = {
                **FORGETTING,
                "lwf_temperature": LWF_TEMPERATURE,
                "lwf_weight": LWF_WEIGHT,
            }
        return json.loads(
            json.dumps(
                {
                    **fields,
                    "run": self.name,
                    "model": "sentence-transformers/all-MiniLM-L6-v2, linear heads, dropout 0.1",
                    "subset_seed": SUBSET_SEED,
                    "validation_per_task": VALIDATION_PER_TASK,
                    "test_per_task": TEST_PER_TASK,
                    "training": None if self.is_probe else {key: getattr(recipe, key) for key in keys},
                }
            )
        )


def _depth() -> list[RunSpec]:
    runs = [RunSpec("depth", 0, None)]
    for seed in SEEDS:
        runs += [RunSpec("depth", k, seed) for k in range(1, N_LAYERS + 1)]
        runs.append(RunSpec("depth", N_LAYERS, seed, embeddings=True))
    return runs


GRIDS: dict[str, list[RunSpec]] = {
    # k = 0 (the tuned probe) ... 6 and full fine-tuning, from the exact linear-probe stage
    "depth": _depth(),
    # LP-FT against random heads, top 2 (the LP-FT arm is depth's k = 2)
    "lpft": [RunSpec("lpft", 2, seed, heads="random") for seed in SEEDS],
    # are top 1 and top 4 held back by the encoder rate? (1e-4 is depth's k = 1 and 4)
    "rate": [RunSpec("rate", k, seed, encoder_lr=1e-3) for k in (1, 4) for seed in SEEDS],
    # frozen features vs top 2 by training size (500 is depth's)
    "size": [
        spec
        for n in (100, 1500)
        for spec in [RunSpec("size", 0, None, train_per_task=n)]
        + [RunSpec("size", 2, seed, train_per_task=n) for seed in SEEDS]
    ],
    # a frozen head that would have moved: random heads, sentence type's frozen (lpft has it unfrozen)
    "frozen_head": [
        RunSpec("frozen_head", 2, seed, heads="random", frozen_heads=("sentence_type",)) for seed in SEEDS
    ],
    # single-task arms of notebook 03's recipe (top 5) for notebook 04; the multi-task arm is depth's
    # k = 5 with the same seeds and the same 500 sentences of each task (equal per-task exposure)
    "mtl": [RunSpec("mtl", 5, seed, tasks=(task,)) for task in TASK_LABELS for seed in SEEDS],
    # the same single-task arms for 4 epochs: as many encoder steps (and as long a schedule) as the
    # multi-task arm takes with both tasks' batches in 2 epochs; each sentence is then seen twice as often
    "mtl_steps": [
        RunSpec("mtl_steps", 5, seed, tasks=(task,), epochs=4) for task in TASK_LABELS for seed in SEEDS
    ],
    # scenario 3 with sentence type's data removed, from depth's top-5 model (the recommended depth):
    # sentiment alone on 500 unseen sentences for 4 epochs (as many steps as the first stage), no
    # protection / rehearsal / LwF
    "forgetting": [
        RunSpec("forgetting", 5, seed, protection=protection) for seed in SEEDS for protection in PROTECTIONS
    ],
}


def all_runs(grids: Iterable[str] | None = None) -> list[RunSpec]:
    """The runs of the named grids (all of them by default), in the order the command runs them."""
    names = list(GRIDS) if grids is None else list(grids)
    unknown = sorted(set(names) - set(GRIDS))
    if unknown:
        raise ValueError(f"unknown grid(s) {unknown}; the grids are {list(GRIDS)}")
    return [spec for name in names for spec in GRIDS[name]]


def result_path(spec: RunSpec, directory: Path = RESULTS) -> Path:
    return Path(directory) / f"{spec.name}.json"


def finished(spec: RunSpec, directory: Path = RESULTS) -> bool:
    """True when the run's file exists, is complete and records exactly this configuration."""
    path = result_path(spec, directory)
    if not path.exists():
        return False
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError:
        return False
    return record.get("configuration") == spec.configuration() and "test_predictions" in record


def load_results(directory: Path = RESULTS) -> pd.DataFrame:
    """One row per result file: its configuration, the commit and machine that made it, wall time,
    and macro-F1 per split and task (`test_sentence_type`, `validation_sentiment`, ...)."""
    rows = []
    for path in sorted(Path(directory).glob("*.json")):
        record = json.loads(path.read_text())
        row = {key: value for key, value in record["configuration"].items() if key != "training"}
        row["tasks"] = tuple(row.get("tasks", TASK_LABELS))  # multi-task unless the run names one task
        row.update(
            commit=record["commit"][:10],
            dirty=record["dirty"],
            machine=f"{record['machine']['platform']}, {record['machine']['cpu_count']} CPUs",
            seconds=record["wall_seconds"],
            train_seconds=record.get("train_seconds"),
            examples=record.get("examples_seen"),
        )
        for task, moved in record.get("head_moved", {}).items():
            row[f"head_moved_{task}"] = moved  # relative change of the head's weights in fine-tuning
        for task, c in record.get("probe_C", {}).items():
            row[f"probe_C_{task}"] = c  # the probe's penalty, chosen by cross-validation
        for split, scores in record["scores"].items():
            for task, values in scores.items():
                row[f"{split}_{task}"] = values["macro_f1"]
        for split, scores in record.get("scores_before", {}).items():  # forgetting: after the first stage
            for task, values in scores.items():
                row[f"before_{split}_{task}"] = values["macro_f1"]
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        raise FileNotFoundError(f"no result files in {directory}: run `{COMMAND}` first")
    frame["frozen_heads"] = frame["frozen_heads"].map(tuple)
    return frame


def test_subset() -> dict:
    """The test sentences every run is scored on (`TEST_PER_TASK` per task, stratified) per task."""
    return limit_per_task(load_task_data("test"), TEST_PER_TASK, seed=SUBSET_SEED)


def provenance(frame: pd.DataFrame) -> str:
    """One line naming the command, commit(s) and machine(s) behind the results in `frame`."""
    commits = sorted(set(frame["commit"]))
    dirty = " (with uncommitted changes)" if frame["dirty"].any() else ""
    machines = "; ".join(sorted(set(frame["machine"])))
    return f"`{COMMAND}` at commit {', '.join(commits)}{dirty}, on {machines}"


def paired_differences(frame: pd.DataFrame, arm: pd.Series, base: pd.Series, column: str) -> np.ndarray:
    """Per-seed differences `arm - base` of `column` (arms given as boolean row masks of `frame`),
    matched on the seed; ValueError unless both arms hold the same seeds once each."""
    a = frame[arm].set_index("seed")[column]
    b = frame[base].set_index("seed")[column]
    if sorted(a.index) != sorted(b.index) or a.index.has_duplicates:
        raise ValueError(f"the arms do not share their seeds: {sorted(a.index)} vs {sorted(b.index)}")
    return (a - b.loc[a.index]).to_numpy()


TASKS = tuple(TASK_LABELS)
