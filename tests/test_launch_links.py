"""Launch links come from one place (pyproject's [tool.mtl-tutorial] repository); none is a placeholder."""

import importlib.util
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("launch_links", ROOT / "scripts" / "launch_links.py")
launch_links = importlib.util.module_from_spec(spec)
spec.loader.exec_module(launch_links)

LAUNCH_LINK = re.compile(
    r"https?://(?:mybinder\.org/v2/gh|colab\.research\.google\.com/github)/[^\s)\"'>\]]+"
)
PLACEHOLDER = re.compile(r"OWNER/REPO|USER/REPO|<owner>|<user>|your-?user(?:name)?/|example/repo", re.I)


def reader_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")), *launch_links.NOTEBOOKS]


def test_no_placeholder_link_anywhere_a_reader_looks():
    for path in reader_files():
        for line in path.read_text().splitlines():
            if "mybinder.org" in line or "colab.research" in line or "github.com/" in line:
                assert not PLACEHOLDER.search(line), f"{path.relative_to(ROOT)}: placeholder link: {line}"


def test_every_launch_link_is_built_from_the_configured_repository():
    repo = launch_links.repository()
    allowed = set()
    if repo:
        allowed.add(launch_links.binder_url(repo))
        allowed.update(launch_links.colab_url(repo, path.name) for path in launch_links.NOTEBOOKS)
    for path in reader_files():
        for link in LAUNCH_LINK.findall(path.read_text()):
            assert link in allowed, f"{path.relative_to(ROOT)}: not built by launch_links.py: {link}"


def test_readme_and_notebooks_hold_what_launch_links_writes():
    stale = [
        str(path.relative_to(ROOT))
        for path, text in launch_links.targets(launch_links.repository()).items()
        if path.read_text() != text
    ]
    assert stale == [], "run: python scripts/launch_links.py --write"


def test_unset_repository_shows_how_to_launch_a_fork_and_no_link():
    block = launch_links.readme_block("")
    assert not LAUNCH_LINK.search(block)
    assert "fork" in block and "[tool.mtl-tutorial]" in block


def test_set_repository_gives_binder_and_one_colab_link_per_notebook():
    block = launch_links.readme_block("someone/mtl-tutorial")
    links = LAUNCH_LINK.findall(block)
    assert launch_links.binder_url("someone/mtl-tutorial") in links
    assert len(links) == 1 + len(launch_links.NOTEBOOKS) == 5


def test_colab_cell_names_the_repository_and_does_nothing_outside_colab():
    source = launch_links.colab_cell_source("someone/mtl-tutorial")
    assert 'REPOSITORY = "someone/mtl-tutorial"' in source
    namespace = {}
    exec(compile(source, "colab-cell", "exec"), namespace)  # not on Colab: no clone, no install
    assert "REPOSITORY" not in namespace


def test_colab_cell_comes_before_every_other_code_cell():
    for path in launch_links.NOTEBOOKS:
        code = [cell for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"]
        assert code[0].get("id") == launch_links.COLAB_CELL_ID, path.name


@pytest.mark.parametrize("value", ["https://github.com/a/b", "a", "a/b/c", "OWNER REPO"])
def test_a_malformed_repository_is_refused(tmp_path, value):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(f'[tool.mtl-tutorial]\nrepository = "{value}"\n')
    with pytest.raises(ValueError, match="owner/name"):
        launch_links.repository(pyproject)


def test_readme_first_screen_says_what_this_is_where_to_start_and_how_to_open():
    head = "\n".join((ROOT / "README.md").read_text().splitlines()[:30])
    assert "## Start here" in head and "## Open them" in head
    for path in launch_links.NOTEBOOKS:
        assert f"](notebooks/{path.name})" in head, path.name
    readme = (ROOT / "README.md").read_text()
    assert "make run" in readme and "make test" in readme
