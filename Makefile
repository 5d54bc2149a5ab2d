# leadimport: the targets the README and CI use. Everything installs itself into .venv.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
# Re-install when the dependency pins change.
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements.lock 2>/dev/null | sha1sum | cut -c1-12)
PYTEST_ARGS ?=
# Two pytest workers (pytest-xdist): each has its own throwaway PostgreSQL and Redis; the tests use
# their own databases and key prefixes, so they run side by side (124 s -> 77 s on 2 cores).
PYTEST_WORKERS ?= 2

.PHONY: install lock demo test test-all lint check-template checks pytest pytest-all build bench migrate openapi clean mutants

# axe-core (npm) for the browser test's accessibility check, pinned with its hash in infra/axe/package-lock.json and
# installed into .local/npm where npm exists. Without npm (or the registry) the install goes on and that check
# skips with a message; a later `make install` tries again.
AXE := .local/npm/node_modules/axe-core/axe.min.js

install: $(STAMP) $(AXE)

$(AXE): infra/axe/package.json infra/axe/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	    mkdir -p .local/npm && cp infra/axe/package.json infra/axe/package-lock.json .local/npm/ && \
	    (npm ci --prefix .local/npm --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null \
	     && touch $@ && echo "axe-core installed into .local/npm") \
	    || echo "axe-core could not be installed with npm: the browser test's accessibility check will skip"; \
	else echo "npm not found: axe-core not installed, the browser test's accessibility check will skip"; fi

$(STAMP):
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing leadimport and its dev dependencies into $(VENV) ..."
	@# The lock pins every package with its hashes: no resolution (--no-deps), every file checked
	@# (--require-hashes), and `pip check` proves the set consistent. uv (pinned and hashed in the lock
	@# too) installs it in seconds where pip takes ~45 s. If any uv step fails (no uv wheel here, an
	@# index only pip is configured for), pip installs the same lock, uv left out. The project itself
	@# builds with the locked setuptools (--no-build-isolation): nothing is fetched unchecked.
	@if $(MAKE) --no-print-directory $(UV) >/dev/null 2>&1 && \
	    $(UV) pip install --quiet --python $(BIN)/python --no-deps --require-hashes --compile-bytecode -r requirements.lock && \
	    $(UV) pip install --quiet --python $(BIN)/python --no-deps --no-build-isolation -e . ; then :; \
	else \
	    echo "installing with pip instead of uv" && \
	    awk '/^uv==/{s=1; next} s && /^[^ #]/{s=0} !s' requirements.lock > $(VENV)/requirements-pip.txt && \
	    $(BIN)/pip install --quiet --disable-pip-version-check --no-deps --require-hashes -r $(VENV)/requirements-pip.txt && \
	    $(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e . ; \
	fi
	@$(BIN)/pip check --disable-pip-version-check >/dev/null
	@# Bytecode compiled once here: where PYTHONDONTWRITEBYTECODE is set, every command would otherwise
	@# compile what it imports (~3 s of a small `leadimport import`, see the CLI benchmark).
	@$(BIN)/python -m compileall -q -j0 layers local functions benchmarks >/dev/null
	@# ... and the dependencies' (uv compiles them; pip where PYTHONDONTWRITEBYTECODE is set does not): moto,
	@# flask, werkzeug and cryptography compiled from source at every command cost ~0.9 s of a 1-row import.
	@$(BIN)/python -m compileall -q -j0 $(VENV)/lib >/dev/null 2>&1 || true
	@rm -f $(VENV)/.installed-*
	@touch $@

# uv alone, from its hashed lines in the lock (also what `make lock` needs: not the whole set)
$(UV):
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@awk '/^uv==/{p=1} p{print} p&&!/\\$$/{exit}' requirements.lock > $(VENV)/uv-requirement.txt
	@$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --require-hashes -r $(VENV)/uv-requirement.txt

# Re-pin after editing pyproject.toml: resolves with the current pins as constraints (so only what the
# edit needs moves), with every file's hash. Delete a line of requirements.lock to let that package move.
lock: $(UV)
	$(UV) pip compile pyproject.toml --extra dev -c requirements.lock --generate-hashes \
	    --python-version 3.11 --no-header --quiet -o requirements.lock.new
	mv requirements.lock.new requirements.lock

demo: install
	$(BIN)/leadimport demo

# The tests and the static checks (ruff, mypy, sam validate/build) run side by side: the tool install
# and sam build wait on the network and disk while the tests use the CPU.
test: install
	@$(MAKE) --no-print-directory -j2 --output-sync=target pytest checks

test-all: install
	@$(MAKE) --no-print-directory -j2 --output-sync=target pytest-all checks

checks: lint
	bash infra/sam-check.sh

pytest: install
	$(BIN)/pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

pytest-all: install
	$(BIN)/pytest -n $(PYTEST_WORKERS) -m "" $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

check-template:
	bash infra/sam-check.sh

build: check-template

bench: install
	$(BIN)/python -m benchmarks.run

# Each guarantee's test must fail when its mechanism is removed: infra/mutants.py applies a curated list of
# mutations one by one and reports which test caught each (about 3 minutes; not part of make test).
mutants: install
	$(BIN)/python infra/mutants.py

openapi: install
	$(BIN)/python -m leadimport_local.openapi

migrate: install
	$(BIN)/leadimport migrate

clean:
	rm -rf $(VENV) .venv-tools .aws-sam .local .pytest_cache .mypy_cache .ruff_cache
