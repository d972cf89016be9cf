"""`make train`'s committed results: their schema, and a command the training CLI accepts with the recipe."""

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.tool.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from full_run import RECIPE, RESULT_KEYS, SCHEMA, TARGETS, cli_command, main  # noqa: E402

RESULTS = ROOT / "benchmarks" / "full_run.json"


@pytest.fixture(scope="module")
def results() -> dict:
    return json.loads(RESULTS.read_text())


def test_the_results_have_the_schema(results):
    assert set(results) == set(RESULT_KEYS) and results["schema"] == SCHEMA
    assert re.fullmatch(r"[0-9a-f]{40}", results["commit"]) and isinstance(results["commit_clean"], bool)
    assert results["wall_seconds"]["training"] > 0 and results["wall_seconds"]["scoring"] > 0
    for name in (
        "fine-tuned (this run)",
        "frozen embeddings + logistic regression",
        "VADER, default thresholds",
        "VADER, tuned on train",
        "rule-based tagger",
        "label-noise ceiling",
        "stripped-punctuation ceiling",
    ):
        assert name in results["test"]
    model = results["test"]["fine-tuned (this run)"]
    assert set(model["sentiment_by_source"]) == {"tweet", "movie_review", "product_review", "nyt_editorial"}
    assert set(model["sentence_type_views"]) == {"test", "test, punctuation stripped", "challenge set"}
    names = "sentiment|sentence_type|tweet|movie_review|product_review|nyt_editorial|test|challenge set"
    numbers = re.findall(
        rf'"(?:{names}|test, punctuation stripped)": ([0-9.eE+-]+)', json.dumps(results["test"])
    )
    assert numbers and all(0.0 <= float(value) <= 1.0 for value in numbers)


def test_the_command_is_the_cli_with_the_recipe(results):
    argv = shlex.split(results["command"])
    # the CLI's module as run: helpers.tool.cli, formerly helpers.train (until `make train` runs again)
    assert argv[:2] == ["python", "-m"] and argv[2] in ("helpers.tool.cli", "helpers.train")
    arguments = build_parser().parse_args(argv[3:])  # the CLI accepts it (exits 2 otherwise)
    assert argv[3:] == cli_command(arguments.out)[3:]  # and it is the recipe, in the recipe's order
    assert arguments.max_train_per_task is None and arguments.max_eval_per_task is None  # all the data
    assert arguments.unfreeze_top_k == 5 and arguments.probe_heads and not arguments.linear_probe_epochs
    assert arguments.class_weighting == "balanced" and arguments.punctuation_dropout > 0
    assert tuple(argv[argv.index("--overwrite") + 1 :]) == RECIPE


def test_the_targets_say_what_was_measured(results):
    rows = {row["target"]: row for row in results["targets"]}
    model = results["test"]["fine-tuned (this run)"]
    assert rows["sentiment, test macro-F1"]["measured"] == model["sentiment"]
    assert rows["sentiment, test macro-F1"]["at_least"] == TARGETS["sentiment"]
    assert rows["sentence type, test macro-F1"]["measured"] == model["sentence_type"]
    for row in rows.values():
        assert row["met"] == (
            row["measured"] >= row["at_least"] if row["at_least"] > 0 else row["measured"] > 0
        )


def test_the_commit_is_in_the_history(results):
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    found = subprocess.run(["git", "cat-file", "-e", f"{results['commit']}^{{commit}}"], cwd=ROOT)
    assert found.returncode == 0, f"commit {results['commit']} of the full run is not in this repository"


def test_dry_run_prints_the_command(capsys):
    assert main(["--dry-run"]) == 0
    printed = shlex.split(capsys.readouterr().out.strip())
    assert printed == cli_command(Path("models/full_run"))


def test_an_interrupted_full_run_can_be_resumed_or_restarted(capsys):
    for option in ("--resume", "--restart"):
        assert main(["--dry-run", option]) == 0
        printed = shlex.split(capsys.readouterr().out.strip())
        assert printed == [*cli_command(Path("models/full_run")), option]
    with pytest.raises(SystemExit):  # not both
        main(["--dry-run", "--resume", "--restart"])


def test_the_predictions_file_is_the_same_run_and_reproduces_its_scores(results):
    """benchmarks/full_run_predictions.json: made by the same run, on the committed test sentences
    (the reader checks their fingerprints), probabilities that sum to one, and the macro-F1 of its
    predictions equal to the scores full_run.json reports."""
    from sklearn.metrics import f1_score

    from helpers.analysis.full_run import PROVENANCE_KEYS, load_full_run_predictions

    provenance, tables = load_full_run_predictions()
    assert provenance == {key: results[key] for key in PROVENANCE_KEYS}
    scores = results["test"]["fine-tuned (this run)"]
    expected = {
        "sentiment: test": scores["sentiment"],
        **{f"sentence_type: {view}": value for view, value in scores["sentence_type_views"].items()},
    }
    assert set(tables) == set(expected)
    for name, table in tables.items():
        probabilities = table.filter(like="p_").to_numpy()
        assert abs(probabilities.sum(axis=1) - 1).max() < 1e-3
        assert (table.confidence == probabilities.max(axis=1)).all()
        labels = sorted(set(table.label) | set(table.predicted))
        f1 = f1_score(table.label, table.predicted, average="macro", labels=labels)
        # the scores came from batches of 32, the stored probabilities from batches of 64: other padding,
        # other float rounding, which may flip a near-tie or two among thousands of sentences
        assert abs(f1 - expected[name]) < 1e-3, name
    sentiment = tables["sentiment: test"]
    assert set(sentiment.source) == {"tweet", "movie_review", "product_review", "nyt_editorial"}


def test_the_summary_is_rendered_from_the_results_with_reference_points_apart(results, tmp_path):
    """FULL_RUN.md is what `--summary-only` renders from full_run.json; label-against-label rows
    (the ceilings) sit in their own table after the models', never among the model scores."""
    (tmp_path / "full_run.json").write_text(RESULTS.read_text())
    assert main(["--summary-only", "--results", str(tmp_path)]) == 0
    summary = (tmp_path / "FULL_RUN.md").read_text()
    assert summary == (ROOT / "benchmarks" / "FULL_RUN.md").read_text()
    models, references = summary.split("Reference points, not model scores")
    assert "fine-tuned (this run)" in models and "ceiling" not in models and "published labels" not in models
    assert f"{results['test']['label-noise ceiling']['sentiment']:.3f}" in references
