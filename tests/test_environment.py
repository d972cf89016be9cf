"""The environment files agree with pyproject.toml, and Binder/repo2docker picks up the conda environment."""

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^\s*-?\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s;#]+)")


def pyproject_pins() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = project["dependencies"] + [
        dep for deps in project["optional-dependencies"].values() for dep in deps
    ]
    return parse_pins(lines)


def parse_pins(lines) -> dict[str, str]:
    pins = {}
    for line in lines:
        match = PIN.match(line)
        if match:
            pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    return pins


def test_every_dependency_is_pinned_exactly():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = project["dependencies"] + project["optional-dependencies"]["dev"]
    assert all("==" in line for line in lines), [line for line in lines if "==" not in line]


def test_torch_is_the_local_cpu_pin():
    assert pyproject_pins()["torch"] == "2.13.0"


def test_python_311_to_314_are_allowed():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.11"
    makefile = (ROOT / "Makefile").read_text()
    assert "SUPPORTED_PYTHONS := 3.14 3.13 3.12 3.11" in makefile


@pytest.mark.skipif(sys.platform != "linux", reason="macOS and Windows torch wheels are CPU builds already")
def test_linux_venv_holds_the_cpu_build_of_torch_and_no_nvidia_package():
    """What `make` installed on Linux: torch's CPU build, no CUDA libraries (unless TORCH_INDEX= was set)."""
    from importlib import metadata

    record_file = Path(sys.prefix) / "torch-source.json"
    if not record_file.exists():
        pytest.skip("this environment was not set up by make (no torch-source.json): nothing to check")
    record = json.loads(record_file.read_text())
    if not record["index"]:
        pytest.skip("TORCH_INDEX= was set: the default torch wheels were asked for")
    if record["outcome"] == "fallback":
        pytest.skip(f"PyTorch's CPU index had no torch {record['pin']} for this Python here (see make's log)")
    import torch

    assert torch.__version__.endswith("+cpu") and torch.version.cuda is None, torch.__version__
    names = sorted(dist.metadata["Name"].lower() for dist in metadata.distributions())
    assert [name for name in names if name.startswith(("nvidia-", "nvidia_", "cuda-"))] == []


def test_environment_yml_lists_the_same_pins_as_pyproject():
    conda_pins = parse_pins((ROOT / "environment.yml").read_text().splitlines())
    assert conda_pins == pyproject_pins()


def test_environment_yml_is_conda_forge_python_311():
    text = (ROOT / "environment.yml").read_text()
    assert re.search(r"^\s*-\s*conda-forge\s*$", text, re.M)
    assert re.search(r"^\s*-\s*python=3\.11\s*$", text, re.M)
    assert "whl/cpu" in text, "torch must come from the CPU-only index"


def test_binder_uses_the_same_environment():
    assert (ROOT / "binder" / "environment.yml").read_bytes() == (ROOT / "environment.yml").read_bytes()


def test_ci_runs_exactly_make_test():
    commands = [
        line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")
    ]
    assert commands[-1] == "make test"


REPO2DOCKER = Path(sys.executable).parent / "repo2docker"


@pytest.mark.skipif(not REPO2DOCKER.exists(), reason="jupyter-repo2docker is not installed")
def test_repo2docker_detects_the_binder_conda_environment():
    result = subprocess.run(
        [str(REPO2DOCKER), "--no-build", "--debug", str(ROOT)], capture_output=True, text=True, timeout=300
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-2000:]
    assert "Building conda environment for python=3.11" in output
    assert "binder/environment.yml" in output
    assert "./binder/postBuild" in output


WORKFLOW = ROOT / ".github" / "workflows" / "test.yml"


def test_github_workflow_runs_make_test_on_python_311_and_313_on_ubuntu_and_macos():
    import yaml

    workflow = yaml.safe_load(WORKFLOW.read_text())
    job = workflow["jobs"]["test"]
    matrix = job["strategy"]["matrix"]
    assert set(matrix["os"]) == {"ubuntu-latest", "macos-latest"}
    assert set(matrix["python-version"]) == {"3.11", "3.13"}
    assert job["runs-on"] == "${{ matrix.os }}"
    commands = [step["run"].strip() for step in job["steps"] if "run" in step]
    assert commands == ["make test PYTHON=python${{ matrix.python-version }}"]
    setup = [step for step in job["steps"] if step.get("uses", "").startswith("actions/setup-python")]
    python = setup[0]["with"]
    assert python["python-version"] == "${{ matrix.python-version }}" and python["cache"] == "pip"
    assert "PIP_EXTRA_INDEX_URL" not in str(workflow), "the Makefile chooses torch's index, as for a reader"
    assert {"push", "pull_request"} <= set(workflow[True] if True in workflow else workflow["on"])


def test_github_workflow_passes_the_vendored_schema():
    checker = Path(sys.executable).parent / "check-jsonschema"
    result = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("user_id", "allowed"), [("0", True), ("1000", False)])
def test_make_lab_allows_root_only_for_root(user_id, allowed):
    result = subprocess.run(
        ["make", "-n", "lab", f"USER_ID={user_id}"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    lab = [line for line in result.stdout.splitlines() if "jupyter lab" in line]
    assert lab and lab[-1].split()[-2:] == (
        ["notebooks", "--allow-root"] if allowed else ["lab", "notebooks"]
    )
