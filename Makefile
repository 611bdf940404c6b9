# The two commands of the README: `make run` and `make test`. Everything they need is installed here.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# Re-install when the package definition changes; the stamp records which extras are in.
STAMP_RUN := $(VENV)/.installed-run
STAMP_TEST := $(VENV)/.installed-test
# Other Matrix clients as test clients (matrix-js-sdk, tests/harness/jssdk.py), pinned by the lock.
JS_DIR := tests/js
STAMP_JS := $(JS_DIR)/node_modules/.installed
# The browser client's lint and test tools (package.json): `npm ci` again when the lock changes.
STAMP_NODE := node_modules/.installed
PYTEST_ARGS ?=
# pytest-xdist workers for `make test` (0: one process); see tests/conftest.py for how work that
# shares fixtures is grouped. Two on this 2-core machine: with three, a Synapse worker deployment
# under the load kept an old power level after a write was answered 200 (a race of Synapse's).
TEST_WORKERS ?= 2
# Where the suite's stacks keep their files (tmp_path, and so every test homeserver's SQLite
# database, the bridge's, logs and media): tmpfs where there is one, so the thousands of commits
# a run makes wait for no fsync of the shared disk (1.6 ms each on /tmp here, 0.09 on tmpfs).
TEST_TMPDIR ?= $(shell test -d /dev/shm -a -w /dev/shm && echo /dev/shm || echo $${TMPDIR:-/tmp})
# pip's own output, one short line per package fetched, without the already-satisfied noise.
PIP_PROGRESS := sed -u -n -E 's/^(Collecting|Successfully installed|ERROR).*/&/p' | cut -c1-100

.PHONY: run test unit lint soak bench clean-state help

help:
	@echo "make run    start Synapse + Guilds locally and print the URL to open"
	@echo "make test   install the test dependencies and run the whole suite"

$(BIN)/python:
	@echo "==> Creating the virtual environment in $(VENV)"
	@$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP_RUN): setup.cfg pyproject.toml | $(BIN)/python
	@echo "==> Installing Guilds and Synapse (first time: about a minute)"
	@$(BIN)/python -m pip install -e '.[synapse,postgres]' 2>&1 | $(PIP_PROGRESS)
	@touch $@

$(STAMP_TEST): setup.cfg pyproject.toml | $(BIN)/python
	@echo "==> Installing Guilds with its test dependencies"
	@$(BIN)/python -m pip install -e '.[synapse,postgres,test]' 2>&1 | $(PIP_PROGRESS)
	@touch $@ $(STAMP_RUN)

$(STAMP_JS): $(JS_DIR)/package.json $(JS_DIR)/package-lock.json
	@echo "==> Installing matrix-js-sdk for the interop tests (npm ci in $(JS_DIR))"
	@npm ci --prefix $(JS_DIR) --no-audit --no-fund --loglevel=error
	@touch $@

run: $(STAMP_RUN)
	@if [ -n "$(GUILDS_TURN_PORT)" ]; then ./scripts/ensure-coturn.sh; fi
	@./scripts/ensure-janus.sh
	@$(BIN)/guilds run

$(STAMP_NODE): package.json package-lock.json
	@echo "==> Installing the browser client's lint and test tools (npm ci)"
	@npm ci --no-audit --no-fund --loglevel=error
	@touch $@

test: $(STAMP_TEST) $(STAMP_JS) lint
	@./scripts/ensure-chromium.sh
	@./scripts/ensure-coturn.sh
	@./scripts/ensure-janus.sh
	@echo "==> node --test: the browser client's pure logic"
	@node --test --test-reporter=spec tests/unit_js/*.test.mjs
	@TMPDIR=$(TEST_TMPDIR) $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadscope $(PYTEST_ARGS)

lint: $(STAMP_TEST) $(STAMP_NODE)
	@echo "==> ruff and mypy"
	@$(BIN)/ruff check --quiet .
	@$(BIN)/ruff format --check --quiet .
	@$(BIN)/mypy --no-error-summary guilds guildsctl synapse_module bridge web tests bench
	@echo "==> eslint and tsc --checkJs: the browser client"
	@node_modules/.bin/eslint --max-warnings=0 .
	@node_modules/.bin/tsc --project jsconfig.json

unit: $(STAMP_TEST)
	@$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

# The full load test of docs/SECURITY.md: 50 users in 10 channels for 2 minutes (make test runs
# a short smoke version of it), longer fuzzing and schemathesis runs, and 60 rounds of randomized
# interleavings with 6 bridge and 6 Synapse SIGKILLs (make test runs 6 rounds; GUILDS_INTERLEAVE_SEED
# replays a failure).
soak: $(STAMP_TEST)
	@GUILDS_LOAD_USERS=50 GUILDS_LOAD_CHANNELS=10 GUILDS_LOAD_SECONDS=120 GUILDS_FUZZ_EXAMPLES=200 \
		GUILDS_SCHEMATHESIS_EXAMPLES=100 GUILDS_INTERLEAVE_ROUNDS=60 GUILDS_INTERLEAVE_CRASHES=6 \
		$(BIN)/python -m pytest -s -o timeout=3600 tests/integration/test_load.py \
		tests/integration/test_fuzz_api.py tests/integration/test_schemathesis.py \
		tests/integration/test_interleavings.py $(PYTEST_ARGS)

# The figures of docs/PERFORMANCE.md: every bench/fig*.py in turn (BENCH_ARGS=--quick for a
# smoke run); each prints its table and writes bench/results/<figure>.json.
BENCH_ARGS ?=
bench: $(STAMP_TEST)
	@for script in bench/fig*.py; do \
		echo "==> $$script"; \
		$(BIN)/python -m bench.$$(basename $$script .py) $(BENCH_ARGS) || exit 1; \
	done

clean-state:
	rm -rf local
