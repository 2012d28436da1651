# Two commands do everything: `make lab` and `make test` (see README.md).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.labkit-installed
# A local JupyterLab port; override with `make lab PORT=8899`.
PORT   ?= 8888
# JupyterLab refuses to run as root unless told (containers, CI machines).
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)
# No "Jupyter news?" pop-up, no update check, no extension manager (jupyter/README.md).
LAB_SETTINGS := --LabApp.app_settings_dir=$(CURDIR)/jupyter/lab-settings --LabApp.extension_manager=readonly

.PHONY: setup lab test lint bench mutate clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24" wheel
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

lab: setup
	$(BIN)/labkit doctor || true
	$(BIN)/jupyter lab --notebook-dir=labs --port=$(PORT) $(ROOT_FLAG) $(LAB_SETTINGS)

lint: setup
	$(BIN)/ruff check labkit tests

# nbval over solutions/ uses the tests' calibration cache (tests/conftest.py), so a quick calibration made by
# a test never becomes what lk.device("local") means for the learner.
test: setup lint
	$(BIN)/python -m pytest -n 2 --dist loadscope --no-loadscope-reorder --durations=25 tests
	$(BIN)/labkit build --check
	LABKIT_CACHE_DIR="$${TMPDIR:-/tmp}/labkit-test-cache-$$(id -u)" $(BIN)/python -m pytest -n 2 --dist loadfile -p no:cacheprovider --nbval-lax --nbval-current-env --nbval-sanitize-with solutions/sanitize.cfg solutions

bench: setup
	$(BIN)/python bench/run.py

# Mutation testing of the core modules against bench/mutation_budget.toml (minutes per module; not in `make test`).
# One module: `make mutate MODULES=check`.
mutate: setup
	$(BIN)/python bench/mutate.py $(MODULES)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
