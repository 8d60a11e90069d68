# The two commands of the README: `make run` and `make test`. Each sets itself up on first use.
# `make test` runs `make lint` (ruff, then mypy) first: a finding fails it before the suite starts.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.installed
NPM_STAMP := node_modules/.installed
ARGS ?=
# `make test` runs the suite in .venv ($(PYTHON), the oldest supported Python where python3 is 3.11)
# and again on the newest supported Python, in its own venv, when one is installed.
NEWEST := 3.13
# Python dependencies come from requirements.lock (exact versions and hashes); `make lock` rewrites
# it after a change to pyproject.toml's dependencies, `make lock-upgrade` moves every pin to the
# newest release. uv resolves one lock for Python 3.11 to 3.13 on every platform.
LOCK := requirements.lock
UV_VERSION := 0.13.9
UV := .venv-lock/bin/uv
UV_COMPILE := $(UV) pip compile pyproject.toml --extra test --group pyproject.toml:build --universal \
	--python-version 3.11 --generate-hashes --quiet --output-file $(LOCK)

.PHONY: run test lint pytest bench chromium postgresql lock lock-upgrade clean

run: $(PY_STAMP) $(NPM_STAMP)
	$(BIN)/replayd serve $(ARGS)

test: lint $(NPM_STAMP) chromium postgresql
	@$(MAKE) --no-print-directory pytest
	@if ! newest=$$(scripts/find-python.sh $(NEWEST)); then \
		echo "make test: no Python $(NEWEST) found (python$(NEWEST) on PATH or in pyenv): the suite ran on $$($(BIN)/python -V) only"; \
	elif [ "$$($(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')" = $(NEWEST) ]; then \
		echo "make test: .venv is Python $(NEWEST) already: one run"; \
	else \
		echo "make test: again on Python $(NEWEST) ($$newest)"; \
		$(MAKE) --no-print-directory pytest VENV=.venv-$(NEWEST) PYTHON=$$newest; \
	fi

# ruff (style, imports, likely bugs) and mypy (types) with pyproject.toml's settings. mypy cannot follow
# the editable install (an import hook), so the folders are linked into .venv/typecheck as the
# installed namespace, replayd.server, replayd.player and replayd.scrubbing, and mypy checks that.
TYPECHECK := $(VENV)/typecheck/replayd
lint: $(PY_STAMP)
	@mkdir -p $(TYPECHECK) && for p in server player scrubbing; do ln -sfn ../../../$$p $(TYPECHECK)/$$p; done
	@failed=; \
	$(BIN)/ruff check . || failed="$$failed ruff"; \
	$(BIN)/mypy -p replayd || failed="$$failed mypy"; \
	if [ -n "$$failed" ]; then \
		echo "make lint: failed:$$failed (see above; \`$(BIN)/ruff check --fix\` mends some ruff findings;" \
			"mypy's paths under $(TYPECHECK)/ are the repo's folders)"; \
		exit 1; \
	fi

# The suite in one venv (VENV=..., PYTHON=... pick which).
pytest: $(PY_STAMP)
	$(BIN)/pytest $(ARGS)

bench: $(PY_STAMP) $(NPM_STAMP)
	$(BIN)/python bench/bench_ingest.py $(ARGS)

# The project itself goes in without build isolation: setuptools is pinned in the lock too. Its two C
# files (server/_apart.c, scrubbing/_domwalk.c) are built in place, where a compiler is
# (scripts/ensure-compiler.sh).
$(PY_STAMP): $(LOCK) pyproject.toml server/_apart.c scrubbing/_domwalk.c
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	scripts/ensure-compiler.sh $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes --requirement $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation --editable .
	touch $@

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

chromium:
	@scripts/ensure-chromium.sh

postgresql:
	@scripts/ensure-postgresql.sh

$(UV):
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet uv==$(UV_VERSION)

lock: $(UV)
	$(UV_COMPILE) --custom-compile-command "make lock"

lock-upgrade: $(UV)
	$(UV_COMPILE) --custom-compile-command "make lock" --upgrade

clean:
	rm -rf $(VENV) .venv-$(NEWEST) .venv-lock node_modules server/_apart.*.so scrubbing/_domwalk.*.so
