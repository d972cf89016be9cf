"""Launch links (Binder, Colab) built from the one place that holds the repository's public path.

That place is `repository = "owner/name"` under `[tool.mtl-tutorial]` in pyproject.toml. While it is
empty, no launch link is shown anywhere: the README says how to launch from your own fork instead.

    python scripts/launch_links.py           # print the links
    python scripts/launch_links.py --write   # rewrite README.md's launch block and the notebooks' Colab cell
    python scripts/launch_links.py --check   # exit 1 if README.md or a notebook differs
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
START, END = "<!-- launch-links:start -->", "<!-- launch-links:end -->"
COLAB_CELL_ID = "colab-setup"
REPOSITORY_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}")


def repository(pyproject: Path = ROOT / "pyproject.toml") -> str:
    """The GitHub path 'owner/name' from pyproject.toml, or '' while it is unset."""
    value = tomllib.loads(pyproject.read_text())["tool"]["mtl-tutorial"]["repository"].strip()
    if value and not REPOSITORY_PATTERN.fullmatch(value):
        raise ValueError(f"[tool.mtl-tutorial] repository must look like 'owner/name', not {value!r}")
    return value


def binder_url(repo: str) -> str:
    return f"https://mybinder.org/v2/gh/{repo}/HEAD?urlpath=lab/tree/notebooks"


def colab_url(repo: str, notebook: str) -> str:
    return f"https://colab.research.google.com/github/{repo}/blob/main/notebooks/{notebook}"


def readme_block(repo: str) -> str:
    """The README's launch block: Binder and one Colab link per notebook, or how to launch a fork."""
    if not repo:
        lines = [
            "**Binder or Colab from your fork.** This copy does not know its public GitHub path yet, so it",
            "shows no launch links. Push the repository (or your fork) to GitHub, set",
            '`repository = "you/your-fork"` under `[tool.mtl-tutorial]` in `pyproject.toml`, run',
            "`python scripts/launch_links.py --write`, and push: this paragraph becomes a Binder badge and",
            "an Open-in-Colab link per notebook.",
        ]
    else:
        lines = [
            f"[![Binder](https://mybinder.org/badge_logo.svg)]({binder_url(repo)}) "
            "(JupyterLab with everything installed; the first launch builds for a few minutes)",
            "",
            "Open in Colab: "
            + " · ".join(f"[{nb.name[:2]}]({colab_url(repo, nb.name)})" for nb in NOTEBOOKS)
            + " (the first code cell installs the pinned packages, about 3 minutes)",
        ]
    return "\n".join([START, *lines, END])


def colab_cell_source(repo: str) -> str:
    """The code cell each notebook starts with: on Colab only, fetch the repository and install it."""
    return f'''# On Colab only: fetch this repository and install its pinned packages (about 3 minutes).
# Anywhere else (JupyterLab, Binder, `make run`) `helpers` is installed already and nothing happens.
import importlib.util
import sys

if "google.colab" in sys.modules and importlib.util.find_spec("helpers") is None:
    import os
    import subprocess

    REPOSITORY = "{repo}"  # written by scripts/launch_links.py from pyproject.toml
    if not REPOSITORY:
        raise RuntimeError("this copy does not know its GitHub path: open the notebook from your fork")
    url = f"https://github.com/{{REPOSITORY}}"
    subprocess.run(["git", "clone", "--depth", "1", url, "/content/mtl"], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "-e", "/content/mtl"], check=True)
    sys.path.insert(0, "/content/mtl")
    os.chdir("/content/mtl/notebooks")
    print("Installed. If Colab asks you to restart the session, do so and run the notebook again.")'''


def with_colab_cell(notebook: nbformat.NotebookNode, repo: str) -> nbformat.NotebookNode:
    """The notebook with its Colab cell (re)written just before its first code cell."""
    notebook = nbformat.from_dict(notebook)
    old = next((cell for cell in notebook.cells if cell.get("id") == COLAB_CELL_ID), None)
    cells = [cell for cell in notebook.cells if cell.get("id") != COLAB_CELL_ID]
    new = nbformat.v4.new_code_cell(colab_cell_source(repo), id=COLAB_CELL_ID)
    if old is not None:  # keep what running it added: execution count, (empty) outputs, papermill's tags
        new.execution_count = old.get("execution_count")
        new.metadata = old.get("metadata", {})
        new.outputs = old.get("outputs", [])
    first_code = next(i for i, cell in enumerate(cells) if cell.cell_type == "code")
    cells.insert(first_code, new)
    notebook.cells = cells
    return notebook


def readme_with_block(text: str, repo: str) -> str:
    if START not in text or END not in text:
        raise ValueError(f"README.md has no {START} ... {END} block")
    head, rest = text.split(START, 1)
    return head + readme_block(repo) + rest.split(END, 1)[1]


def dump_notebook(notebook: nbformat.NotebookNode) -> str:
    return nbformat.writes(notebook) + "\n"


def targets(repo: str) -> dict[Path, str]:
    """Every file that holds launch links, with the text it should have."""
    wanted = {ROOT / "README.md": readme_with_block((ROOT / "README.md").read_text(), repo)}
    for path in NOTEBOOKS:
        wanted[path] = dump_notebook(with_colab_cell(nbformat.read(path, as_version=4), repo))
    return wanted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="rewrite README.md and the notebooks' Colab cell")
    mode.add_argument("--check", action="store_true", help="exit 1 if anything differs from --write's output")
    args = parser.parse_args(argv)
    repo = repository()
    if args.write or args.check:
        wanted = targets(repo)
        stale = [path for path, text in wanted.items() if path.read_text() != text]
    if args.write:
        for path in stale:
            path.write_text(wanted[path])
        print(f"rewrote {len(stale)} file(s)" if stale else "nothing to rewrite")
    elif args.check:
        for path in stale:
            print(f"{path.relative_to(ROOT)} differs: run python scripts/launch_links.py --write")
        return 1 if stale else 0
    else:
        print(f"repository: {repo or '(unset: no launch links)'}")
        if repo:
            print("Binder:", binder_url(repo))
            for path in NOTEBOOKS:
                print("Colab: ", colab_url(repo, path.name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
