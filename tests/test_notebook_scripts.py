"""scripts/run_notebooks.py and scripts/robustness.py: what they read from executed notebooks."""

import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import robustness  # noqa: E402
from run_notebooks import code_cells, execute_notebook, failing_cells, strip_run_metadata  # noqa: E402

TRACEBACK = [
    "\x1b[31m-----\x1b[39m",
    "\x1b[36mCell\x1b[39m In[3], line 2",
    "\x1b[32m      1\x1b[39m x = 1",
    "\x1b[32m----> \x1b[39m\x1b[32m2\x1b[39m \x1b[38;5;28;01massert\x1b[39;00m x > 2  # a claim",
    "\x1b[31mAssertionError\x1b[39m: ",
]


def _notebook(*cells):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = list(cells)
    return notebook


def _code(source, *outputs, tags=()):
    cell = nbformat.v4.new_code_cell(source)
    cell.outputs = list(outputs)
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def test_failing_cells_names_the_line_that_raised():
    error = nbformat.v4.new_output("error", ename="AssertionError", evalue="", traceback=TRACEBACK)
    notebook = _notebook(
        _code("SEED = 1", tags=["injected-parameters"]),
        _code("print(1)"),
        _code("x = 1\nassert x > 2", error),
    )
    assert failing_cells(notebook) == [
        {"cell": 1, "error": "AssertionError:", "line": "assert x > 2  # a claim"}
    ]
    assert len(code_cells(notebook)) == 2  # papermill's injected cell does not shift the numbering


def test_strip_run_metadata_drops_timestamps_and_paths():
    notebook = _notebook(_code("1"))
    notebook.metadata["papermill"] = {"input_path": "/tmp/x.ipynb"}
    notebook.cells[0].metadata.update({"papermill": {"duration": 1.0}, "execution": {"a": 1}, "tags": ["t"]})
    strip_run_metadata(notebook)
    assert "papermill" not in notebook.metadata
    assert notebook.cells[0].metadata == {"tags": ["t"]}


def test_compare_reports_moved_decimals_changed_text_and_failures(tmp_path):
    def stream(text):
        return nbformat.v4.new_output("stream", name="stdout", text=text)

    committed = _notebook(
        _code("a", stream("macro-F1 0.671, 637 sentences\n")),
        _code("b", stream("best: probe\n")),
        _code("# NBVAL_IGNORE_OUTPUT\nc", stream("12.3 s\n")),
    )
    executed = _notebook(
        _code("a", stream("macro-F1 0.690, 637 sentences\n")),
        _code("b", stream("best: heads\n")),
        _code("# NBVAL_IGNORE_OUTPUT\nc", stream("99.9 s\n")),
    )
    nbformat.write(committed, tmp_path / "old.ipynb")
    nbformat.write(executed, tmp_path / "new.ipynb")
    result = robustness.compare(
        tmp_path / "old.ipynb", tmp_path / "new.ipynb", robustness.Tolerance(absolute=0.01)
    )
    assert result["decimals_compared"] == 1 and abs(result["max_abs_delta"] - 0.019) < 1e-9
    assert [d["cell"] for d in result["outside_tolerance"]] == [0]
    assert result["cells_with_changed_text_or_integers"] == [1]
    assert result["failing_asserts"] == []


def test_a_subset_of_the_series_runs_only_the_named_notebooks(tmp_path, monkeypatch):
    import pytest
    import run_notebooks

    for name in ("01_a.ipynb", "02_b.ipynb"):
        nbformat.write(_notebook(_code("1")), tmp_path / name)
    ran = []
    monkeypatch.setattr(
        run_notebooks,
        "execute_notebook",
        lambda path, out, **options: (
            ran.append(path.name) or {"seconds": 0.0, "peak_rss_mb": 0, "errors": []}
        ),
    )
    run_notebooks.run_series(tmp_path, tmp_path / "out", only=["02_b.ipynb"])
    assert ran == ["02_b.ipynb"]
    with pytest.raises(ValueError, match="03_c.ipynb"):
        run_notebooks.run_series(tmp_path, tmp_path / "out", only=["03_c.ipynb"])
    ran.clear()  # the command line: --only, and a clear error for a name that is not there
    assert run_notebooks.main([str(tmp_path), str(tmp_path / "out"), "--only", "01_a.ipynb"]) == 0
    assert ran == ["01_a.ipynb"]
    with pytest.raises(SystemExit) as stop:
        run_notebooks.main([str(tmp_path), str(tmp_path / "out"), "--only", "03_c.ipynb"])
    assert stop.value.code == 2


def test_execute_notebook_creates_a_missing_output_folder(tmp_path):
    source = tmp_path / "01_tiny.ipynb"
    notebook = _notebook(nbformat.v4.new_code_cell("x = 1"))
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, source)
    out = tmp_path / "build" / "bench"  # does not exist yet, as on a fresh clone (make bench)
    result = execute_notebook(source, out, timeout=300)
    assert (out / "01_tiny.ipynb").exists() and result["errors"] == []


def test_notebooks_find_committed_files_from_any_working_directory(tmp_path, monkeypatch, capsys):
    """papermill runs the kernel in the caller's folder (the repository root for `papermill -p SEED 1
    notebooks/04_training_loop.ipynb out.ipynb`): no cell may open a path relative to notebooks/,
    and the cell that reads the committed full run works from an unrelated folder."""
    import json
    import re

    from helpers.data import repository_file

    relative = re.compile(r"""["'](\.\.?/)""")
    offenders = [
        f"{path.name}: {line.strip()}"
        for path in sorted((ROOT / "notebooks").glob("*.ipynb"))
        for cell in code_cells(nbformat.read(path, as_version=4))
        for line in cell.source.splitlines()
        if relative.search(line)
    ]
    assert offenders == []
    notebook = nbformat.read(ROOT / "notebooks" / "04_training_loop.ipynb", as_version=4)
    (cell,) = [cell for cell in code_cells(notebook) if "full_run.json" in cell.source]
    monkeypatch.chdir(tmp_path)
    namespace = {"json": json, "repository_file": repository_file}
    exec(cell.source, namespace)
    assert namespace["full_run"]["command"] in capsys.readouterr().out
    with pytest.raises(FileNotFoundError, match="benchmarks/missing.json is not in"):
        repository_file("benchmarks/missing.json")
