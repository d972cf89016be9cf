"""The series' website (`make site`: scripts/build_site.py, docs/conf.py), checked without a browser.

Built twice: with no repository path (no launch button anywhere) and with one (Binder and Colab on
every notebook page, pointing at the notebook's path in the repository). In both, every link and
file reference inside the site resolves, and no page loads anything from outside the site.
tests/test_browser.py opens the site in a real browser.
"""

import json
import re
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import build_site  # noqa: E402

sys.path.remove(str(ROOT / "scripts"))

NOTEBOOKS = sorted(path.stem for path in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
REPOSITORY = "octo-org/mtl-tutorial"


class References(HTMLParser):
    """Every URL a page refers to: (tag, attribute, url)."""

    def __init__(self):
        super().__init__()
        self.found: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("href", "src") and value:
                self.found.append((tag, name, value))


def references(page: Path) -> list[tuple[str, str, str]]:
    parser = References()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser.found


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    """{"none": site built with no repository path, "set": with REPOSITORY}."""
    built = {}
    with pytest.MonkeyPatch.context() as patch:
        for state, repository in (("none", ""), ("set", REPOSITORY)):
            patch.setenv("MTL_TUTORIAL_REPOSITORY", repository)
            built[state] = build_site.build(tmp_path_factory.mktemp(state) / "site", quiet=True)
    return built


def test_every_notebook_becomes_a_page_linked_from_the_landing_page(sites):
    site = sites["none"]
    landing = {url for _, _, url in references(site / "index.html")}
    for name in NOTEBOOKS:
        page = site / "notebooks" / f"{name}.html"
        assert page.is_file(), name
        assert f"notebooks/{name}.html" in landing, name
        assert (site / "_sources" / "notebooks" / f"{name}.ipynb").is_file()  # the page's download button
    text = (site / "index.html").read_text(encoding="utf-8")
    assert "The four tasks" in text and "How to open it" in text


@pytest.mark.parametrize("state", ["none", "set"])
def test_everything_a_page_refers_to_is_in_the_site(sites, state):
    site, problems = sites[state], []
    for page in sorted(site.rglob("*.html")):
        if page.parent.name == "_static":
            continue  # the themes' template fragments, never served as pages
        for tag, attribute, url in references(page):
            parts = urlsplit(url)
            if parts.scheme or url.startswith("//"):
                # outside the site: only links a reader clicks, never something the page loads
                if not (tag == "a" and attribute == "href") or parts.scheme not in ("https", "mailto"):
                    problems.append(f"{page.name}: <{tag} {attribute}={url}> loads from outside the site")
                continue
            if not parts.path:
                continue  # "#anchor" or "?query"
            target = (page.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                problems.append(f"{page.relative_to(site)}: <{tag} {attribute}={url}> is missing")
    assert not problems, "\n".join(problems)


def external_links(page: Path) -> set[str]:
    return {url for tag, _, url in references(page) if urlsplit(url).scheme in ("http", "https")}


def test_no_launch_button_while_the_repository_is_unset(sites):
    site = sites["none"]
    for page in [site / "index.html", *(site / "notebooks").glob("*.html")]:
        links = external_links(page)
        assert not [url for url in links if "mybinder" in url or "colab" in url or "github.com" in url], page
    text = re.sub(r"<[^>]+>", "", (site / "index.html").read_text(encoding="utf-8"))
    assert "[tool.mtl-tutorial] repository in pyproject.toml to your fork" in text  # how to get them


def test_launch_buttons_on_every_notebook_page_once_the_repository_is_set(sites):
    site = sites["set"]
    for name in NOTEBOOKS:
        links = external_links(site / "notebooks" / f"{name}.html")
        path = f"notebooks/{name}.ipynb"
        assert f"https://mybinder.org/v2/gh/{REPOSITORY}/main?urlpath=lab/tree/{path}" in links, links
        assert f"https://colab.research.google.com/github/{REPOSITORY}/blob/main/{path}" in links, links
        assert f"https://github.com/{REPOSITORY}" in links
    landing = external_links(site / "index.html")
    assert f"https://mybinder.org/v2/gh/{REPOSITORY}/main?urlpath=lab/tree/notebooks" in landing


def test_the_build_is_strict_and_leaves_the_notebooks_alone(tmp_path, monkeypatch):
    before = {path.name: path.read_bytes() for path in (ROOT / "notebooks").glob("*.ipynb")}
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# A page\n\nA link to [nowhere](missing.md).\n", encoding="utf-8")
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    notebook = {
        "cells": [{"cell_type": "markdown", "id": "a", "metadata": {}, "source": ["# 01 · A notebook"]}],
        "metadata": {"widgets": {"application/vnd.jupyter.widget-state+json": {"state": {}}}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (notebooks / "01_tiny.ipynb").write_text(json.dumps(notebook), encoding="utf-8")
    monkeypatch.setattr(build_site, "DOCS", docs)
    monkeypatch.setattr(build_site, "NOTEBOOKS", notebooks)
    with pytest.raises(SystemExit, match="site build failed"):  # a warning (the broken link) is an error
        build_site.build(tmp_path / "site", quiet=True)
    copy = json.loads((tmp_path / "site-src" / "notebooks" / "01_tiny.ipynb").read_text(encoding="utf-8"))
    assert "widgets" not in copy["metadata"]  # the copy, not the committed notebook, lost its widget state
    assert {path.name: path.read_bytes() for path in (ROOT / "notebooks").glob("*.ipynb")} == before


def test_conf_refuses_a_malformed_repository(monkeypatch):
    monkeypatch.setenv("MTL_TUTORIAL_REPOSITORY", "https://github.com/octo-org/mtl-tutorial")
    source = (ROOT / "docs" / "conf.py").read_text(encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape("must be 'owner/name'")):
        exec(compile(source, "conf.py", "exec"), {"__file__": str(ROOT / "docs" / "conf.py")})


def test_comments_for_the_tools_are_not_shown_to_readers():
    source = (
        "# NBVAL_IGNORE_OUTPUT\nx = {\n  1: 2,\n}  # fmt: skip\nimport os  # noqa: F401\ny = 1  # keep this\n"
    )
    assert build_site.reader_source(source) == "x = {\n  1: 2,\n}\nimport os\ny = 1  # keep this"
    committed = "".join(
        "".join(cell["source"])
        for path in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]
    )
    assert "NBVAL_IGNORE_OUTPUT" in committed  # the notebooks keep them; only the site's copies lose them


def test_no_page_shows_a_comment_meant_for_the_tools(sites):
    source = sites["none"].parent / "site-src" / "notebooks"
    for name in NOTEBOOKS:
        cells = json.loads((source / f"{name}.ipynb").read_text(encoding="utf-8"))["cells"]
        code = "".join(cell["source"] for cell in cells if cell["cell_type"] == "code")
        for marker in ("NBVAL_", "fmt: skip", "fmt: off", "noqa"):
            assert marker not in code, (name, marker)
        assert "NBVAL_" not in (sites["none"] / "notebooks" / f"{name}.html").read_text(encoding="utf-8")
