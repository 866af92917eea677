# filterviz — `make help` lists the targets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install run test lint bench bench-quality layers clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "filterviz needs Python 3.11+")'
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install filterviz with its test tools

run: $(STAMP) ## start Redis (embedded unless REDIS_URL is set), the API on :8000 and a worker
	$(BIN)/filterviz serve

test: lint ## the checks below, then the whole test suite (starts its own Redis and worker processes)
	$(BIN)/python -m pytest

lint: $(STAMP) ## ruff, ruff format --check, mypy, vulture and the import contracts (lint-imports)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/vulture
	$(BIN)/lint-imports

bench: $(STAMP) ## speed benchmarks: engine, precision, memory, service latency, batching, load (ratios, one run)
	$(BIN)/python -m bench

bench-quality: $(STAMP) ## picture quality: classic vs robust vs a 512-step Lucid-style reference (minutes)
	$(BIN)/python -m bench.quality

layers: $(STAMP) ## print VGG16's layer table (the seed's)
	$(BIN)/filterviz layers vgg16

clean: ## remove the venv, caches and local results
	rm -rf $(VENV) var .pytest_cache *.egg-info
