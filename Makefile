# Two commands do all set-up on a fresh machine: `make run` and `make test` (see README.md).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
NBVAL_FLAGS := --nbval --nbval-current-env --sanitize-with tests/nbval_sanitize.cfg

.PHONY: run test lint lab data data-check bench clean

# Create the virtual environment when missing and (re)install whenever the pins change.
$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

## Execute every notebook in order into build/ (the committed copies stay untouched).
run: $(INSTALLED)
	$(BIN)/python scripts/run_notebooks.py notebooks build

## Lint, unit tests, then strict nbval: every notebook re-executed and compared with its committed outputs.
test: $(INSTALLED) lint
	$(BIN)/pytest tests notebooks $(NBVAL_FLAGS)

lint: $(INSTALLED)
	$(BIN)/ruff check helpers tests scripts notebooks
	$(BIN)/ruff format --check helpers tests scripts notebooks

lab: $(INSTALLED)
	$(BIN)/jupyter lab notebooks

## Rebuild data/ from the package archives (verifies their checksums first).
data: $(INSTALLED)
	$(BIN)/python scripts/build_data.py

## Check that the committed data is byte-identical to a fresh build from the archives.
data-check: $(INSTALLED)
	$(BIN)/python scripts/build_data.py --check

## Measure notebook times and memory, encoder, training and inference throughput -> benchmarks/RESULTS.md.
bench: $(INSTALLED)
	$(BIN)/python scripts/benchmark.py

clean:
	rm -rf build .cache
