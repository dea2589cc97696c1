#!/usr/bin/env bash
# Build llama.cpp's own HTTP server (llama-server) from the same llama-cpp-python sdist the project pins, so a
# comparison runs the very llama.cpp that Corral's engine links. Cached per version under
# ${CORRAL_TOOLS_CACHE:-~/.cache/corral/tools}/llama-server-<version>/; prints the binary's path.
# About 6 minutes on 2 cores the first time (run it niced on a shared machine); instant when cached.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
VERSION=$("$PYTHON" -c 'import importlib.metadata as m; print(m.version("llama-cpp-python"))')
CACHE=${CORRAL_TOOLS_CACHE:-$HOME/.cache/corral/tools}/llama-server-$VERSION
BIN=$CACHE/bin/llama-server
if [ -x "$BIN" ]; then
    echo "$BIN"
    exit 0
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
echo "building llama-server $VERSION (llama.cpp vendored in llama-cpp-python's sdist) ..." >&2
"$PYTHON" -m pip download --quiet --no-deps --no-binary :all: "llama-cpp-python==$VERSION" -d "$WORK" >&2
tar -xzf "$WORK"/llama_cpp_python-"$VERSION".tar.gz -C "$WORK"
SRC=$WORK/llama_cpp_python-$VERSION/vendor/llama.cpp
cmake -S "$SRC" -B "$WORK/build" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DBUILD_SHARED_LIBS=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON >&2
cmake --build "$WORK/build" --target llama-server -j "${JOBS:-2}" >&2
mkdir -p "$CACHE/bin"
cp "$WORK/build/bin/llama-server" "$BIN.tmp"
mv "$BIN.tmp" "$BIN"
echo "$BIN"
