#!/usr/bin/env bash
# Build Ollama VERSION (default 0.24.0) for the parity run, from the Go module proxy, into a cache folder keyed
# by version: ${CORRAL_TOOLS_CACHE:-$HOME/.cache/corral/tools}/ollama-VERSION/{bin/ollama,lib/ollama/}.
# A finished build leaves a `.complete` stamp; a second call only prints the binary's path.
#
# Two things the plain `go install github.com/ollama/ollama@vX` lacks, given here:
#  - the module zip leaves out llama.cpp's vendored headers (nlohmann/, miniaudio/, stb/); the llama-cpp-python
#    sdist (the engine Corral builds on) ships them under vendor/llama.cpp/vendor/, so CGO_CPPFLAGS points there;
#  - the version string comes from -ldflags -X (without it the binary reports 0.0.0).
# The Go build alone has only a generic CPU backend (no AVX, about 1-2 tokens/s); the fast ggml-cpu-* backends are
# built with Ollama's own CMake files from the module directory and installed where the binary looks for them
# (<bin>/../lib/ollama). OLLAMA_CPU_VARIANTS (default: all x86 variants) limits which ones are built.
# Prints progress on stderr and the binary's path on stdout.
set -euo pipefail

VERSION="${1:-0.24.0}"
LLAMA_CPP_PYTHON="${LLAMA_CPP_PYTHON_SDIST_VERSION:-0.3.36}"
CACHE="${CORRAL_TOOLS_CACHE:-$HOME/.cache/corral/tools}/ollama-${VERSION}"
JOBS="${OLLAMA_BUILD_JOBS:-$(nproc)}"
PYTHON="${PYTHON:-python3}"

say() { printf 'build-ollama: %s\n' "$*" >&2; }
need() { command -v "$1" >/dev/null || { say "needs '$1' on PATH: $2"; exit 2; }; }

if [[ -f "$CACHE/.complete" && -x "$CACHE/bin/ollama" ]]; then
    say "cached: $CACHE"
    echo "$CACHE/bin/ollama"
    exit 0
fi
need go "install Go 1.24 or newer"
need cmake "install cmake (apt-get install cmake)"
need g++ "install a C++ compiler (apt-get install g++)"

rm -rf "$CACHE" && mkdir -p "$CACHE/src"
start=$(date +%s)
elapsed() { echo "$(( $(date +%s) - start ))s"; }

say "[1/4] llama.cpp's vendored headers from the llama-cpp-python ${LLAMA_CPP_PYTHON} sdist ($(elapsed))"
"$PYTHON" -m pip download --quiet --no-deps --no-binary :all: "llama-cpp-python==${LLAMA_CPP_PYTHON}" -d "$CACHE/src"
tar -xzf "$CACHE/src/llama_cpp_python-${LLAMA_CPP_PYTHON}.tar.gz" -C "$CACHE/src" \
    "llama_cpp_python-${LLAMA_CPP_PYTHON}/vendor/llama.cpp/vendor"
HEADERS="$CACHE/src/llama_cpp_python-${LLAMA_CPP_PYTHON}/vendor/llama.cpp/vendor"
rm -f "$CACHE/src/llama_cpp_python-${LLAMA_CPP_PYTHON}.tar.gz"

say "[2/4] go install github.com/ollama/ollama@v${VERSION} ($(elapsed))"
MODULE_DIR=$(go mod download -json "github.com/ollama/ollama@v${VERSION}" | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
GOBIN="$CACHE/bin" CGO_ENABLED=1 CGO_CPPFLAGS="-I$HEADERS" GOFLAGS="-p=$JOBS" \
    go install -trimpath -ldflags "-s -w -X=github.com/ollama/ollama/version.Version=${VERSION}" \
    "github.com/ollama/ollama@v${VERSION}"

say "[3/4] CPU backends with Ollama's CMake files ($(elapsed))"
cmake -S "$MODULE_DIR" -B "$CACHE/build" -DCMAKE_BUILD_TYPE=Release -DGGML_CCACHE=OFF \
    -DCMAKE_CUDA_COMPILER=OFF -DCMAKE_HIP_COMPILER=OFF -DCMAKE_DISABLE_FIND_PACKAGE_Vulkan=ON >"$CACHE/cmake-configure.log"
targets=(ggml-base)
for variant in ${OLLAMA_CPU_VARIANTS:-x64 sse42 sandybridge haswell skylakex icelake alderlake}; do
    targets+=("ggml-cpu-$variant")
done
cmake --build "$CACHE/build" --parallel "$JOBS" --target "${targets[@]}" >"$CACHE/cmake-build.log"
mkdir -p "$CACHE/lib/ollama"
cp -a "$CACHE/build/lib/ollama/." "$CACHE/lib/ollama/"
rm -rf "$CACHE/build"

say "[4/4] check ($(elapsed))"
reported=$("$CACHE/bin/ollama" --version 2>&1 | tail -1)
[[ "$reported" == *"$VERSION"* ]] || { say "the binary reports '$reported', not $VERSION"; exit 1; }
touch "$CACHE/.complete"
say "built in $(elapsed): $CACHE"
echo "$CACHE/bin/ollama"
