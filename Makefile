# gpuyard — the two commands a newcomer needs are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck format bench bench-full clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## run: install, then serve on http://127.0.0.1:8080 with a simulated demo cluster
run: $(STAMP)
	$(BIN)/gpuyard serve --demo

## test: install, lint, type-check, check the layers, then the whole test suite
test: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

## bench: quick benchmarks (< 5 min on 2 cores): tables, bench/results/latest.json, docs/benchmarks.md
bench: $(STAMP)
	$(BIN)/python -m bench

## bench-full: the sizes issue 8 names (slow)
bench-full: $(STAMP)
	$(BIN)/python -m bench --full

clean:
	rm -rf $(VENV) gpuyard-data .pytest_cache .mypy_cache .ruff_cache
