# Two commands do all set-up: `make run` and `make test`; `make check` is the quick loop. The rest are helpers.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)
DEVSTAMP := $(VENV)/.dev-installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)

.PHONY: run test check lint typecheck rules pytest pytest-fast bench clean schema

$(VENV)/bin/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found (Python 3.11 is required)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(VENV)/bin/python pyproject.toml
	$(BIN)/pip install --quiet -e .
	@touch $@

$(DEVSTAMP): $(VENV)/bin/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@ $(STAMP)

run: $(STAMP)
	@mkdir -p var
	$(BIN)/cdsrules serve --host 127.0.0.1 --port $(PORT)

# The full gate (CI runs it through .ci/run): static checks and every test. The bundled pack goes
# through the server's gate (compile, lint, examples) once per test process, in the session's
# ``prepared`` fixture; tests/authoring/test_lint.py and tests/core/test_rule_examples.py read its
# verdict, so make test does not also run `cdsrules lint` over the same examples.
test: lint typecheck pytest

# The quick loop while editing: the same static checks, then the tests not marked slow or
# integration (no PostgreSQL, browser, worker processes or soaks), stopping at the first failure.
check: lint typecheck rules pytest-fast

lint: $(DEVSTAMP)
	$(BIN)/ruff check engine schemas tests bench
	$(BIN)/ruff format --check engine schemas tests bench

typecheck: $(DEVSTAMP)
	$(BIN)/mypy

# the server's gate on rules/ (compile, clinical lint, examples), as a rule author runs it
rules: $(DEVSTAMP)
	$(BIN)/cdsrules lint rules

# pytest-xdist, one worker per core (PYTEST_WORKERS=0 runs in one process). Whole files go to one
# worker, so module fixtures are built once; servers, clusters and stores take free ports and
# their own temporary directories, so workers never meet.
PYTEST_WORKERS ?= auto
XDIST := -n $(PYTEST_WORKERS) --dist loadfile

pytest: $(DEVSTAMP)
	$(BIN)/pytest $(XDIST) $(PYTEST_ARGS)

pytest-fast: $(DEVSTAMP)
	$(BIN)/pytest -m "not slow and not integration" -x $(XDIST) $(PYTEST_ARGS)

schema: $(STAMP)
	$(BIN)/cdsrules schema --out schemas/rule-file.schema.json

bench: $(DEVSTAMP)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) var .mypy_cache .pytest_cache .ruff_cache
