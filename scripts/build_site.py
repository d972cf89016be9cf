"""Build the series' website into build/site (`make site`): the committed notebooks and a landing page.

    python scripts/build_site.py [--out build/site]

Sphinx + myst-nb + sphinx-book-theme, configured in docs/conf.py. The notebooks are rendered with
their committed outputs (`nb_execution_mode = "off"`: nothing runs), strictly: any Sphinx warning
fails the build (`-W`). Sphinx wants its sources under one folder, so the landing page
(docs/index.md) and copies of notebooks/*.ipynb (without the comments addressed to nbval and the
formatter) go into a build-time source folder,
build/site-src, in the repository's own layout (the committed notebooks are never modified).
Saved widget state is left out of the copies: the site shows no live widgets (they need a kernel).
Open build/site/index.html in a browser, or serve it: `python -m http.server -d build/site`.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
NOTEBOOKS = ROOT / "notebooks"
BUILD = ROOT / "build"
# Comments addressed to the test and format tools, not to a reader: dropped from the site's copies.
TOOL_LINE = re.compile(r"^\s*# (NBVAL_[A-Z_]+|fmt: (off|on))\s*$")
TOOL_SUFFIX = re.compile(r"\s*# (fmt: skip|noqa(: [A-Z0-9, ]+)?)\s*$")


def reader_source(source: str) -> str:
    """A code cell's source without the lines and trailing comments meant for nbval, ruff and black."""
    lines = [TOOL_SUFFIX.sub("", line) for line in source.splitlines() if not TOOL_LINE.match(line)]
    return "\n".join(lines)


def prepare_sources(source: Path) -> list[Path]:
    """Fill `source` with the landing page and copies of the committed notebooks; return the copies."""
    if source.exists():
        shutil.rmtree(source)
    (source / "notebooks").mkdir(parents=True)
    shutil.copy2(DOCS / "index.md", source / "index.md")
    copies = []
    for notebook in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        content = json.loads(notebook.read_text(encoding="utf-8"))
        content.get("metadata", {}).pop("widgets", None)  # widget state: only a live kernel can use it
        for cell in content["cells"]:
            if cell["cell_type"] == "code":
                cell["source"] = reader_source("".join(cell["source"]))
        copy = source / "notebooks" / notebook.name
        copy.write_text(json.dumps(content, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        copies.append(copy)
    if not copies:
        raise SystemExit(f"no notebooks found in {NOTEBOOKS}")
    return copies


def build(out: Path, source: Path | None = None, quiet: bool = False) -> Path:
    """Build the site into `out` (replaced); raises SystemExit on any Sphinx warning.

    The sources go to `source` (default: `out` + "-src", beside it), Sphinx's cache next to them.
    """
    from sphinx.cmd.build import build_main

    source = source or out.parent / (out.name + "-src")  # beside the output: parallel builds never share it
    prepare_sources(source)
    if out.exists():
        shutil.rmtree(out)
    doctrees = source.parent / (source.name + "-doctrees")
    shutil.rmtree(doctrees, ignore_errors=True)
    arguments = ["-b", "html", "-W", "--keep-going", "-n", "-c", str(DOCS), "-d", str(doctrees)]
    status = build_main([*arguments, *(["-q"] if quiet else []), str(source), str(out)])
    if status:
        raise SystemExit(f"the site build failed (status {status}): see the warnings above")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=BUILD / "site", help="output folder (default build/site)")
    parser.add_argument("--quiet", action="store_true", help="print warnings and errors only")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    out = build(args.out.resolve(), quiet=args.quiet)
    print(f"site built in {time.perf_counter() - start:.0f} s: {out / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
