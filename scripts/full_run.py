"""The recommended recipe on all the data, measured (`make train`).

usage: python scripts/full_run.py [--out models/full_run] [--results benchmarks] [--resume | --restart]
                                 [--dry-run] [--summary-only]

An interrupted run leaves its checkpoint in `--out`: go on with `--resume` (`make train
TRAIN_ARGS=--resume`) or start over with `--restart`; without either, the CLI refuses to start.

Runs the training CLI with notebook 03's recommendation (the heads start at the tuned linear probe
of the frozen encoder, then the top five of six layers are fine-tuned; class-weighted loss;
punctuation dropout; the model selected on the validation split, never on the test split) on ALL
training data of both tasks, then scores the saved model on the full test split next to the
baselines (`helpers.analysis.reports`, the same functions notebook 04 uses), and writes
`benchmarks/full_run.json` (everything, machine-readable), `benchmarks/FULL_RUN.md` (a summary) and
`benchmarks/full_run_predictions.json` (every test sentence's predicted class and probabilities,
`helpers.analysis.full_run`).
The model stays in `--out` (`models/` is ignored by git). Notebook 04 shows these numbers next to
its own in-budget run; tests/test_full_run.py checks the file's schema and that its command is
one the CLI accepts, with the recipe below.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SCHEMA = 1
# Notebook 03's plan, on all the data: what `make train` runs (the CLI's options, in this order).
RECIPE = (
    "--unfreeze-top-k", "5", "--probe-heads",
    "--epochs", "2", "--batch-size", "16", "--encoder-lr", "0.0001", "--head-lr", "0.001",
    "--class-weighting", "balanced", "--punctuation-dropout", "0.5",
    "--seed", "0", "--no-progress",
)  # fmt: skip
# The targets of the project's issue tracker (a benchmark, not a timed test).
TARGETS = {"sentiment": 0.72, "sentence_type": 0.95}
# Rows of `results["test"]` that compare labels with labels, not a model with labels: FULL_RUN.md
# shows them in a table of their own, under these names.
REFERENCE_POINTS = {
    "label-noise ceiling": "resampled rater panel vs the published labels",
    "stripped-punctuation ceiling": "label rule without final punctuation",
}
REFERENCE_NOTE = (
    "Reference points, not model scores: labels compared with labels. The panel row compares a "
    "resampled panel with the mean of the same raters, so it is optimistic; notebook 04 reports two "
    "independent panels against each other, which agree less."
)
RESULT_KEYS = (
    "schema", "command", "commit", "commit_clean", "machine", "date",
    "wall_seconds", "training", "test", "targets",
)  # fmt: skip


def cli_command(out: Path, *extra: str) -> list[str]:
    """The training command as run: `python -m helpers.tool.cli --out OUT --overwrite` and the recipe
    (`extra`: `--resume` or `--restart`, passed on)."""
    return ["python", "-m", "helpers.tool.cli", "--out", str(out), "--overwrite", *RECIPE, *extra]


def git(*arguments: str) -> str:
    return subprocess.run(
        ["git", *arguments], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


def machine() -> dict:
    import psutil
    import torch

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 1e9, 1),
        "torch_threads": torch.get_num_threads(),
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def probe_scores(seed: int = 0) -> dict:
    """The class-weighted logistic-regression probe on the pre-trained encoder's embeddings of all
    the training data, scored on the full test split (like the fine-tuned model)."""
    import torch

    from helpers.analysis.probes import fit_linear_probe
    from helpers.analysis.reports import macro_f1_by_source
    from helpers.data import TASK_LABELS, load_sentiment
    from helpers.data.tasks import load_task_data
    from helpers.evaluation import classification_scores, sentence_embeddings
    from helpers.model import MultiTaskModel

    torch.manual_seed(seed)
    pretrained = MultiTaskModel(TASK_LABELS, device="cpu")
    train, test = load_task_data("train"), load_task_data("test")
    features = {
        split: sentence_embeddings(pretrained, data, 64) for split, data in (("train", train), ("test", test))
    }
    scores = {}
    for task in TASK_LABELS:
        probe = fit_linear_probe(features["train"][task], train[task].labels, seed=seed)
        predicted = probe.predict(features["test"][task])
        scores[task] = classification_scores(test[task].labels, predicted)["macro_f1"]
        if task == "sentiment":
            sources = load_sentiment("test")["source"].tolist()
            scores["sentiment_by_source"] = macro_f1_by_source(test[task].labels, predicted, sources)
    return scores


def targets(results: dict) -> list[dict]:
    """Each target with the measured number and whether it was met."""
    model, tuned = results["test"]["fine-tuned (this run)"], results["test"]["VADER, tuned on train"]
    margins = {
        s: model["sentiment_by_source"][s] - tuned["sentiment_by_source"][s]
        for s in tuned["sentiment_by_source"]
    }
    rows = [
        ("sentiment, test macro-F1", TARGETS["sentiment"], model["sentiment"]),
        ("sentiment, above tuned VADER on every source (smallest margin)", 0.0, min(margins.values())),
        ("sentence type, test macro-F1", TARGETS["sentence_type"], model["sentence_type"]),
    ]
    rows = [{"target": target, "at_least": low, "measured": value} for target, low, value in rows]
    for row in rows:
        row["met"] = (
            row["measured"] >= row["at_least"] if row["target"].endswith("F1") else row["measured"] > 0
        )
    return rows


def write_summary(results: dict, path: Path) -> None:
    """benchmarks/FULL_RUN.md: the command, the commit, the machine, the time and the test table."""
    test, host, seconds = results["test"], results["machine"], results["wall_seconds"]
    lines = [
        "# The full run (`make train`)",
        "",
        "Notebook 03's recipe on all training data of both tasks, scored once on the full test split. "
        "Written by `scripts/full_run.py`; every number is in `full_run.json`. Do not edit by hand.",
        "",
        f"* command: `{results['command']}`",
        f"* commit: `{results['commit']}`"
        + ("" if results["commit_clean"] else " (with uncommitted changes)"),
        f"* machine: {host['processor']}, {host['cpu_cores']} cores, {host['memory_gb']} GB, "
        f"{host['device']}, torch {host['torch']}",
        f"* date: {results['date']}; wall time: training command {seconds['training'] / 60:.1f} min, "
        f"scoring and baselines {seconds['scoring'] / 60:.1f} min",
        f"* model selected at epoch {results['training']['best_epoch']} of {results['training']['epochs']} "
        "(validation mean macro-F1; sentence-type validation partly stripped like training)",
        "* GPU: not measured (no GPU was available to this project when it ran)",
        "",
        "| test macro-F1 | sentiment | tweet | movie_review | product_review | nyt_editorial "
        "| sentence type | type, stripped | challenge set |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    sources = ("tweet", "movie_review", "product_review", "nyt_editorial")
    views = ("test", "test, punctuation stripped", "challenge set")

    def row(name: str, scores: dict) -> str:
        by_source = scores.get("sentiment_by_source", {})
        type_views = scores.get("sentence_type_views", {})
        type_views = (
            {"test": scores["sentence_type"], **type_views} if "sentence_type" in scores else type_views
        )
        cells = [
            scores.get("sentiment"),
            *(by_source.get(s) for s in sources),
            *(type_views.get(v) for v in views),
        ]
        return f"| {name} | " + " | ".join("" if c is None else f"{c:.3f}" for c in cells) + " |"

    header = lines[-2:]
    shown = {"frozen embeddings + logistic regression": "frozen embeddings + logistic regression (C = 1)"}
    lines += [
        row(shown.get(name, name), scores) for name, scores in test.items() if name not in REFERENCE_POINTS
    ]
    references = [row(shown, test[name]) for name, shown in REFERENCE_POINTS.items() if name in test]
    if references:
        lines += ["", REFERENCE_NOTE, "", *header, *references]
    lines += ["", "| target | at least | measured | met |", "|---|---:|---:|---|"]
    for row in results["targets"]:
        met = "yes" if row["met"] else "no"
        lines.append(f"| {row['target']} | {row['at_least']:.2f} | {row['measured']:.3f} | {met} |")
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("models/full_run"), help="where the model is saved")
    parser.add_argument(
        "--results", type=Path, default=ROOT / "benchmarks", help="folder for full_run.json/.md"
    )
    parser.add_argument("--dry-run", action="store_true", help="print the training command and stop")
    parser.add_argument(
        "--summary-only",
        action="store_true",
        help="rewrite FULL_RUN.md from the committed full_run.json (no training, no scoring)",
    )
    again = parser.add_mutually_exclusive_group()
    again.add_argument(
        "--resume", action="store_true", help="go on from the checkpoint an interrupted run left"
    )
    again.add_argument("--restart", action="store_true", help="discard that checkpoint and start over")
    args = parser.parse_args(argv)
    command = cli_command(
        args.out, *(["--resume"] if args.resume else []), *(["--restart"] if args.restart else [])
    )
    if args.dry_run:
        print(shlex.join(command))
        return 0
    if args.summary_only:
        write_summary(json.loads((args.results / "full_run.json").read_text()), args.results / "FULL_RUN.md")
        print((args.results / "FULL_RUN.md").read_text())
        return 0
    args.results.mkdir(parents=True, exist_ok=True)
    commit = git("rev-parse", "HEAD")
    clean = git("status", "--porcelain", "--untracked-files=no") == ""
    started = datetime.datetime.now(datetime.UTC)
    start = time.perf_counter()
    completed = subprocess.run([sys.executable, *command[1:]], cwd=ROOT, capture_output=True, text=True)
    training_seconds = time.perf_counter() - start
    if completed.returncode != 0:
        sys.stderr.write(completed.stderr[-5000:])
        return completed.returncode
    report = json.loads(completed.stdout.strip().splitlines()[-1])

    from helpers.analysis.reports import baseline_test_scores, model_test_scores
    from helpers.tool.saving import load_model

    start = time.perf_counter()
    model = load_model(ROOT / args.out, device="cpu")
    record = json.loads((ROOT / args.out / "training.json").read_text())
    test = {"fine-tuned (this run)": model_test_scores(model)}
    test["frozen embeddings + logistic regression"] = probe_scores()
    test.update(baseline_test_scores())
    results = {
        "schema": SCHEMA,
        "command": shlex.join(command),
        "commit": commit,
        "commit_clean": clean,
        "machine": machine(),
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "wall_seconds": {
            "training": round(training_seconds, 1),
            "scoring": round(time.perf_counter() - start, 1),
        },
        "training": {
            "best_epoch": report["best_epoch"],
            "epochs": record["config"]["epochs"],
            "train_examples": report["train_examples"],
            "train_seconds": report["seconds"],
            "probe_C": report.get("probe_C"),
            "validation": report["validation"],
            "history": record["history"],
        },
        "test": test,
    }
    results["targets"] = targets(results)
    from helpers.analysis.full_run import prediction_record
    from helpers.tool.files import strict_json

    predictions = prediction_record(model, results)
    (args.results / "full_run_predictions.json").write_text(strict_json(predictions) + "\n")
    (args.results / "full_run.json").write_text(strict_json(results, indent=2) + "\n")
    write_summary(results, args.results / "FULL_RUN.md")
    print((args.results / "FULL_RUN.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
