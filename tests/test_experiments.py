"""`make experiments`: the committed result files are what the command runs (nothing is re-run here),
the runner resumes instead of repeating work, and the pieces it is built from (the exact
linear-probe stage, the frozen caches) do what they say."""

import importlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from helpers.analysis import experiments
from helpers.analysis.experiments import RunSpec, all_runs, finished, load_results, result_path

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = sorted(experiments.RESULTS.glob("*.json"))


def load_script():
    """scripts/experiments.py as a module (a script, not part of the package)."""
    if str(ROOT / "scripts") not in sys.path:
        sys.path.insert(0, str(ROOT / "scripts"))
    return importlib.import_module("experiments")


def test_every_committed_file_is_a_run_of_the_command_with_its_configuration():
    specs = {spec.name: spec for spec in all_runs()}
    assert len(specs) == len(all_runs()), "two runs share a file name"
    names = {path.stem for path in COMMITTED}
    assert names <= set(specs), f"files of runs the command does not make: {sorted(names - set(specs))}"
    assert set(specs) <= names, f"runs of the command without a committed file: {sorted(set(specs) - names)}"
    for path in COMMITTED:
        record = json.loads(path.read_text())
        assert record["configuration"] == specs[path.stem].configuration(), path.name
        assert record["command"] == experiments.COMMAND
        assert len(record["commit"]) == 40 and isinstance(record["dirty"], bool)
        assert {"platform", "cpu_count", "torch"} <= set(record["machine"])
        assert record["wall_seconds"] > 0
        assert set(record["scores"]) == {"validation", "test"}


def test_committed_test_scores_are_those_of_the_stored_predictions():
    from helpers.data.tasks import limit_per_task, load_task_data
    from helpers.evaluation import classification_scores

    test = limit_per_task(load_task_data("test"), experiments.TEST_PER_TASK, seed=experiments.SUBSET_SEED)
    assert all(np.array_equal(test[t].labels, experiments.test_subset()[t].labels) for t in test)
    for path in COMMITTED:
        record = json.loads(path.read_text())
        for task, predicted in record["test_predictions"].items():
            assert len(predicted) == len(test[task]), path.name
            scores = classification_scores(test[task].labels, np.asarray(predicted))
            assert scores["macro_f1"] == pytest.approx(record["scores"]["test"][task]["macro_f1"]), path.name


def test_the_command_resumes_a_finished_grid_without_running_anything(tmp_path, capsys):
    if not COMMITTED:
        pytest.skip("no committed results")
    chosen = COMMITTED[:2]
    for path in chosen:
        shutil.copy(path, tmp_path / path.name)
    script = load_script()
    assert script.main(["--output", str(tmp_path), "--runs", *[path.stem for path in chosen]]) == 0
    assert f"{len(chosen)} already done, 0 to run" in capsys.readouterr().out


def test_a_file_with_another_configuration_does_not_count_as_done(tmp_path):
    spec = RunSpec("depth", 2, 0)
    path = result_path(spec, tmp_path)
    assert not finished(spec, tmp_path)
    path.write_text(
        json.dumps({"configuration": RunSpec("depth", 2, 1).configuration(), "test_predictions": {}})
    )
    assert not finished(spec, tmp_path)
    path.write_text(json.dumps({"configuration": spec.configuration(), "test_predictions": {}}))
    assert finished(spec, tmp_path)
    path.write_text("{ half a file")
    assert not finished(spec, tmp_path)


def test_run_specs_refuse_what_the_runner_cannot_do():
    with pytest.raises(ValueError, match="k must be"):
        RunSpec("depth", 7, 0)
    with pytest.raises(ValueError, match="k must be"):
        RunSpec("depth", 2, 0, embeddings=True)
    with pytest.raises(ValueError, match="heads"):
        RunSpec("depth", 2, 0, heads="pretrained")
    with pytest.raises(ValueError, match="seed"):
        RunSpec("depth", 2, None)
    with pytest.raises(ValueError, match="unknown grid"):
        all_runs(["nonsense"])
    assert RunSpec("depth", 6, 1, embeddings=True).name == "depth-full-seed1"
    assert RunSpec("rate", 1, 0, encoder_lr=1e-3).name == "rate-k1-enc1e-03-seed0"
    with pytest.raises(ValueError, match="tasks"):
        RunSpec("mtl", 5, 0, tasks=("topic",))
    with pytest.raises(ValueError, match="tasks"):
        RunSpec("mtl", 5, 0, tasks=())


def test_forgetting_runs_continue_from_the_depth_grids_model_and_record_both_stages():
    """grid forgetting: each seed's first stage is depth's top-5 run (same test scores), the second
    trains sentiment alone (rehearsal adds 10% of sentence type's sentences); the files are what the
    notebook reads (`forgetting_study`)."""
    from helpers.analysis.nb03_tables import forgetting_study

    specs = experiments.GRIDS["forgetting"]
    assert {spec.protection for spec in specs} == {"none", "rehearsal", "lwf"}
    assert "protection" not in RunSpec("depth", 5, 0).configuration()  # the files made before it
    with pytest.raises(ValueError, match="protection"):
        RunSpec("forgetting", 5, 0, protection="ewc")
    with pytest.raises(ValueError, match="protection"):
        RunSpec("forgetting", 5, 0, tasks=("sentiment",), protection="none")
    files = {path.stem: json.loads(path.read_text()) for path in COMMITTED}
    for spec in specs:
        record, first = files[spec.name], files[RunSpec("depth", spec.k, spec.seed).name]
        assert record["scores_before"]["test"] == first["scores"]["test"], spec.name
        assert record["test_predictions_before"] == first["test_predictions"], spec.name
        assert record["second_stage"]["new_sentences_seen_before"] == 0  # new data for the new task
        seen = record["second_stage"]["examples"]
        assert seen["sentiment"] == 500 * spec.then_epochs
        assert seen.get("sentence_type", 0) == (
            50 * spec.then_epochs if spec.protection == "rehearsal" else 0
        )
    study = forgetting_study(load_results())
    assert len(study) == len(specs) and not study.isna().any().any()
    assert set(study.protection) == {"none", "rehearsal", "lwf"}


def test_single_task_runs_are_named_and_recorded_as_such_and_multi_task_ones_as_before():
    single = RunSpec("mtl", 5, 1, tasks=("sentiment",))
    assert single.single_task and single.name == "mtl-k5-only-sentiment-seed1"
    assert single.configuration()["tasks"] == ["sentiment"]
    both = RunSpec("depth", 5, 1)
    assert not both.single_task and "tasks" not in both.configuration()  # the files made before it
    # every single-task arm has its multi-task partner (depth, same k and seed) in the command's grids
    names = {spec.name for spec in all_runs()}
    for spec in experiments.GRIDS["mtl"]:
        assert spec.single_task and RunSpec("depth", spec.k, spec.seed).name in names


def test_equal_step_single_task_arms_match_the_multi_task_arm_in_steps():
    """grid mtl_steps: a single-task run of 4 epochs takes as many optimiser steps (batches) as the
    multi-task run of 2 epochs over both tasks' 500 sentences; its name says the epochs."""
    batches = 500 // 16 + (500 % 16 > 0)  # per task and epoch
    multi = RunSpec("depth", 5, 0)
    for spec in experiments.GRIDS["mtl_steps"]:
        assert spec.single_task and spec.name.endswith(f"-e4-seed{spec.seed}")
        assert spec.epochs * batches == multi.epochs * batches * len(multi.tasks)
    assert RunSpec("mtl", 5, 0, tasks=("sentiment",)).name == "mtl-k5-only-sentiment-seed0"  # unchanged


def _write_record(directory, spec, f1s, commit="1" * 40, dirty=True, train_seconds=1.0):
    """A result file with only what `load_results` reads: test macro-F1 per task in `f1s`."""
    record = {
        "configuration": spec.configuration(),
        "commit": commit,
        "dirty": dirty,
        "machine": {"platform": "Linux", "cpu_count": 2},
        "wall_seconds": 1.0,
        "train_seconds": train_seconds,
        "examples_seen": 100,
        "scores": {"test": {task: {"macro_f1": f1} for task, f1 in f1s.items()}},
    }
    result_path(spec, directory).write_text(json.dumps(record))


def test_load_results_and_paired_differences(tmp_path):
    for seed, (a, b) in enumerate([(0.80, 0.70), (0.90, 0.75)]):
        for spec, f1 in ((RunSpec("depth", 2, seed), a), (RunSpec("lpft", 2, seed, heads="random"), b)):
            _write_record(tmp_path, spec, {"sentiment": f1}, commit="0" * 40, dirty=False)
    frame = load_results(tmp_path)
    assert set(frame.tasks) == {tuple(experiments.TASKS)}  # multi-task runs: both tasks
    differences = experiments.paired_differences(
        frame, frame.heads == "probe", frame.heads == "random", "test_sentiment"
    )
    np.testing.assert_allclose(differences, [0.10, 0.15])
    assert "commit 0000000000" in experiments.provenance(frame)
    with pytest.raises(ValueError, match="share their seeds"):
        experiments.paired_differences(frame, frame.seed == 0, frame.seed == 1, "test_sentiment")
    with pytest.raises(FileNotFoundError, match="make experiments"):
        load_results(tmp_path / "empty")


def test_load_results_reads_each_runs_probe_penalty_from_its_file():
    frame = load_results().set_index("run")
    for run in ("depth-k0-probe", "size-k2-n100-seed0"):
        record = json.loads((experiments.RESULTS / f"{run}.json").read_text())
        for task, c in record["probe_C"].items():
            assert frame.loc[run, f"probe_C_{task}"] == c


def test_linear_probe_stage_checks_the_heads_against_the_probes(make_model):
    from helpers.analysis.lp_ft import head_predictions, linear_probe_stage

    model = make_model()
    rng = np.random.default_rng(0)
    features = {task: rng.normal(size=(40, 384)).astype(np.float32) for task in model.task_labels}
    labels = {task: np.arange(40) % len(names) for task, names in model.task_labels.items()}
    probes = {task: LogisticRegression(max_iter=2000).fit(features[task], labels[task]) for task in features}
    linear_probe_stage(model, features, labels, probes=probes)
    for task in features:
        assert (head_predictions(model, task, features[task]) == probes[task].predict(features[task])).all()


def test_linear_probe_stage_refuses_heads_that_are_not_the_probe(make_model, monkeypatch):
    from helpers.analysis import lp_ft

    model = make_model()
    rng = np.random.default_rng(1)
    features = {"sentiment": rng.normal(size=(40, 384)).astype(np.float32)}
    labels = {"sentiment": np.arange(40) % 3}
    probes = {"sentiment": LogisticRegression(max_iter=2000).fit(features["sentiment"], labels["sentiment"])}
    monkeypatch.setattr(lp_ft, "heads_from_probes", lambda model, probes: None)  # a copy that never happens
    with pytest.raises(RuntimeError, match="disagrees with its probe"):
        lp_ft.linear_probe_stage(model, features, labels, probes=probes)


def test_frozen_caches_hand_out_the_cache_each_k_needs(make_model):
    from helpers.analysis.frozen_caches import FrozenCaches
    from helpers.evaluation import sentence_embeddings
    from tests.conftest import tiny_examples

    model = make_model()
    data = {"train": tiny_examples()}
    caches = FrozenCaches(model, data, top_k=(0, 2))
    assert {cache.prefix for cache in caches.for_top(2, "train").values()} == {4}
    embeddings = caches.embeddings("train")
    expected = sentence_embeddings(model, data["train"])
    for task in expected:
        np.testing.assert_allclose(embeddings[task], expected[task], atol=1e-5)
    assert list(caches.table().index) == [4, 6]
    with pytest.raises(KeyError, match="top 1"):
        caches.for_top(1, "train")
    with pytest.raises(ValueError, match="k = 6 caches nothing"):
        FrozenCaches(model, data, top_k=(6,))


def _fake_grid(directory):
    """Result files of a tiny made-up depth and size grid (one task, two seeds)."""
    specs = [RunSpec("depth", 0, None), RunSpec("size", 0, None, train_per_task=100)]
    specs += [RunSpec("depth", k, s) for k in (1, 2, 6) for s in (0, 1)]
    specs += [RunSpec("depth", 6, s, embeddings=True) for s in (0, 1)]
    specs += [RunSpec("size", 2, s, train_per_task=100) for s in (0, 1)]
    for spec in specs:
        f1 = 0.5 + 0.05 * spec.k + 0.01 * (spec.seed or 0)
        _write_record(directory, spec, {"sentence_type": f1, "sentiment": f1}, train_seconds=2.0 * spec.k)
    return load_results(directory)


def test_the_figures_draw_every_arm(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from helpers.analysis.experiment_plots import (
        depth_summary,
        plot_by_training_size,
        plot_depth_sweep,
        plot_paired_differences,
    )

    frame = _fake_grid(tmp_path)
    assert "(with uncommitted changes)" in experiments.provenance(frame)
    summary = depth_summary(frame)
    assert list(summary.index) == ["0", "1", "2", "6", "full"]
    cost = {"top 1": 1.0, "top 2": 2.0, "top 6": 6.0, "full fine-tuning": 6.5}
    figure = plot_depth_sweep(frame, cost=cost, title="depth")
    assert [len(ax.lines) > 0 for ax in figure.axes] == [True, True, True]
    assert len(figure.legends) == 1 and len(figure.legends[0].get_texts()) == 3
    assert figure.axes[2].get_legend() is not None  # the cost panel's own: one timing, not seeds
    figure = plot_by_training_size(frame)
    assert len(figure.legends) == 1 and len(figure.legends[0].get_texts()) == 2  # below, covering nothing
    figure = plot_paired_differences({"a minus b": {"sentiment": [0.01, 0.02]}}, "t", "difference")
    assert figure.axes[0].get_yticklabels()[0].get_text() == "a minus b"
