"""`make robustness`: do the notebooks' claims survive one thread and other seeds?

usage: python scripts/robustness.py [--variants one-thread seed-1 seed-2] [--parallel] [--report-only]

Executes every notebook again under each perturbation, each run from an empty embedding cache of
its own, into build/robustness/VARIANT/:

- one-thread: OMP/MKL/OpenBLAS limited to one thread. It should reproduce the committed outputs
  within the tolerance of tests/nbval_tolerance.py: thread count changes only the order of
  floating-point reductions, which is what that tolerance is sized for.
- seed-1, seed-2: `papermill -p SEED n`. These legitimately change the numbers; what they test is
  whether each `assert` cell (each claim) still holds.

Every cell runs even after a failing one, so all failing asserts are found in one pass. Then it
compares each executed notebook with the committed one, output by output, as nbval would (same
sanitizers, cells tagged NBVAL_IGNORE_OUTPUT skipped) and writes benchmarks/ROBUSTNESS.md and
benchmarks/robustness.json: the failing asserts, and the spread of every compared number.
--report-only rewrites the report from the runs already in build/robustness/. --parallel runs the
variants side by side, each on one thread: on a 2-core machine that takes about half the time of
running them one after another with two threads each (the seed runs then also use one thread).
"""

from __future__ import annotations

import argparse
import configparser
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]
from run_notebooks import code_cells, failing_cells, run_series  # noqa: E402

from tests.nbval_tolerance import Tolerance, _text_fields, is_decimal, number_pairs  # noqa: E402

ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
VARIANTS = {
    "one-thread": {"env": ONE_THREAD, "parameters": {}},
    "seed-1": {"env": {}, "parameters": {"SEED": 1}},
    "seed-2": {"env": {}, "parameters": {"SEED": 2}},
}
OUT = ROOT / "build" / "robustness"


def tolerance() -> Tolerance:
    """The tolerance that `make test` uses (pyproject.toml's pytest ini options)."""
    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    return Tolerance(float(options["nbval_abs_tolerance"]), float(options["nbval_rel_tolerance"]))


def sanitizers() -> list[tuple[str, str]]:
    """The regex replacements of tests/nbval_sanitize.cfg, applied as nbval applies them."""
    parser = configparser.ConfigParser()
    parser.read(ROOT / "tests" / "nbval_sanitize.cfg")
    return [(parser[section]["regex"], parser[section]["replace"]) for section in parser.sections()]


def sanitize(text: str, patterns: list[tuple[str, str]]) -> str:
    for regex, replace in patterns:
        text = re.sub(regex, replace, text)
    return text


def compare(committed: Path, executed: Path, limit: Tolerance) -> dict:
    """Pair the compared outputs of two versions of a notebook; collect how every number moved."""
    patterns = sanitizers()
    old_cells = code_cells(nbformat.read(committed, as_version=4))
    new_cells = code_cells(nbformat.read(executed, as_version=4))
    if len(old_cells) != len(new_cells):
        raise SystemExit(
            f"{executed} has {len(new_cells)} code cells, the committed {committed.name} {len(old_cells)}: "
            "the notebook changed since this run; run make robustness again"
        )
    decimals, text_changed = [], []
    for index, (old, new) in enumerate(zip(old_cells, new_cells, strict=True)):
        if "NBVAL_IGNORE_OUTPUT" in old.source or any(o.output_type == "error" for o in new.outputs):
            continue
        old_outputs = [o for o in old.outputs if o.output_type != "error"]
        if len(old_outputs) != len(new.outputs):
            text_changed.append(index)
            continue
        changed = False
        for old_output, new_output in zip(old_outputs, new.outputs, strict=True):
            old_fields = {key: box[key] for box, key in _text_fields(old_output)}
            for box, key in _text_fields(new_output):
                if key == "text/html" and "text/plain" in box:
                    continue  # the same numbers as the plain-text form: count them once
                if key not in old_fields:
                    changed = True
                    continue
                pairs = number_pairs(sanitize(box[key], patterns), sanitize(old_fields[key], patterns))
                if pairs is None:
                    changed = True
                    continue
                for new_number, old_number in pairs:
                    if not is_decimal(old_number) or not is_decimal(new_number):
                        changed |= new_number != old_number
                        continue
                    delta = float(new_number) - float(old_number)
                    decimals.append(
                        {"cell": index, "committed": old_number, "new": new_number, "delta": delta}
                    )
        if changed:
            text_changed.append(index)
    outside = [d for d in decimals if not limit.allows(float(d["new"]), float(d["committed"]))]
    moved = [abs(d["delta"]) for d in decimals]
    return {
        "decimals_compared": len(decimals),
        "decimals_changed": sum(1 for m in moved if m > 0),
        "max_abs_delta": max(moved, default=0.0),
        "median_abs_delta_of_changed": statistics.median([m for m in moved if m > 0] or [0.0]),
        "outside_tolerance": outside,
        "cells_with_changed_text_or_integers": text_changed,
        "largest": sorted((d for d in decimals if d["delta"]), key=lambda d: -abs(d["delta"]))[:5],
        "failing_asserts": failing_cells(nbformat.read(executed, as_version=4)),
    }


def run(variants: list[str], threads: int | None = None, only: list[str] | None = None) -> None:
    """Execute the series under each variant; `only` (notebook names) re-runs a subset, keeping the rest."""
    for name in variants:
        folder = OUT / name
        cache = folder / "embedding-cache"
        if cache.exists():
            shutil.rmtree(cache)  # our own folder under build/: every run starts from an empty cache
        limits = ONE_THREAD if threads == 1 else {}
        env = {**os.environ, **limits, **VARIANTS[name]["env"], "MTL_TUTORIAL_CACHE": str(cache)}
        print(f"== {name}", flush=True)
        results = run_series(
            ROOT / "notebooks",
            folder,
            only=only,
            parameters=VARIANTS[name]["parameters"],
            env=env,
            allow_errors=True,
        )
        times = folder / "run_times.json"
        earlier = json.loads(times.read_text()) if only and times.exists() else []
        kept = [r for r in earlier if r["notebook"] not in {new["notebook"] for new in results}]
        merged = sorted(kept + results, key=lambda r: r["notebook"])
        times.write_text(json.dumps(merged, indent=2, allow_nan=False) + "\n")
        settings = {"threads": env.get("OMP_NUM_THREADS", "default"), **VARIANTS[name]["parameters"]}
        (folder / "run_settings.json").write_text(json.dumps(settings) + "\n")


def finished(executed: Path) -> bool:
    """True once papermill has run every code cell of `executed` (it writes the file as it goes)."""
    cells = [c for c in nbformat.read(executed, as_version=4).cells if c.cell_type == "code"]
    return all(c.metadata.get("papermill", {}).get("status") == "completed" for c in cells)


def report() -> dict:
    limit = tolerance()
    found = {}
    for name in VARIANTS:
        folder = OUT / name
        executed = [path for path in sorted(folder.glob("[0-9]*.ipynb")) if finished(path)]
        if executed:
            found[name] = {
                path.name: compare(ROOT / "notebooks" / path.name, path, limit) for path in executed
            }
            settings = folder / "run_settings.json"
            found[name]["settings"] = json.loads(settings.read_text()) if settings.exists() else {}
    (ROOT / "benchmarks" / "robustness.json").write_text(json.dumps(found, indent=1, allow_nan=False) + "\n")
    (ROOT / "benchmarks" / "ROBUSTNESS.md").write_text(markdown(found, limit))
    return found


def markdown(found: dict, limit: Tolerance) -> str:
    lines = [
        "# Robustness of the notebooks' outputs and claims",
        "",
        "Written by `make robustness` (scripts/robustness.py); do not edit by hand. Each notebook was",
        "executed again from an empty embedding cache under each perturbation and compared with its",
        "committed outputs as `make test` compares them (same sanitizers; cells marked",
        "`NBVAL_IGNORE_OUTPUT` skipped).",
        "",
        "Tolerance for decimals in `make test`: "
        f"|new - committed| <= {limit.absolute:g} + {limit.relative:g} x |committed|",
        "(pyproject.toml). The one-thread run must stay inside it, and no assert may fail in any run.",
        "The seed runs change the numbers legitimately; their spread is the noise a claim must beat.",
        "",
        "How the tolerance was sized: runs that should reproduce the committed numbers (one thread,",
        "empty cache) are the reference; since the linear probe is solved to its optimum they reproduce",
        "them exactly here (see the one-thread rows). On another machine of the same kind, the old",
        "probe drifted by up to 0.002 (issue 14). 0.01 leaves room for other CPUs' kernels while",
        "staying well below the sampling noise of a macro-F1 on a few hundred sentences (about 0.02),",
        "so a real change in what a notebook computes still fails `make test`.",
        "",
        "| run | notebook | failing asserts | decimals compared | changed | max abs change "
        "| median abs change (changed) | outside tolerance | cells whose words or integers changed |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, notebooks in found.items():
        for notebook, result in _notebooks(notebooks):
            cells = ", ".join(str(c) for c in result["cells_with_changed_text_or_integers"]) or "none"
            lines.append(
                f"| {name} | {notebook} | {len(result['failing_asserts'])} | {result['decimals_compared']} | "
                f"{result['decimals_changed']} | {result['max_abs_delta']:.4f} | "
                f"{result['median_abs_delta_of_changed']:.4f} | "
                f"{len(result['outside_tolerance'])} | {cells} |"
            )
    lines += ["", "Cell numbers count code cells from 0, as committed.", ""]
    for name, notebooks in found.items():
        settings = ", ".join(f"{key} {value}" for key, value in notebooks.get("settings", {}).items())
        lines += [f"## {name}", "", f"Run with: {settings or 'default settings'}.", ""]
        for notebook, result in _notebooks(notebooks):
            lines.append(f"**{notebook}**")
            lines.append("")
            for failure in result["failing_asserts"]:
                lines.append(
                    f"- failing assert, cell {failure['cell']}: `{failure['line']}` ({failure['error']})"
                )
            for item in result["largest"]:
                lines.append(
                    f"- cell {item['cell']}: committed {item['committed']}, this run {item['new']} "
                    f"(change {item['delta']:+.4f})"
                )
            if not result["failing_asserts"] and not result["largest"]:
                lines.append("- every compared number as committed")
            lines.append("")
    return "\n".join(lines)


def _notebooks(results: dict) -> list[tuple[str, dict]]:
    return [(name, result) for name, result in results.items() if name.endswith(".ipynb")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--notebooks", nargs="+", help="re-run only these notebooks (file names)")
    parser.add_argument("--report-only", action="store_true", help="rewrite the report from earlier runs")
    parser.add_argument(
        "--parallel", action="store_true", help="run the variants side by side, one thread each"
    )
    parser.add_argument("--threads", type=int, choices=[1], help=argparse.SUPPRESS)  # set by --parallel
    parser.add_argument("--no-report", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.parallel and not args.report_only:
        lane = [sys.executable, __file__, "--threads", "1", "--no-report", "--variants"]
        subset = ["--notebooks", *args.notebooks] if args.notebooks else []
        lanes = [subprocess.Popen([*lane, name, *subset]) for name in args.variants]
        if any([process.wait() != 0 for process in lanes]):  # a list: wait for every lane
            return 1
    elif not args.report_only:
        run(args.variants, args.threads, args.notebooks)
    if args.no_report:
        return 0
    found = report()
    failing = sum(len(r["failing_asserts"]) for notebooks in found.values() for _, r in _notebooks(notebooks))
    print(f"{failing} failing asserts; report in benchmarks/ROBUSTNESS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
