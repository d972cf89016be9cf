"""Execute every notebook of the series in order, headless, with papermill.

usage: python scripts/run_notebooks.py [NOTEBOOK_DIR] [OUTPUT_DIR] [--update-committed]

Each notebook runs in a fresh kernel, with papermill's per-cell progress bar, into OUTPUT_DIR
(default build/notebooks); the committed notebooks are never modified, unless
--update-committed is given: then, once every notebook has run without error, the executed
copies replace the committed ones, with papermill's run metadata (timestamps, paths) stripped.
That is how the committed outputs are made (`make notebooks`): from a clean run, never from a
warm working kernel.

For each notebook it prints the wall time and the peak resident memory of the process tree that
ran it (the Jupyter kernel dominates). Run it with MTL_TUTORIAL_CACHE pointing at an empty folder
for a hermetic run (the Makefile does).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import nbformat

# Runs papermill in a child process, then prints the peak RSS (KiB) of its largest descendant.
CHILD = """
import json, resource, sys, papermill
from papermill.exceptions import PapermillExecutionError
options = json.loads(sys.argv[1])
try:
    papermill.execute_notebook(**options)
except PapermillExecutionError as error:
    print(f"{type(error).__name__}: {error}", file=sys.stderr)
    if not options.get("allow_errors"):
        sys.exit(1)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""
RUN_METADATA = ("papermill", "execution")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
ARROW = re.compile(r"^\s*-+>\s*\d+\s*")


def execute_notebook(
    notebook: Path,
    output_dir: Path,
    parameters: Mapping[str, object] | None = None,
    env: Mapping[str, str] | None = None,
    allow_errors: bool = False,
    timeout: int = 1800,
) -> dict:
    """Execute `notebook` into `output_dir` with papermill, in its own folder as working directory.

    `parameters` are injected after the cell tagged `parameters`; `env` replaces the environment;
    with `allow_errors` every cell runs even after a failing one (for `make robustness`).
    Returns its name, wall time (s), peak memory (MB) and the cells that raised an error.
    Raises SystemExit when the notebook fails and errors are not allowed.
    """
    output_dir.mkdir(parents=True, exist_ok=True)  # e.g. build/bench on a fresh clone
    output = output_dir / notebook.name
    options = {
        "input_path": str(notebook),
        "output_path": str(output),
        "parameters": dict(parameters or {}),
        "cwd": str(notebook.parent),
        "progress_bar": sys.stderr.isatty(),
        "log_output": False,
        "execution_timeout": timeout,
        "allow_errors": allow_errors,
    }
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(options)], stdout=subprocess.PIPE, text=True, env=env
    )
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{notebook.name} failed after {seconds:.0f} s; its executed copy: {output}")
    peak_mb = int(result.stdout.strip().splitlines()[-1]) / 1024
    return {
        "notebook": notebook.name,
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(peak_mb),
        "errors": failing_cells(nbformat.read(output, as_version=4)),
    }


def failing_cells(notebook: nbformat.NotebookNode) -> list[dict]:
    """The code cells of an executed notebook that raised: the error, and the line that raised it."""
    failures = []
    for index, cell in enumerate(code_cells(notebook)):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                failures.append(
                    {
                        "cell": index,
                        "error": f"{output.ename}: {output.evalue}".strip(),
                        "line": raising_line(output.get("traceback", [])),
                    }
                )
    return failures


def raising_line(traceback: list[str]) -> str:
    """The source line IPython marks with an arrow in the cell's own frame of a traceback."""
    text = ANSI.sub("", "\n".join(traceback))
    marked = [line for line in text.splitlines() if ARROW.match(line)]
    return ARROW.sub("", marked[0]).strip() if marked else ""


def code_cells(notebook: nbformat.NotebookNode) -> list:
    """The code cells, without the one papermill injects for parameters (indices as committed)."""
    return [
        cell
        for cell in notebook.cells
        if cell.cell_type == "code" and "injected-parameters" not in cell.metadata.get("tags", [])
    ]


def strip_run_metadata(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop papermill's timestamps, durations and paths, which change on every run."""
    for key in RUN_METADATA:
        notebook.metadata.pop(key, None)
    for cell in notebook.cells:
        for key in RUN_METADATA:
            cell.metadata.pop(key, None)
    return notebook


def run_series(notebook_dir: Path, output_dir: Path, only: list[str] | None = None, **options) -> list[dict]:
    """Execute the numbered notebooks of `notebook_dir` in order (all, or those named in `only`).

    Prints one line per notebook. Raises ValueError for a name in `only` that is not there.
    """
    notebooks = sorted(notebook_dir.glob("[0-9]*.ipynb"))
    if only:
        unknown = set(only) - {path.name for path in notebooks}
        if unknown:
            raise ValueError(f"no such notebook in {notebook_dir}: {', '.join(sorted(unknown))}")
        notebooks = [path for path in notebooks if path.name in only]
    output_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for notebook in notebooks:
        print(f"running {notebook.name} ...", flush=True)
        results.append(execute_notebook(notebook, output_dir, **options))
        result = results[-1]
        failed = f"   {len(result['errors'])} failing cells" if result["errors"] else ""
        print(f"  {result['seconds']:7.1f} s   peak {result['peak_rss_mb']:5d} MB{failed}", flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook_dir", nargs="?", default="notebooks", type=Path)
    parser.add_argument("output_dir", nargs="?", default="build/notebooks", type=Path)
    parser.add_argument(
        "--update-committed",
        action="store_true",
        help="after a clean run, replace the committed notebooks with the executed copies",
    )
    parser.add_argument(
        "--only", nargs="+", metavar="NOTEBOOK", help="run only these notebooks (file names), in series order"
    )
    args = parser.parse_args(argv)
    notebook_dir, output_dir = args.notebook_dir.resolve(), args.output_dir.resolve()
    if notebook_dir == output_dir:
        parser.error("the output folder must differ from the notebook folder")
    if not any(notebook_dir.glob("[0-9]*.ipynb")):
        print(f"No notebooks in {notebook_dir}: nothing to run.")
        return 0
    try:
        results = run_series(notebook_dir, output_dir, only=args.only)
    except ValueError as error:
        parser.error(str(error))
    total = sum(result["seconds"] for result in results)
    print(f"all {len(results)} notebooks: {total:.1f} s; executed copies in {output_dir}")
    (output_dir / "run_times.json").write_text(json.dumps(results, indent=2, allow_nan=False) + "\n")
    if args.update_committed:
        for result in results:
            executed = nbformat.read(output_dir / result["notebook"], as_version=4)
            nbformat.write(strip_run_metadata(executed), notebook_dir / result["notebook"])
        print(f"updated the committed notebooks in {notebook_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
