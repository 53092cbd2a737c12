# The README's two commands, `make demo` and `make test`, do all the set-up on a fresh machine:
# a private uv in .uv/, the locked environment in .venv/, state under data/.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .uv/bin/uv
VENV := .venv
BIN := $(VENV)/bin
DATA := $(CURDIR)/data
export DAGSTER_HOME := $(DATA)/dagster_home
export MPLCONFIGDIR := $(DATA)/mplconfig
export MPLBACKEND := Agg
export DAGSTER_DISABLE_TELEMETRY := 1
export CLOSEDLOOP_DATA := $(DATA)
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/$(VENV)

.PHONY: demo test test-fast test-browser test-integration lint ui bench lock clean

$(UV):
	$(PYTHON) -m venv .uv
	.uv/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

# The environment is rebuilt whenever the lock file changes; the project installs itself editable.
$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --locked --extra dev --python $(PYTHON)
	@touch $@

demo: $(VENV)/.synced
	$(BIN)/closedloop demo

test: lint
	$(BIN)/pytest

test-fast: lint
	$(BIN)/pytest -m "not slow"

# Browser tests (tests_browser/, outside `make test`): Playwright drives Debian's Chromium, installed here
# when missing (Playwright's own browser download cannot work here). Screenshots go to data/browser-artifacts/.
CHROMIUM := /usr/bin/chromium
APT := $(if $(filter 0,$(shell id -u)),,sudo) env DEBIAN_FRONTEND=noninteractive apt-get

$(CHROMIUM):
	$(APT) install -y --no-install-recommends chromium || { $(APT) update && $(APT) install -y --no-install-recommends chromium; }

test-browser: $(VENV)/.synced $(CHROMIUM)
	$(BIN)/pytest tests_browser -n 0

# Integration tests (tests_integration/, outside `make test`): a deployment as production runs it, on a
# PostgreSQL server the tests start from Debian's postgresql package, installed here when missing.
# Logs of the webserver, the daemon and PostgreSQL go to data/integration-artifacts/.
POSTGRES_INITDB := /usr/lib/postgresql/15/bin/initdb

$(POSTGRES_INITDB):
	$(APT) install -y --no-install-recommends postgresql || { $(APT) update && $(APT) install -y --no-install-recommends postgresql; }

test-integration: $(VENV)/.synced $(POSTGRES_INITDB)
	$(BIN)/pytest tests_integration -n 0

# The house rules: lint, formatting and the import contracts in pyproject.toml (the domain imports no
# Dagster; orchestration > assets, checks > wiring > closedloop; stages import core and earlier stages),
# and mypy on the domain.
lint: $(VENV)/.synced
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

ui: $(VENV)/.synced
	@$(BIN)/python -m closedloop.core.environment > /dev/null
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

bench: $(VENV)/.synced
	$(BIN)/python -m bench.run

lock: $(UV)
	$(UV) lock

clean:
	rm -rf $(VENV) .uv data .pytest_cache .ruff_cache .import_linter_cache .mypy_cache
