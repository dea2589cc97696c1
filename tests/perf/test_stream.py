"""The stream reader on recorded lines: timing, authoritative token counts and what counts as an error."""

from __future__ import annotations

import json

import pytest

from perf.apis import APIS, api_named
from perf.stream import StreamReader


def ndjson(obj: dict[str, object]) -> bytes:
    return json.dumps(obj).encode() + b"\n"


def sse(obj: dict[str, object] | str) -> list[bytes]:
    data = obj if isinstance(obj, str) else json.dumps(obj)
    return [f"data: {data}\n".encode(), b"\n"]


def feed(api: str, timed_lines: list[tuple[float, bytes]], status: int = 200):
    reader = StreamReader(APIS[api], t0=10.0, t_send=1000.0, prompt_id="p1")
    for now, line in timed_lines:
        reader.feed(line, now)
    return reader.finish(timed_lines[-1][0] + 0.005 if timed_lines else 10.5, status)


def test_native_chat_timing_and_eval_count() -> None:
    lines = [
        (10.050, ndjson({"message": {"role": "assistant", "content": "Hel"}, "done": False})),
        (10.070, ndjson({"message": {"role": "assistant", "content": "lo"}, "done": False})),
        (10.095, ndjson({"message": {"role": "assistant", "content": "!"}, "done": False})),
        (10.100, ndjson({"message": {"role": "assistant", "content": ""}, "done": True, "eval_count": 7,
                         "prompt_eval_count": 30})),
    ]  # fmt: skip
    record = feed("chat", lines)
    assert record.ok, record.error
    assert record.ttft_ms == pytest.approx(50)
    assert record.gaps_ms == pytest.approx([20, 25])
    assert record.output_tokens == 7 and record.tokens_from_server  # the server's count, not 3 chunks
    assert record.prompt_tokens == 30
    assert record.tpot_ms == pytest.approx(45 / 6)
    assert record.e2e_ms == pytest.approx(105)
    assert record.t_done == pytest.approx(1000.105)


def test_empty_and_thinking_chunks() -> None:
    lines = [
        (10.010, ndjson({"response": "", "done": False})),  # empty: not the first token
        (10.040, ndjson({"response": "", "thinking": "hmm", "done": False})),
        (10.060, ndjson({"response": "ok", "done": False})),
        (10.061, ndjson({"response": "", "done": True, "eval_count": 2})),
    ]
    record = feed("generate", lines)
    assert record.ttft_ms == pytest.approx(40)
    assert record.gaps_ms == pytest.approx([20])


def test_openai_sse_with_usage_and_done() -> None:
    chunks = [
        {"choices": [{"delta": {"role": "assistant", "content": ""}}], "usage": {"prompt_tokens": 0,
                                                                                 "completion_tokens": 0}},
        {"choices": [{"delta": {"content": "a"}}]},
        {"choices": [{"delta": {"content": "b"}}]},
        {"choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16}},
    ]  # fmt: skip
    lines = [(10.0 + i * 0.01, line) for i, c in enumerate(chunks) for line in sse(c)]
    lines += [(10.2, line) for line in sse("[DONE]")]
    record = feed("openai-chat", [(10.0, b": keep-alive\n"), *lines])
    assert record.ok, record.error
    assert record.ttft_ms == pytest.approx(10)
    assert record.gaps_ms == pytest.approx([10])
    assert (record.output_tokens, record.prompt_tokens, record.tokens_from_server) == (5, 11, True)


def test_completions_text() -> None:
    lines = [(10.03, line) for line in sse({"choices": [{"text": "x"}]})] + [(10.04, b"data: [DONE]\n")]
    record = feed("openai-completions", lines)
    assert record.ok and record.ttft_ms == pytest.approx(30)
    assert record.output_tokens == 1 and not record.tokens_from_server  # no usage: chunks, and it says so


@pytest.mark.parametrize(
    ("api", "lines", "status", "error"),
    [
        ("chat", [ndjson({"message": {"content": "a"}, "done": False})], 200, "stream ended without its final object"),
        ("openai-chat", sse({"choices": [{"delta": {"content": "a"}}]}), 200, "stream ended without [DONE]"),
        ("chat", [b'{"error":"server busy"}'], 503, "error in response: server busy"),
        ("chat", [], 503, "HTTP 503"),
        ("openai-chat", sse({"error": {"message": "boom", "type": "api_error"}}), 200, "error in response: boom"),
        ("generate", [b"<html>oops</html>\n"], 200, "unparseable line"),
    ],
)
def test_errors(api: str, lines: list[bytes], status: int, error: str) -> None:
    record = feed(api, [(10.01, line) for line in lines], status)
    assert not record.ok
    assert record.error is not None and record.error.startswith(error)


def test_whole_response_and_embed() -> None:
    reader = StreamReader(APIS["chat"], t0=0.0, t_send=0.0, stream=False)
    reader.feed(json.dumps({"message": {"content": "hi"}, "done": True, "eval_count": 4}), 0.3)
    record = reader.finish(0.3, 200)
    assert record.ok and record.ttft_ms is None and record.output_tokens == 4 and record.tpot_ms is None
    reader = StreamReader(APIS["embed"], t0=0.0, t_send=0.0, stream=False)
    reader.feed(json.dumps({"embeddings": [[0.1]], "prompt_eval_count": 3}), 0.02)
    record = reader.finish(0.02, 200)
    assert record.ok and record.prompt_tokens == 3 and record.output_tokens == 0


def test_api_names() -> None:
    assert api_named("native").path == "/api/chat"
    assert api_named("openai").path == "/v1/chat/completions"
    with pytest.raises(ValueError, match="unknown API 'grpc'"):
        api_named("grpc")
