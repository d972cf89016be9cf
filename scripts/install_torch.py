"""Install the pinned torch before the other packages: the CPU-only build on Linux unless told otherwise.

Called by the Makefile (`make run`, `make test`, ...) with the virtual environment's Python:

    python scripts/install_torch.py --index https://download.pytorch.org/whl/cpu   # Linux default
    python scripts/install_torch.py --index ""                                    # default wheels

On Linux, PyPI's torch wheel is the CUDA build and pulls in about 3 GB of `nvidia-*` packages that a
laptop cannot use; PyTorch's own CPU index has a ~200 MB CPU build. Only torch itself is asked of that
index (`--no-deps`), so a machine that cannot reach it (behind a package mirror) loses a few seconds,
not a retry per package: it then gets the default wheel, and says so in one line. What happened is
written to `<venv>/torch-source.json`, which `tests/test_environment.py` reads.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECORD = Path(sys.prefix) / "torch-source.json"


def torch_pin(pyproject: Path = ROOT / "pyproject.toml") -> str:
    """The exact torch version pinned in pyproject.toml, e.g. '2.13.0'."""
    for dependency in tomllib.loads(pyproject.read_text())["project"]["dependencies"]:
        match = re.fullmatch(r"torch==([\w.]+)", dependency.strip())
        if match:
            return match.group(1)
    raise SystemExit(f"install_torch: no 'torch==VERSION' pin in {pyproject}")


def installed_torch() -> str | None:
    """The installed torch version with its local label ('2.13.0+cpu'), or None."""
    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", default="", help="index to take torch from; empty: the default wheels")
    index = parser.parse_args(argv).index.strip()
    pin = torch_pin()
    version = installed_torch()
    wanted_cpu = bool(index)
    if version and version.split("+")[0] == pin and (not wanted_cpu or version.endswith("+cpu")):
        outcome = "already installed"
    elif wanted_cpu:
        command = [sys.executable, "-m", "pip", "install", "-qq", "--no-deps", "--retries", "1"]
        command += ["--timeout", "20", "--index-url", index, f"torch=={pin}"]
        pip = subprocess.run(command, check=False, capture_output=True, text=True)
        version = installed_torch()
        if version and version.split("+")[0] == pin and version.endswith("+cpu"):
            outcome = "cpu build"
        else:
            outcome = "fallback"
            print(
                f"install_torch: no CPU build of torch {pin} for this Python from {index} (unreachable, or "
                "no wheel): the default wheel is installed instead (on Linux the CUDA build, ~3 GB); "
                "point TORCH_INDEX at a mirror of PyTorch's CPU index to avoid this. pip said: "
                + (pip.stderr.strip().splitlines() or ["nothing"])[-1],
                flush=True,
            )
    else:
        outcome = "default wheels asked for"
    record = {"pin": pin, "index": index, "outcome": outcome, "installed": installed_torch()}
    RECORD.write_text(json.dumps(record, indent=1, allow_nan=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
