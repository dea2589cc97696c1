"""Error statuses and bodies: one ``{"error": "..."}`` shape natively, the OpenAI shape on ``/v1``, exact texts
from the reference (§0 cross-cutting rules, §1.1 model resolution, §7.3 keep_alive)."""

from __future__ import annotations

import httpx
import pytest

from conformance import expect
from conformance.calls import greedy

pytestmark = pytest.mark.ref("1.1")

POST_ROUTES = [
    "/api/generate",
    "/api/chat",
    "/api/embed",
    "/api/embeddings",
    "/api/show",
    "/api/create",
    "/api/copy",
    "/api/pull",
    "/api/push",
]
ABSENT = "conformance-absent:latest"


def _post(http: httpx.Client, path: str, body: dict[str, object]) -> httpx.Response:
    return http.post(path, json={"stream": False, **body})


@pytest.mark.ref("0")
@pytest.mark.parametrize("path", POST_ROUTES)
def test_empty_body(http: httpx.Client, path: str) -> None:
    expect.native_error(http.post(path, content=b""), 400, "missing request body")


@pytest.mark.ref("0")
def test_empty_body_delete(http: httpx.Client) -> None:
    expect.native_error(http.request("DELETE", "/api/delete", content=b""), 400, "missing request body")


@pytest.mark.ref("0")
@pytest.mark.parametrize("path", ["/api/generate", "/api/chat", "/api/embed", "/api/show"])
def test_malformed_json(http: httpx.Client, path: str) -> None:
    resp = http.post(path, content=b"xyz", headers={"Content-Type": "application/json"})
    expect.native_error(resp, 400, "invalid character 'x' looking for beginning of value")


@pytest.mark.ref("0")
def test_malformed_object_status(http: httpx.Client) -> None:
    resp = http.post("/api/generate", content=b"{x", headers={"Content-Type": "application/json"})
    expect.native_error(resp, 400, prefix="invalid character 'x' looking for beginning of ")


@pytest.mark.optional
@pytest.mark.ref("0")
def test_malformed_object_go_text(http: httpx.Client) -> None:
    resp = http.post("/api/generate", content=b"{x", headers={"Content-Type": "application/json"})
    expect.native_error(resp, 400, "invalid character 'x' looking for beginning of object key string")


@pytest.mark.ref("0")
def test_wrong_json_type_status(http: httpx.Client, model: str) -> None:
    expect.native_error(_post(http, "/api/generate", {"model": model, "prompt": 5}), 400)


@pytest.mark.optional
@pytest.mark.ref("0")
def test_wrong_json_type_go_text(http: httpx.Client, model: str) -> None:
    resp = _post(http, "/api/generate", {"model": model, "prompt": 5})
    expect.native_error(
        resp, 400, "json: cannot unmarshal number into Go struct field GenerateRequest.prompt of type string"
    )


@pytest.mark.ref("0")
def test_wrong_messages_type_status(http: httpx.Client, model: str) -> None:
    expect.native_error(_post(http, "/api/chat", {"model": model, "messages": "hi"}), 400)


@pytest.mark.parametrize(
    ("path", "body", "code", "text"),
    [
        ("/api/generate", {"model": ""}, 404, "model '' not found"),
        ("/api/chat", {"model": ""}, 400, "model is required"),
        ("/api/embed", {"model": "", "input": "x"}, 404, "model '' not found"),
        ("/api/embeddings", {"model": "", "prompt": "x"}, 400, "model is required"),
    ],
    ids=["generate", "chat", "embed", "embeddings"],
)
def test_empty_model(http: httpx.Client, path: str, body: dict[str, object], code: int, text: str) -> None:
    expect.native_error(_post(http, path, body), code, text)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/generate", {"prompt": "x"}),
        ("/api/chat", {"messages": [{"role": "user", "content": "x"}]}),
        ("/api/embed", {"input": "x"}),
        ("/api/embeddings", {"prompt": "x"}),
    ],
    ids=["generate", "chat", "embed", "embeddings"],
)
def test_invalid_model_name(http: httpx.Client, path: str, body: dict[str, object]) -> None:
    expect.native_error(_post(http, path, {"model": "bad name!", **body}), 400, "invalid model name")


@pytest.mark.parametrize(
    ("path", "body", "text"),
    [
        ("/api/generate", {"prompt": "x"}, f"model '{ABSENT}' not found"),
        ("/api/chat", {"messages": [{"role": "user", "content": "x"}]}, f"model '{ABSENT}' not found"),
        ("/api/embed", {"input": "x"}, f'model "{ABSENT}" not found, try pulling it first'),
        ("/api/embeddings", {"prompt": "x"}, f'model "{ABSENT}" not found, try pulling it first'),
    ],
    ids=["generate", "chat", "embed", "embeddings"],
)
def test_unknown_model(http: httpx.Client, path: str, body: dict[str, object], text: str) -> None:
    expect.native_error(_post(http, path, {"model": ABSENT, **body}), 404, text)


def test_unknown_model_name_as_sent(http: httpx.Client) -> None:
    resp = _post(http, "/api/generate", {"model": "conformance-absent", "prompt": "x"})
    expect.native_error(resp, 404, "model 'conformance-absent' not found")


@pytest.mark.ref("0")
@pytest.mark.parametrize("path", ["/api/generate", "/api/chat"])
def test_error_before_stream_is_json(http: httpx.Client, path: str) -> None:
    body = {"model": ABSENT, "prompt": "x", "messages": [{"role": "user", "content": "x"}]}
    resp = http.post(path, json=body)
    expect.native_error(resp, 404)


@pytest.mark.ref("0")
def test_error_content_type(http: httpx.Client) -> None:
    resp = _post(http, "/api/generate", {"model": ABSENT, "prompt": "x"})
    expect.media_type(resp, "application/json; charset=utf-8", exact=True)


@pytest.mark.ref("7.3")
def test_keep_alive_unitless_string(http: httpx.Client, model: str) -> None:
    resp = _post(http, "/api/generate", {"model": model, "prompt": "x", "keep_alive": "300"})
    expect.native_error(resp, 400, 'time: missing unit in duration "300"')


@pytest.mark.ref("7.3")
def test_keep_alive_bool(http: httpx.Client, model: str) -> None:
    resp = _post(http, "/api/generate", {"model": model, "prompt": "x", "keep_alive": True})
    expect.native_error(resp, 400, "Unsupported type: 'bool'")


@pytest.mark.ref("1.2")
def test_raw_with_system(http: httpx.Client, model: str) -> None:
    resp = _post(http, "/api/generate", {"model": model, "prompt": "x", "raw": True, "system": "s"})
    expect.native_error(resp, 400, "raw mode does not support template, system, or context")


@pytest.mark.ref("1.2")
def test_raw_with_template(http: httpx.Client, model: str) -> None:
    resp = _post(http, "/api/generate", {"model": model, "prompt": "x", "raw": True, "template": "{{ .Prompt }}"})
    expect.native_error(resp, 400, "raw mode does not support template, system, or context")


@pytest.mark.parametrize("path", ["/api/generate", "/api/chat"])
def test_top_logprobs_range(http: httpx.Client, model: str, path: str) -> None:
    body = {"model": model, "prompt": "x", "messages": [{"role": "user", "content": "x"}], "top_logprobs": 21}
    expect.native_error(_post(http, path, body), 400, "top_logprobs must be between 0 and 20")


@pytest.mark.ref("1.2")
def test_think_invalid_string(http: httpx.Client, model: str) -> None:
    resp = _post(http, "/api/generate", {"model": model, "prompt": "x", "think": "extreme"})
    expect.native_error(
        resp, 400, 'invalid think value: "extreme" (must be "high", "medium", "low", "max", true, or false)'
    )


@pytest.mark.ref("1.2")
def test_think_invalid_type(http: httpx.Client, model: str) -> None:
    resp = _post(http, "/api/generate", {"model": model, "prompt": "x", "think": 3})
    expect.native_error(resp, 400, prefix="think must be a boolean or string")


@pytest.mark.ref("1.2")
def test_images_bad_base64(http: httpx.Client, model: str) -> None:
    resp = _post(http, "/api/generate", {"model": model, "prompt": "x", "images": ["!!!not-base64"]})
    expect.native_error(resp, 400, prefix="illegal base64 data at input byte")


@pytest.mark.ref("2.3")
def test_option_wrong_type(http: httpx.Client, model: str) -> None:
    resp = _post(http, "/api/generate", {"model": model, "prompt": "x", "options": {"temperature": "hot"}})
    expect.native_error(resp, 500, 'option "temperature" must be of type float32')


@pytest.mark.ref("2.3")
def test_option_stop_must_be_array(http: httpx.Client, model: str) -> None:
    resp = _post(http, "/api/generate", {"model": model, "prompt": "x", "options": {"stop": "x"}})
    expect.native_error(resp, 500, 'option "stop" must be of type array')


@pytest.mark.ref("2.3")
def test_option_null_skipped(http: httpx.Client, model: str) -> None:
    resp = _post(http, "/api/generate", {"model": model, "prompt": "x", "options": {**greedy(1), "top_k": None}})
    expect.status(resp, 200)


@pytest.mark.ref("3")
def test_openai_unknown_model(http: httpx.Client) -> None:
    body = {"model": ABSENT, "messages": [{"role": "user", "content": "x"}]}
    expect.openai_error(http.post("/v1/chat/completions", json=body), 404, "not_found_error")


@pytest.mark.ref("3")
def test_openai_error_keys(http: httpx.Client) -> None:
    body = {"model": ABSENT, "messages": [{"role": "user", "content": "x"}]}
    error = expect.openai_error(http.post("/v1/chat/completions", json=body), 404, "not_found_error")
    expect.equal({k: error.get(k) for k in ("param", "code")}, {"param": None, "code": None}, "param and code")
    expect.check("param" in error and "code" in error, "OpenAI error keys", "param and code present", sorted(error))


@pytest.mark.ref("3")
def test_openai_bad_json(http: httpx.Client) -> None:
    resp = http.post("/v1/chat/completions", content=b"{x", headers={"Content-Type": "application/json"})
    expect.openai_error(resp, 400, "invalid_request_error")


@pytest.mark.ref("3")
def test_openai_empty_messages(http: httpx.Client, model: str) -> None:
    resp = http.post("/v1/chat/completions", json={"model": model, "messages": []})
    expect.openai_error(resp, 400, "invalid_request_error", "[] is too short - 'messages'")
