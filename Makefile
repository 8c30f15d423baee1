# One entry point for everything: `make run`, `make test`, `make bench`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Two installs by role, each with its stamp. The runtime (`make run`, `make worker`) is the
# package with its embedded defaults only; the development install (`make test`) adds every
# backend's extra and the tools. It contains the runtime, so it also stamps that one.
# `make run EXTRAS=postgres,redis` adds backends' extras to the runtime install.
EXTRAS    ?=
comma     := ,
RUN_STAMP := $(VENV)/.installed-run$(if $(EXTRAS),-$(subst $(comma),-,$(EXTRAS)))
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: install install-run run migrate worker test lint typecheck unit bench clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e '.$(if $(EXTRAS),[$(EXTRAS)])'
	touch $(RUN_STAMP)

$(DEV_STAMP): pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(DEV_STAMP) $(VENV)/.installed-run

install: $(DEV_STAMP)

install-run: $(RUN_STAMP)

migrate: install-run
	$(BIN)/wta migrate

# The API on 127.0.0.1:8000 with an embedded worker, on the embedded defaults.
run: migrate
	$(BIN)/wta serve --with-worker

worker: install-run
	$(BIN)/wta worker

lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/python -m pytest

unit: install
	$(BIN)/python -m pytest tests/unit -q

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
