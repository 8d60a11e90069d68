# The two commands of the README: `make run` and `make test`. Each sets itself up on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.installed
NPM_STAMP := node_modules/.installed
ARGS ?=

.PHONY: run test bench chromium clean

run: $(PY_STAMP) $(NPM_STAMP)
	$(BIN)/replayd serve $(ARGS)

test: $(PY_STAMP) $(NPM_STAMP) chromium
	$(BIN)/pytest $(ARGS)

bench: $(PY_STAMP) $(NPM_STAMP)
	$(BIN)/python bench/bench_ingest.py $(ARGS)

$(PY_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

chromium:
	@scripts/ensure-chromium.sh

clean:
	rm -rf $(VENV) node_modules
