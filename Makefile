# Two commands do all set-up: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)
DEVSTAMP := $(VENV)/.dev-installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)

.PHONY: run test lint typecheck pytest bench clean schema

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

test: $(DEVSTAMP)
	$(BIN)/ruff check engine schemas tests bench
	$(BIN)/ruff format --check engine schemas tests bench
	$(BIN)/mypy
	$(BIN)/cdsrules lint rules
	$(BIN)/cdsrules test -q rules
	$(BIN)/pytest

schema: $(STAMP)
	$(BIN)/cdsrules schema --out schemas/rule-file.schema.json

bench: $(DEVSTAMP)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) var .mypy_cache .pytest_cache .ruff_cache
