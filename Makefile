# filterviz — `make help` lists the targets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CLIENT := clients/typescript
CLIENT_STAMP := $(CLIENT)/node_modules/.installed

.DEFAULT_GOAL := help
.PHONY: help install run test lint bench bench-gpu bench-quality layers clean client client-deps browser

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

$(CLIENT_STAMP): $(CLIENT)/package-lock.json
	@command -v npm >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; } || \
		{ echo "make test needs Node.js 18+ and npm for the TypeScript client's tests: install them" >&2; exit 1; }
	cd $(CLIENT) && npm ci --no-audit --no-fund
	touch $(CLIENT_STAMP)

client-deps: $(CLIENT_STAMP) ## install the TypeScript client's packages (npm ci, again only when its lock file changed)

client: $(STAMP) $(CLIENT_STAMP) ## regenerate the TypeScript client (clients/typescript) from the API's OpenAPI document
	$(BIN)/python -m api.openapi $(CLIENT)/openapi.json
	cd $(CLIENT) && npm run --silent generate -- openapi.json --output src/schema.d.ts

browser: $(STAMP) ## a Chromium for the gallery's browser tests: /usr/bin/chromium, else Debian's (as root), else Playwright's
	@if [ -x /usr/bin/chromium ]; then echo "browser tests use /usr/bin/chromium"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else $(BIN)/playwright install chromium; fi

test: lint $(CLIENT_STAMP) browser ## the checks below, then the whole test suite (starts its own Redis and worker processes)
	$(BIN)/python -m pytest

lint: $(STAMP) ## ruff, ruff format --check, mypy, vulture and the import contracts (lint-imports)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/vulture
	$(BIN)/lint-imports

bench: $(STAMP) ## speed benchmarks: start-up, engine, BatchNorm folding, precision, memory, service latency, figure-set sweep, batching, load, storage
	$(BIN)/python -m bench

bench-gpu: $(STAMP) ## on a CUDA machine (< 8 min): every model on the GPU vs the CPU, the 4,224-filter VGG16 sweep, a worker job
	$(BIN)/python -m bench.gpu

bench-quality: $(STAMP) ## picture quality: classic, robust, maco vs a 512-step Lucid-style reference; accentuation from photos (minutes)
	$(BIN)/python -m bench.quality
	$(BIN)/python -m bench.accentuation

layers: $(STAMP) ## print VGG16's layer table (the seed's)
	$(BIN)/filterviz layers vgg16

clean: ## remove the venv, caches and local results
	rm -rf $(VENV) var .pytest_cache *.egg-info
