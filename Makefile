# Two commands: `make run` (set up + start the server with embedded defaults) and
# `make test` (set up + run the whole test suite). Everything else is a helper.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
MODEL ?= $(or $(OPENMJ_MODEL),sd15-lcm)
# pytest-xdist workers; each test file stays on one worker (its servers start once)
TEST_WORKERS ?= 3
PORT ?= 8000
DATA ?= data

.PHONY: run test setup setup-dev lint bench soak clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# torch is pinned and installed first so no other package can pull a different (CUDA) build
$(VENV)/.local-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[local]'
	touch $@

$(VENV)/.dev-installed: $(VENV)/.local-installed
	$(BIN)/pip install -q -e '.[local,dev,moderation]'
	touch $@

setup: $(VENV)/.local-installed
setup-dev: $(VENV)/.dev-installed

run: setup
	$(BIN)/openmj serve --model $(MODEL) --port $(PORT) --data-dir $(DATA)

test: setup-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	HF_HUB_OFFLINE=1 $(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

lint: setup-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

bench: setup-dev
	HF_HUB_OFFLINE=1 $(BIN)/python bench/run_all.py

# issue 18's soak: 2 API nodes + 2 workers on a private PostgreSQL and SeaweedFS, 200 tasks through
# the four APIs, 24 SIGKILLs; prints the counts, exits 1 if anything was lost or charged twice
SOAK_TASKS ?= 200
soak: setup-dev
	HF_HUB_OFFLINE=1 $(BIN)/python -m tests.soak --tasks $(SOAK_TASKS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
