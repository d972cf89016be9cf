"""`make experiments`: run the experiment grids of notebook 03 (and 04) and write one JSON per run.

usage: python scripts/experiments.py [--grids depth lpft ...] [--runs NAME ...] [--output DIR] [--workers 2]

The grids and what defines a run live in `helpers.analysis.experiments` (`GRIDS`, `RunSpec`). A run
whose file already exists and records the same configuration is skipped, so an interrupted grid
resumes where it stopped; a file with another configuration is run again and replaced. Each file
holds the configuration, the git commit (and whether helpers/ or scripts/ had uncommitted changes),
the machine, the wall time, validation and test macro-F1 and accuracy, and the per-sentence test
predictions. One thread per run (set before torch is imported), so the times compare with the
notebook's one-thread runs; `make experiments` also runs it under `nice`.
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import copy  # noqa: E402
import dataclasses  # noqa: E402
import datetime  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from helpers import freezing  # noqa: E402
from helpers.analysis.experiments import (  # noqa: E402
    COMMAND,
    FORGETTING,
    RESULTS,
    SUBSET_SEED,
    VALIDATION_PER_TASK,
    RunSpec,
    all_runs,
    finished,
    result_path,
    test_subset,
)
from helpers.analysis.forgetting import continue_training, old_head_logits  # noqa: E402
from helpers.analysis.lp_ft import linear_probe_stage, probe_predictions  # noqa: E402
from helpers.analysis.probes import fit_tuned_probe  # noqa: E402
from helpers.data import TASK_LABELS  # noqa: E402
from helpers.data.tasks import limit_per_task, load_task_data  # noqa: E402
from helpers.evaluation import classification_scores, predict_labels, sentence_embeddings  # noqa: E402
from helpers.model import MultiTaskModel  # noqa: E402
from helpers.tool.prefix_cache import build_prefix_caches  # noqa: E402
from helpers.training import train_multitask  # noqa: E402


def git(*arguments: str) -> str:
    return subprocess.run(["git", *arguments], cwd=ROOT, capture_output=True, text=True).stdout.strip()


def provenance() -> dict:
    """The commit and machine every file of this invocation records."""
    return {
        "command": COMMAND,
        "commit": git("rev-parse", "HEAD"),
        "dirty": bool(git("status", "--porcelain", "--", "helpers", "scripts/experiments.py")),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
    }


class Data:
    """The splits every run shares, their frozen sentence embeddings and prefix caches, and the
    tuned probes of each training size (fitted once: every seed starts from the same probe)."""

    def __init__(self, pristine: MultiTaskModel):
        self.pristine = pristine
        self.validation = limit_per_task(load_task_data("validation"), VALIDATION_PER_TASK, seed=SUBSET_SEED)
        self.test = test_subset()
        self._train, self._probes, self._frozen, self._caches = {}, {}, {}, {}
        self.first_stages: dict = {}  # a forgetting run's first stage, shared by its seed's arms

    def train(self, n: int) -> dict:
        if n not in self._train:
            self._train[n] = limit_per_task(load_task_data("train"), n, seed=SUBSET_SEED)
        return self._train[n]

    def unseen(self, n: int, task: str):
        """`n` of `task`'s training sentences outside `train(n)` (stratified, seeded): new data."""
        every, seen = load_task_data("train")[task], set(self.train(n)[task].texts)
        rest = every.subset([i for i, text in enumerate(every.texts) if text not in seen])
        return limit_per_task({task: rest}, n, seed=SUBSET_SEED)[task]

    def split(self, key: str) -> dict:
        return {"validation": self.validation, "test": self.test}.get(key) or self.train(int(key[5:]))

    def frozen(self, key: str) -> dict[str, np.ndarray]:
        """The pre-trained model's sentence embeddings (n, 384) of a split ('train500', 'test', ...)."""
        if key not in self._frozen:
            self._frozen[key] = sentence_embeddings(self.pristine, self.split(key), batch_size=64)
        return self._frozen[key]

    def probes(self, n: int) -> dict:
        if n not in self._probes:
            features, train = self.frozen(f"train{n}"), self.train(n)
            self._probes[n] = {
                task: fit_tuned_probe(features[task], train[task].labels, seed=SUBSET_SEED) for task in train
            }
        return self._probes[n]

    def caches(self, key: str, prefix: int) -> dict | None:
        """Prefix caches of a split after `prefix` frozen layers: moved up from the ones held when
        they are lower (the grid runs in order of rising prefix), else built; None for prefix 0."""
        if prefix == 0:
            return None
        held = self._caches.get(key)
        if held is not None and held[0] == prefix:
            return held[1]
        data = self.split(key)
        if held is not None and held[0] < prefix:
            caches = build_prefix_caches(self.pristine, data, prefix, start_from=held[1])
        else:
            caches = build_prefix_caches(self.pristine, data, prefix)
        self._caches[key] = (prefix, caches)
        return caches


def scores_of(data: dict, predictions: dict) -> dict:
    return {task: classification_scores(data[task].labels, predictions[task]) for task in data}


def fine_tune(spec: RunSpec, data: Data, train: dict, scored: dict, caches: dict) -> tuple:
    """The fine-tuning run `spec` describes: (model, what its file records, {split: predictions})."""
    n, record = spec.train_per_task, {}
    model = copy.deepcopy(data.pristine)
    torch.manual_seed(spec.seed)
    for head in model.heads.values():
        head.layers[-1].reset_parameters()  # seeded random heads (replaced by the probes for LP-FT)
    if spec.heads == "probe":
        frozen = data.frozen(f"train{n}")
        probes = linear_probe_stage(
            model,
            {t: frozen[t] for t in train},
            {t: train[t].labels for t in train},
            probes={t: data.probes(n)[t] for t in train},
        )
        record["probe_C"] = {task: float(probe.C) for task, probe in probes.items()}
    if spec.embeddings:
        freezing.unfreeze_all(model)
    else:
        freezing.unfreeze_top_k(model, spec.k)
    for task in spec.frozen_heads:
        freezing.freeze_head(model, task)
    heads_before = {task: head.layers[-1].weight.detach().clone() for task, head in model.heads.items()}
    result = train_multitask(model, train, None, spec.training_config(), train_caches=caches[f"train{n}"])
    record["train_seconds"] = result.seconds
    record["examples_seen"] = result.examples_seen
    record["head_moved"] = {  # relative change of each head's weight matrix
        task: float((head.layers[-1].weight.detach() - heads_before[task]).norm() / heads_before[task].norm())
        for task, head in model.heads.items()
    }
    for task in spec.frozen_heads:
        if record["head_moved"][task] != 0.0:
            raise RuntimeError(f"the frozen {task!r} head moved")
    predictions = {
        key: predict_labels(model, scored[key], batch_size=64, caches=caches[key])
        for key in ("validation", "test")
    }
    return model, record, predictions


def run(spec: RunSpec, data: Data) -> dict:
    """Train and score one run; the record written to its file (without provenance)."""
    n = spec.train_per_task
    train, record = {task: data.train(n)[task] for task in spec.tasks}, {}
    scored = {key: {task: data.split(key)[task] for task in spec.tasks} for key in ("validation", "test")}
    if spec.is_probe:
        start = time.perf_counter()
        probes = data.probes(n)
        predictions = {
            key: {task: probe_predictions(probes[task], data.frozen(key)[task]) for task in probes}
            for key in ("validation", "test")
        }
        record["probe_C"] = {task: float(probe.C) for task, probe in probes.items()}
        record["examples_seen"] = 0
    else:
        caches = {  # the tasks this run trains and scores (one, for a single-task run)
            key: None if cache is None else {task: cache[task] for task in spec.tasks}
            for key in (f"train{n}", "validation", "test")
            for cache in [data.caches(key, spec.prefix)]
        }
        start = time.perf_counter()
        if spec.protection is None:
            model, part, predictions = fine_tune(spec, data, train, scored, caches)
        else:  # the three arms of a seed continue from one first stage, computed once
            key = dataclasses.replace(spec, grid="depth", protection=None)
            record["first_stage_reused"] = key in data.first_stages  # (its time then not counted)
            if key not in data.first_stages:
                data.first_stages.clear()  # one seed's at a time
                data.first_stages[key] = fine_tune(key, data, train, scored, caches)
            model, part, predictions = copy.deepcopy(data.first_stages[key])
        record.update(part)
        if spec.protection is not None:
            record["scores_before"] = {key: scores_of(scored[key], predictions[key]) for key in predictions}
            record["test_predictions_before"] = {
                task: values.astype(int).tolist() for task, values in predictions["test"].items()
            }
            record["second_stage"] = second_stage(spec, model, data)
            predictions = {
                key: predict_labels(model, scored[key], batch_size=64, caches=caches[key])
                for key in ("validation", "test")
            }
    record["wall_seconds"] = time.perf_counter() - start
    record["scores"] = {key: scores_of(scored[key], predictions[key]) for key in ("validation", "test")}
    record["test_predictions"] = {
        task: values.astype(int).tolist() for task, values in predictions["test"].items()
    }
    record["data"] = {
        key: {task: len(examples) for task, examples in data.split(key).items()}
        for key in (f"train{n}", "validation", "test")
    }
    record["test_texts_sha256"] = {
        task: hashlib.sha256("\n".join(examples.texts).encode()).hexdigest()
        for task, examples in data.test.items()
    }
    return record


def second_stage(spec: RunSpec, model: MultiTaskModel, data: Data) -> dict:
    """Scenario 3 with the old task's data removed (`FORGETTING`): the new task alone, the old head
    frozen, with `spec.protection`; returns what the file records of it."""
    new, old, n = FORGETTING["new"], FORGETTING["old"], spec.train_per_task
    train = {new: data.unseen(n, new)}
    if spec.protection == "rehearsal":
        kept = round(FORGETTING["rehearsal_share"] * n)
        train[old] = limit_per_task({old: data.train(n)[old]}, kept, seed=SUBSET_SEED)[old]
    freezing.freeze_head(model, old)
    head = {name: value.clone() for name, value in model.heads[old].state_dict().items()}
    teacher = old_head_logits(model, old, new, train[new]) if spec.protection == "lwf" else None
    config = dataclasses.replace(spec.training_config(), epochs=spec.then_epochs)
    start = time.perf_counter()
    steps = continue_training(model, train, new, config, teacher=teacher, old=old)
    if any(not torch.equal(value, head[name]) for name, value in model.heads[old].state_dict().items()):
        raise RuntimeError(f"the frozen {old!r} head moved")
    return {
        "train_seconds": time.perf_counter() - start,
        "steps": steps,
        "examples": {task: len(examples) * spec.then_epochs for task, examples in train.items()},
        "new_sentences_seen_before": len(set(train[new].texts) & set(data.train(n)[new].texts)),
    }


def write(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".json.partial")
    temporary.write_text(json.dumps(record, indent=1) + "\n")
    temporary.replace(path)  # a run interrupted while writing leaves no half file behind


def claim(path: Path) -> bool:
    """Claim a run for this process (a lock file with its pid beside the result file), so that two
    invocations on one folder share a grid; a lock whose process has ended is taken over."""
    lock = path.with_suffix(".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(lock, "x") as handle:
            handle.write(str(os.getpid()))
        return True
    except FileExistsError:
        try:
            os.kill(int(lock.read_text() or 0), 0)
            return False  # another live process holds it
        except (ProcessLookupError, ValueError):
            lock.write_text(str(os.getpid()))
            return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grids", nargs="*", help="grids to run (default: all, in order)")
    parser.add_argument("--runs", nargs="*", help="only these runs (file stems, e.g. depth-k2-seed0)")
    parser.add_argument(
        "--output", type=Path, default=RESULTS, help=f"folder of the result files ({RESULTS})"
    )
    parser.add_argument(
        "--reverse", action="store_true", help="run the grid from its other end (a second process)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        choices=(1, 2),
        default=1,
        help="2: a second process (one thread each) runs the grid from its other end; they share it",
    )
    options = parser.parse_args(argv)
    specs = all_runs(options.grids)
    if options.runs:
        unknown = sorted(set(options.runs) - {spec.name for spec in specs})
        if unknown:
            parser.error(f"no such run(s): {unknown}")
        specs = [spec for spec in specs if spec.name in options.runs]
    todo = [spec for spec in specs if not finished(spec, options.output)]
    print(
        f"{len(specs)} runs, {len(specs) - len(todo)} already done, {len(todo)} to run -> {options.output}",
        flush=True,
    )
    if not todo:
        return 0
    second = None
    if options.workers == 2 and not options.reverse:
        command = [sys.executable, __file__, "--reverse", "--output", str(options.output)]
        command += ["--grids", *options.grids] if options.grids else []
        command += ["--runs", *options.runs] if options.runs else []
        second = subprocess.Popen(command)  # its lines start with "(second worker)"
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    todo.sort(key=lambda spec: (spec.train_per_task, not spec.is_probe, spec.prefix))  # caches move up
    stamp = provenance()
    data = Data(MultiTaskModel(TASK_LABELS, device="cpu"))
    who = "(second worker) " if options.reverse else ""
    if options.reverse:
        todo.reverse()
    began = time.perf_counter()
    for index, spec in enumerate(todo, 1):
        if finished(spec, options.output) or not claim(result_path(spec, options.output)):
            print(
                f"{who}[{index}/{len(todo)}] {spec.name}: done or running in another process, skipped",
                flush=True,
            )
            continue
        record = {
            "run": spec.name,
            "configuration": spec.configuration(),
            **stamp,
            "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "load_average": os.getloadavg()[0],
            **run(spec, data),
        }
        write(result_path(spec, options.output), record)
        result_path(spec, options.output).with_suffix(".lock").unlink(missing_ok=True)
        elapsed = time.perf_counter() - began
        left = elapsed / index * (len(todo) - index)
        test = record["scores"]["test"]
        print(
            f"{who}[{index}/{len(todo)}] {spec.name}: {record['wall_seconds']:.0f} s, test macro-F1 "
            + ", ".join(f"{task} {scores['macro_f1']:.3f}" for task, scores in test.items())
            + f" | {elapsed / 60:.1f} min so far, about {left / 60:.0f} min left",
            flush=True,
        )
    if second is not None:
        return second.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
