# Two commands: `make run` serves the whole service locally; `make test` runs the tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export FLASK_APP := app

.PHONY: run test lint format install dev-setup bench docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## Set up everything (venv, database, demo data) and serve web + scheduler + worker on :5000.
run: $(STAMP)
	$(BIN)/flask db upgrade
	$(BIN)/flask wallet dev-certs
	$(BIN)/flask messaging vapid-keys
	$(BIN)/flask demo seed
	$(BIN)/honcho start -f Procfile

## Install and run the whole test suite (SQLite, or PostgreSQL when DATABASE_URL names one), on
## PYTEST_WORKERS processes (pytest-xdist; 0 runs it in this one). PYTEST_ARGS go to pytest.
PYTEST_WORKERS ?= 2
test: $(STAMP)
	$(BIN)/pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

## The gates every change passes (CI runs them before the tests): lint, format, types, import rules.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

## Rewrite the code in the house format and apply ruff's safe fixes.
format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python bench/pos.py

## Regenerate docs/configuration.md from the settings classes (tests/core/test_config_reference.py checks it).
docs: $(STAMP)
	$(BIN)/python -m app.config_reference --output docs/configuration.md

clean:
	rm -rf $(VENV) instance .pytest_cache
