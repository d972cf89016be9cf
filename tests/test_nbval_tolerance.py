"""The nbval tolerance plugin: decimals may move within the tolerance, nothing else may change."""

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.nbval_tolerance import Tolerance, reconcile_outputs, texts_match

ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = Tolerance(absolute=0.01)
TABLE = "      macro_f1  examples\nprobe    0.671       637\nheads    0.633       637"


def test_decimals_within_the_tolerance_match():
    assert texts_match(TABLE.replace("0.671", "0.673"), TABLE, TOLERANCE)
    assert texts_match(TABLE.replace("0.633", "0.625"), TABLE, TOLERANCE)


def test_decimals_beyond_the_tolerance_do_not_match():
    assert not texts_match(TABLE.replace("0.671", "0.721"), TABLE, TOLERANCE)
    assert not texts_match("loss 1.0e-02", "loss 3.5e-02", TOLERANCE)


def test_relative_tolerance_scales_with_the_committed_value():
    assert not texts_match("1000.0 s", "1005.0 s", Tolerance(absolute=0.01))
    assert texts_match("1000.0 s", "1005.0 s", Tolerance(absolute=0.01, relative=0.01))


def test_words_integers_and_shape_must_be_identical():
    assert not texts_match(TABLE.replace("probe", "probe2"), TABLE, TOLERANCE)
    assert not texts_match(TABLE.replace("heads", "tails"), TABLE, TOLERANCE)
    assert not texts_match(TABLE.replace("637", "636", 1), TABLE, TOLERANCE)
    assert not texts_match(TABLE + "\nextra    0.500       637", TABLE, TOLERANCE)
    assert not texts_match("0.671", "1", TOLERANCE)  # a decimal never matches an integer


def test_minus_sign_and_column_width():
    assert texts_match("gap   -0.001\n", "gap    0.001\n", TOLERANCE)
    assert texts_match("gap -0.000", "gap 0.000", TOLERANCE)


def test_numbers_inside_words_are_text():
    assert not texts_match("layer_3 top-2", "layer_4 top-2", TOLERANCE)
    assert not texts_match("top-2", "top-3", TOLERANCE)


def test_tolerance_rejects_bad_values():
    with pytest.raises(ValueError, match="absolute"):
        Tolerance(absolute=-0.1)
    with pytest.raises(ValueError, match="relative"):
        Tolerance(relative=float("nan"))


def test_reconcile_replaces_only_matching_fields():
    reference = [
        {"output_type": "stream", "name": "stdout", "text": "score 0.671\n"},
        {"output_type": "execute_result", "data": {"text/plain": "0.5", "text/html": "<b>0.5</b>"}},
    ]
    test = [
        {"output_type": "stream", "name": "stdout", "text": "score 0.674\n"},
        {"output_type": "execute_result", "data": {"text/plain": "0.9", "text/html": "<b>0.501</b>"}},
    ]
    reconciled = reconcile_outputs(test, reference, lambda text: text, TOLERANCE)
    assert reconciled[0]["text"] == "score 0.671\n"
    assert reconciled[1]["data"] == {"text/plain": "0.9", "text/html": "<b>0.5</b>"}
    assert test[0]["text"] == "score 0.674\n"  # the input is not modified


CELLS = {
    "close": "import pandas as pd\npd.DataFrame({'macro_f1': [0.671, 0.633]}, index=['probe', 'heads'])",
    "far": "print('macro-F1', 0.671)",
    "words": "print('probe macro-F1', 0.671)",
    "integer": "print('examples:', 637)",
    "rows": "import pandas as pd\npd.DataFrame({'macro_f1': [0.671, 0.633]}, index=['probe', 'heads'])",
    "untouched": "print('unchanged', 0.5)",
}


def _edit_committed(name: str, text: str) -> str:
    """The committed output each case's test compares against (what the 'reference' says)."""
    return {
        "close": text.replace("0.671", "0.673"),
        "far": text.replace("0.671", "0.721"),
        "words": text.replace("probe", "linear probe"),
        "integer": text.replace("637", "638"),
        "rows": text.replace("0.633", "0.633\nextra  0.500").replace(
            "</tbody>", "<tr><th>extra</th><td>0.500</td></tr></tbody>"
        ),
    }.get(name, text)


def test_plugin_under_pytest_nbval(tmp_path):
    """End to end: a committed notebook whose outputs were edited, checked by pytest --nbval."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in CELLS.values()]
    NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
    for name, cell in zip(CELLS, notebook.cells, strict=True):
        for output in cell.outputs:
            if output.output_type == "stream":
                output.text = _edit_committed(name, output.text)
            for key in output.get("data", {}):
                output.data[key] = _edit_committed(name, output.data[key])
    path = tmp_path / "edited.ipynb"
    nbformat.write(notebook, path)
    names = list(CELLS)
    expected = {"far", "words", "integer", "rows"}
    assert _failing_cells(path, tmp_path, plugin=True) == sorted(f"Cell {names.index(n)}" for n in expected)
    # Without the plugin, nbval's exact comparison also rejects the decimal that moved by 0.002.
    expected_exact = sorted(f"Cell {names.index(n)}" for n in expected | {"close"})
    assert _failing_cells(path, tmp_path, plugin=False) == expected_exact
    assert json.loads(path.read_text())["cells"]  # the committed file was only read


def _failing_cells(notebook: Path, folder: Path, plugin: bool) -> list[str]:
    """Run pytest --nbval on `notebook` in a subprocess; return the names of the failing cells."""
    import xml.etree.ElementTree as ElementTree

    report = folder / f"report-{plugin}.json"
    flags = ["-p", "tests.nbval_tolerance"] if plugin else []
    subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval", "--nbval-current-env", *flags, "-p", "no:cacheprovider"]
        + ["--rootdir", str(folder), "--junit-xml", str(report), str(notebook)],
        cwd=folder,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        timeout=300,
    )
    cases = ElementTree.parse(report).getroot().iter("testcase")
    return sorted(case.get("name") for case in cases if case.find("failure") is not None)
