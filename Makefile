# gpuyard — the two commands a newcomer needs are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: screenshots run test lint typecheck format bench bench-full clean web web-client \
	wheel wheelhouse

# The dashboard (web/): npm ci from the committed lockfile, then a Vite build into the
# package (src/gpuyard/web_dist, carried by the wheel); each step reruns only when its
# inputs changed.
# Test workers (pytest-xdist): one per core. Each file runs whole on one worker, and each
# worker starts the real servers its files need (PostgreSQL, dockerd...) on its own ports.
TEST_WORKERS ?= auto
# Schemathesis gives its 97 operations one node id: under xdist only one of them would
# run (the module refuses to), so this file runs on its own, in one process.
CONFORMANCE := tests/api/test_openapi_conformance.py
WEB_MODULES := web/node_modules/.installed
WEB_INDEX   := src/gpuyard/web_dist/index.html
WEB_INPUTS  := $(shell find web/src web/public -type f 2>/dev/null) web/index.html \
	web/package.json web/vite.config.ts web/tsconfig.json web/postcss.config.cjs

$(WEB_MODULES): web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(WEB_INDEX): $(WEB_MODULES) $(WEB_INPUTS)
	cd web && npm run --silent build
	touch $@

## web: build the dashboard (skipped when the build is newer than its sources)
web: $(WEB_INDEX)

## screenshots: refresh the README's pictures in docs/screenshots (runs the browser tests)
screenshots: $(STAMP) $(WEB_INDEX)
	GPUYARD_SCREENSHOTS_DIR=docs/screenshots $(BIN)/pytest -q tests/web

## web-client: regenerate web/openapi.json and the typed client (web/src/api/schema.d.ts)
web-client: $(STAMP) $(WEB_MODULES)
	$(BIN)/gpuyard openapi --output web/openapi.json
	cd web && npm run --silent generate-client

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## run: install, build the dashboard, then serve it and the API on http://127.0.0.1:8080
## with a simulated demo cluster
run: $(STAMP)
	@if command -v npm >/dev/null; then $(MAKE) --no-print-directory web; \
	else echo "npm not found: serving the API without the dashboard (Debian: apt install nodejs npm)"; fi
	$(BIN)/gpuyard serve --demo

## test: install, lint, type-check, check the layers, then the whole test suite
test: $(STAMP) web
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --ignore=$(CONFORMANCE)
	$(BIN)/pytest $(CONFORMANCE)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

## bench: quick benchmarks (< 5 min on 2 cores): tables, bench/results/latest.json, docs/benchmarks.md
## (S7 opens the built dashboard in Chromium, hence `web`)
bench: $(STAMP) web
	$(BIN)/python -m bench

## bench-full: the sizes issue 8 names (slow)
bench-full: $(STAMP) web
	$(BIN)/python -m bench --full

## wheel: dist/gpuyard-<version>-py3-none-any.whl, with the dashboard (what deploy/ansible installs)
wheel: $(STAMP) $(WEB_INDEX)
	rm -rf dist build
	$(BIN)/pip wheel --quiet --no-deps --wheel-dir dist .

## wheelhouse: dist/wheelhouse.tar.gz, the wheel's dependencies for hosts without an index
wheelhouse: wheel
	$(BIN)/pip wheel --quiet --wheel-dir dist/wheelhouse dist/gpuyard-*.whl
	tar -czf dist/wheelhouse.tar.gz -C dist/wheelhouse .

clean:
	rm -rf $(VENV) gpuyard-data .pytest_cache .mypy_cache .ruff_cache web/node_modules \
		src/gpuyard/web_dist dist build
