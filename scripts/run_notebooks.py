"""Execute every notebook of the series in order, headless, into an output folder.

usage: python scripts/run_notebooks.py [NOTEBOOK_DIR] [OUTPUT_DIR]

The committed notebooks are never modified. For each notebook it prints the wall time and the
peak resident memory of the process tree that ran it (the Jupyter kernel dominates).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

# Runs nbconvert in a child process and prints the peak RSS (KiB) of its largest descendant.
MEASURE = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def execute_notebook(notebook: Path, output_dir: Path, timeout: int = 1800) -> dict:
    """Execute one notebook into `output_dir`; return its name, wall time (s) and peak memory (MB)."""
    command = [
        sys.executable,
        "-m",
        "nbconvert",
        "--to",
        "notebook",
        "--execute",
        f"--ExecutePreprocessor.timeout={timeout}",
        "--output-dir",
        str(output_dir),
        str(notebook),
    ]
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", MEASURE, *command], capture_output=True, text=True, cwd=notebook.parent
    )
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.stderr.write(result.stderr[-4000:])
        raise SystemExit(f"{notebook.name} failed after {seconds:.0f} s")
    peak_mb = int(result.stdout.strip().splitlines()[-1]) / 1024
    return {"notebook": notebook.name, "seconds": round(seconds, 1), "peak_rss_mb": round(peak_mb)}


def main(argv: list[str]) -> int:
    notebook_dir = Path(argv[1] if len(argv) > 1 else "notebooks").resolve()
    output_dir = Path(argv[2] if len(argv) > 2 else "build").resolve()
    notebooks = sorted(notebook_dir.glob("[0-9]*.ipynb"))
    if not notebooks:
        print(f"No notebooks in {notebook_dir}: nothing to run.")
        return 0
    output_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for notebook in notebooks:
        print(f"running {notebook.name} ...", flush=True)
        results.append(execute_notebook(notebook, output_dir))
        print(f"  {results[-1]['seconds']:7.1f} s   peak {results[-1]['peak_rss_mb']:5d} MB", flush=True)
    total = sum(result["seconds"] for result in results)
    print(f"all {len(results)} notebooks: {total:.1f} s; executed copies in {output_dir}")
    (output_dir / "run_times.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
