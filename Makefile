# One task runner for people and CI (.ci/run calls `make test`). Each target builds its own virtualenv.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
LOCK   := requirements/dev.lock
LINT_PATHS := src tests compat $(wildcard bench)

.PHONY: demo test install install-dev lint format typecheck chromium pytest docs compat bench soak all clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Runtime only: what `make demo` needs.
$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -c $(LOCK) -e .
	touch $@

# Runtime + test tools, pinned by the lockfile.
$(VENV)/.installed-dev: $(BIN)/python pyproject.toml $(LOCK)
	$(BIN)/pip install -q -c $(LOCK) -e '.[dev]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## demo: set up and run the offline showcase (simulated models; no key, no network)
demo: install
	$(BIN)/llm-manager demo

## test: set up, then lint, type-check, build the docs (strict) and run the whole test suite
test: install-dev lint typecheck docs chromium pytest compat

# The dashboard's browser tests drive Debian's Chromium through playwright (which downloads no browser here).
CHROMIUM := /usr/bin/chromium
chromium: $(CHROMIUM)
$(CHROMIUM):
	DEBIAN_FRONTEND=noninteractive apt-get -qq update
	DEBIAN_FRONTEND=noninteractive apt-get -qq install -y --no-install-recommends chromium >/dev/null

lint: install-dev
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

format: install-dev
	$(BIN)/ruff format $(LINT_PATHS)
	$(BIN)/ruff check --fix $(LINT_PATHS)

typecheck: install-dev
	$(BIN)/mypy

pytest: install-dev
	$(BIN)/pytest

## docs: build the documentation site into site/ (--strict: a broken link or reference fails the build)
docs: install-dev
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir site

## compat: the client compatibility suite — real clients (openai, anthropic, LangChain, instructor, the Agents SDK,
## the llm CLI, LiteLLM; the openai and anthropic npm packages and the Vercel AI SDK through node) drive
## `llm-manager serve`. Its own virtualenv: the clients' pins differ from the test suite's lockfile.
COMPAT_VENV := .venv-compat
COMPAT_LOCK := requirements/compat.lock
$(COMPAT_VENV)/.installed: pyproject.toml $(COMPAT_LOCK) compat/requirements.txt
	test -x $(COMPAT_VENV)/bin/python || $(PYTHON) -m venv $(COMPAT_VENV)
	$(COMPAT_VENV)/bin/pip install -q --upgrade pip
	$(COMPAT_VENV)/bin/pip install -q -c $(COMPAT_LOCK) -e . -r compat/requirements.txt
	touch $@
compat: $(COMPAT_VENV)/.installed
	$(COMPAT_VENV)/bin/pytest -c compat/pytest.ini compat

## soak: 10,000 requests through three serve replicas (one Redis, one PostgreSQL), 10 % upstream faults with a
## healthy fallback; reports caller-visible errors, ledger rows vs requests and RSS growth (bench/soak.py).
# Not part of `test`: it takes a few minutes. Results: bench/results/soak.json and docs/operations.md.
soak: install-dev
	$(BIN)/python -m bench.soak

## bench: latency / streaming / import-time, resilience, gateway and long-stream (vs LiteLLM proxy, Portkey) benchmarks.
# Its own virtualenv: LiteLLM pins an older openai SDK than the test suite's lockfile.
BENCH_VENV := .venv-bench
bench:
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install -q -e '.[bench,redis]'
	$(BENCH_VENV)/bin/python -m bench.run
	$(BENCH_VENV)/bin/python -m bench.resilience
	$(BENCH_VENV)/bin/python -m bench.gateway
	$(BENCH_VENV)/bin/python -m bench.streams

all: lint typecheck docs pytest

clean:
	rm -rf $(VENV) $(COMPAT_VENV) compat/js/node_modules .mypy_cache .ruff_cache .pytest_cache .hypothesis site
