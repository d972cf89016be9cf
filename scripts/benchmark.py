"""Measure the series' speed and memory and write benchmarks/RESULTS.md (`make bench`).

usage: python scripts/benchmark.py [--repeats N] [--skip-notebooks] [--out benchmarks/RESULTS.md]

Every throughput is the median of N timed runs after a warm-up run; comparisons are given as
ratios, which travel between machines better than absolute times. Budgets from the project's
issue tracker are checked and marked.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from run_notebooks import execute_notebook  # noqa: E402

from helpers import freezing  # noqa: E402
from helpers.analysis.notebook import setup_notebook  # noqa: E402
from helpers.analysis.timing import interleaved_items_per_second, items_per_second  # noqa: E402
from helpers.analysis.vader import vader_sentiment  # noqa: E402
from helpers.data import TASK_LABELS, load_sentence_types, load_sentiment  # noqa: E402
from helpers.data.tasks import limit_per_task, load_task_data  # noqa: E402
from helpers.encoder import embed, load_encoder  # noqa: E402
from helpers.model import SERIES_MAX_LENGTH, MultiTaskModel  # noqa: E402
from helpers.tool.prefix_cache import build_prefix_caches  # noqa: E402
from helpers.training import train_multitask  # noqa: E402
from helpers.training_config import TrainingConfig  # noqa: E402

NOTEBOOK_BUDGET_MINUTES = {"01": 3, "02": 2, "03": 7, "04": 7}  # 03 and 04: their issues (#15, #16)
MEMORY_BUDGET_MB = 1536


def machine_description() -> list[str]:
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [
            line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line
        ]
        cpu = names[0] if names else cpu
    return [
        f"- date: {datetime.date.today().isoformat()}",
        f"- CPU: {cpu}; {os.cpu_count()} logical cores; torch uses {torch.get_num_threads()} threads",
        f"- memory: {psutil.virtual_memory().total / 2**30:.0f} GiB",
        f"- Python {platform.python_version()}, torch {torch.__version__}, {platform.platform()}",
    ]


def notebooks_section() -> list[str]:
    lines = [
        "## Notebooks, executed headless in a fresh kernel",
        "",
        "| notebook | wall time | budget | peak memory (RSS) | budget |",
        "| --- | --- | --- | --- | --- |",
    ]
    total = 0.0
    for notebook in sorted((ROOT / "notebooks").glob("[0-9]*.ipynb")):
        print(f"running {notebook.name}", flush=True)
        result = execute_notebook(notebook, ROOT / "build" / "bench")
        minutes = result["seconds"] / 60
        total += result["seconds"]
        budget = NOTEBOOK_BUDGET_MINUTES.get(notebook.name[:2])
        time_mark = "" if budget is None else ("✓" if minutes < budget else "✗ over")
        memory_mark = "✓" if result["peak_rss_mb"] < MEMORY_BUDGET_MB else "✗ over"
        lines.append(
            f"| {notebook.name} | {minutes:.1f} min | {budget} min {time_mark} | "
            f"{result['peak_rss_mb']} MB | 1,536 MB {memory_mark} |"
        )
    total_budget = sum(NOTEBOOK_BUDGET_MINUTES.values())
    mark = "✓" if total / 60 < total_budget else "✗ over"
    lines += [f"| **all** | **{total / 60:.1f} min** | {total_budget} min {mark} | | |", ""]
    return lines


def encoder_section(repeats: int) -> list[str]:
    encoder = load_encoder()
    texts = load_sentiment("validation").text.head(1000).tolist()
    rates = interleaved_items_per_second(  # timed in turns: a slow spell cannot decide the ratio
        {
            "ours": lambda: embed(encoder, texts, batch_size=64),
            "library": lambda: encoder.encode(texts, batch_size=64, normalize_embeddings=True),
        },
        len(texts),
        rounds=repeats,
    )
    ours, library = rates["ours"], rates["library"]
    ratio = ours / library
    mark = "✓" if ratio >= 0.95 else "✗ below"
    return [
        "## Encoder throughput (1,000 validation sentences, batch 64, length-sorted)",
        "",
        "| path | sentences / s |",
        "| --- | --- |",
        f"| `helpers.encoder.embed` (our tokenise-forward-pool) | {ours:.0f} |",
        f"| `SentenceTransformer.encode` | {library:.0f} |",
        f"| **ratio** | **{ratio:.2f}** (budget ≥ 0.95 {mark}) |",
        "",
    ]


def training_section(repeats: int, n_per_task: int = 256) -> list[str]:
    data = limit_per_task(load_task_data("train"), n_per_task, seed=0)
    validation = limit_per_task(load_task_data("validation"), 16, seed=0)
    n_examples = sum(len(examples) for examples in data.values())
    config = TrainingConfig(epochs=1, batch_size=32, patience=1, progress=False)
    base = load_encoder()

    def fresh_model(k: int) -> MultiTaskModel:
        import copy

        model = MultiTaskModel(
            TASK_LABELS, copy.deepcopy(base[0].auto_model), base[0].tokenizer, device="cpu"
        )
        if k == 6:
            freezing.unfreeze_all(model)
        else:
            freezing.unfreeze_top_k(model, k)
        return model

    rows = {}
    for name, k in (
        ("full fine-tuning", 6),
        ("top-2 layers, frozen-prefix cache", 2),
        ("heads only, cached", 0),
    ):
        model = fresh_model(k)
        prefix = freezing.frozen_prefix_length(model)
        start = time.perf_counter()
        caches = build_prefix_caches(model, data, prefix) if prefix else None
        cache_seconds = time.perf_counter() - start
        validation_caches = build_prefix_caches(model, validation, prefix) if prefix else None

        def run(m=model, c=caches, v=validation_caches):
            train_multitask(m, data, validation, config, train_caches=c, validation_caches=v)

        rate = items_per_second(run, n_examples, repeats)
        rows[name] = (rate, cache_seconds / n_examples * 1000)
    full = rows["full fine-tuning"][0]
    lines = [
        f"## Training throughput ({n_examples} examples, batch 32, max length {SERIES_MAX_LENGTH})",
        "",
        "Steady-state training (the one-off cache pass is listed separately, per example).",
        "",
        "| setting | examples / s | vs full | one-off caching, ms / example |",
        "| --- | --- | --- | --- |",
    ]
    for name, (rate, cache_ms) in rows.items():
        lines.append(f"| {name} | {rate:.0f} | {rate / full:.1f}× | {cache_ms:.1f} |")
    top2 = rows["top-2 layers, frozen-prefix cache"][0] / full
    mark = "✓" if top2 >= 2 else "✗ below"
    lines += ["", f"Top-2 with caching is **{top2:.1f}×** full fine-tuning (budget ≥ 2× {mark}).", ""]
    return lines


def inference_section(repeats: int) -> list[str]:
    texts = (
        load_sentence_types("validation").text.head(300).tolist()
        + load_sentiment("validation").text.head(700).tolist()
    )
    model = MultiTaskModel(TASK_LABELS, device="cpu")
    ours = items_per_second(lambda: model.predict(texts), len(texts), repeats)
    lexicon = items_per_second(lambda: vader_sentiment(texts), len(texts), repeats)
    return [
        "## Inference throughput (1,000 validation sentences)",
        "",
        "| predictor | sentences / s |",
        "| --- | --- |",
        f"| `MultiTaskModel.predict` (both tasks; weights do not change the cost) | {ours:.0f} |",
        f"| VADER lexicon (sentiment only) | {lexicon:.0f} |",
        f"| **ratio model / lexicon** | **{ours / lexicon:.3f}** |",
        "",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-notebooks", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    args = parser.parse_args(argv)
    setup_notebook(seed=0)
    np.random.seed(0)  # noqa: NPY002

    lines = ["# Benchmark results", "", "Written by `make bench` (`scripts/benchmark.py`).", ""]
    lines += ["## Machine", "", *machine_description(), ""]
    if not args.skip_notebooks:
        lines += notebooks_section()
    print("encoder throughput", flush=True)
    lines += encoder_section(args.repeats)
    print("training throughput", flush=True)
    lines += training_section(args.repeats)
    print("inference throughput", flush=True)
    lines += inference_section(args.repeats)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
