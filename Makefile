# Two entry points on a fresh Linux machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest unit contract integration e2e deployment bench-smoke bench \
	bench-report \
	redis-server clean build-IngestFunction

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $(STAMP)

# redis-server is a system binary: install it when missing and possible.
redis-server:
	@command -v redis-server >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null); \
	  fi; \
	  command -v redis-server >/dev/null 2>&1 || { echo "redis-server is missing: install it (e.g. 'sudo apt-get install redis-server') and run make again"; exit 1; }; \
	}

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Product code is strict; tests are checked too, without demanding annotations.
typecheck: $(STAMP)
	$(BIN)/mypy
	$(BIN)/mypy --allow-untyped-defs --allow-incomplete-defs --allow-untyped-calls \
	  --allow-any-generics --no-warn-return-any --no-warn-unused-ignores \
	  --disable-error-code=union-attr tests

# Three test processes (on two cores: most tests wait on the servers they start), a file
# each at a time: every process starts its own redis-server,
# moto and simulator (tests/conftest.py picks free ports), so files never share state.
# Tests marked `isolated` run after, in a process of their own (see the marker's users).
pytest: $(STAMP) redis-server
	$(BIN)/pytest -n 3 --dist loadfile --durations=25 -m "not isolated"
	$(BIN)/pytest -m isolated tests/e2e

# Lint and the type checks run beside the tests: on two cores the tests leave a tenth of
# the CPU idle (waiting on the servers they start), and the checks' minute of CPU fits in
# it. A failure of any of the three fails `make test` once the others have finished.
test: $(STAMP) redis-server
	@$(MAKE) --no-print-directory -j3 lint typecheck pytest

# One folder of tests/ each, by what its tests start (`make pytest` runs them all).
# unit: no server (tests/unit/conftest.py refuses them), the ledger contract on MemoryLedger.
unit: $(STAMP)
	$(BIN)/pytest tests/unit

# contract: the same ledger contract on DynamoDB (moto's server).
contract: $(STAMP)
	$(BIN)/pytest tests/contract

# integration: real redis-server, moto and the Genesys simulator; no Celery worker.
integration: $(STAMP) redis-server
	$(BIN)/pytest tests/integration

# e2e: real Celery workers, in-process or as processes (minutes).
e2e: $(STAMP) redis-server
	$(BIN)/pytest tests/e2e

# deployment: compose, the SAM template, the Dockerfile and Flower's configuration.
deployment: $(STAMP) redis-server
	$(BIN)/pytest tests/deployment

# bench-smoke: the benchmarks in --quick mode (`make bench` runs them in full).
bench-smoke: $(STAMP) redis-server
	$(BIN)/pytest tests/bench_smoke

demo: $(STAMP) redis-server
	$(BIN)/dlq-replay demo

# DynamoDB on dynalite when node and npm are present (npm installs it into .bench-node/),
# else on moto, as every run prints; `make bench DYNAMODB=moto` forces moto.
bench: $(STAMP) redis-server
	$(BIN)/python -m bench --report --dynamodb $(or $(DYNAMODB),auto)

# The tables of docs/performance.md and README.md again, from bench/results/ or, without
# it, from the committed bench/summary.json (nothing is measured).
bench-report: $(STAMP)
	$(BIN)/python -m bench.report

# `sam build` (template.yaml, BuildMethod: makefile) calls this with ARTIFACTS_DIR set;
# by hand: `make build-IngestFunction ARTIFACTS_DIR=/tmp/ingest`. Wheels for Lambda's
# platform whatever the machine's (template.yaml's Runtime and Architectures: keep
# LAMBDA_PYTHON and LAMBDA_ARCHITECTURE in step), of only what the ingest imports
# (lambda_package.py says what and why). Needs pip and the package index, or its cache.
LAMBDA_PYTHON ?= 3.11
LAMBDA_ARCHITECTURE ?= x86_64
build-IngestFunction:
	@test -n "$(ARTIFACTS_DIR)" || { echo "set ARTIFACTS_DIR (sam build does)"; exit 1; }
	$(PYTHON) lambda_package.py "$(ARTIFACTS_DIR)" \
	  --python-version $(LAMBDA_PYTHON) --architecture $(LAMBDA_ARCHITECTURE)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build *.egg-info
