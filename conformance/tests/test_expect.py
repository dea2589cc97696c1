"""Table tests of the shape checks: each accepts what the reference describes and rejects the usual mistakes."""

from __future__ import annotations

import re

import httpx
import pytest

from conformance import expect


def _resp(body: str, content_type: str, status: int = 200) -> httpx.Response:
    request = httpx.Request("POST", "http://test/api/x")
    return httpx.Response(status, content=body.encode(), headers={"Content-Type": content_type}, request=request)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"a":1}\n\n{"b":2}\n', "a JSON object, observed 'a blank line'"),
        ('{"a":1}\n{"b":2}', "a final '\\n'"),
        ('data: {"a":1}\n', "bare JSON"),
        ("[1]\n", "a JSON object"),
        ("", "a final '\\n'"),
    ],
)
def test_ndjson_rejects(body: str, message: str) -> None:
    with pytest.raises(AssertionError, match="expected " + re.escape(message)):
        expect.ndjson(_resp(body, "application/x-ndjson"))


def test_ndjson_accepts() -> None:
    assert expect.ndjson(_resp('{"a":1}\n{"b":2}\n', "application/x-ndjson")) == [{"a": 1}, {"b": 2}]


def test_ndjson_wrong_content_type() -> None:
    with pytest.raises(AssertionError, match="Content-Type: expected 'application/x-ndjson'"):
        expect.ndjson(_resp('{"a":1}\n', "text/event-stream"))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('data: {"a":1}\n\n', "last event 'data: \\[DONE\\]'"),
        ('data: {"a":1}\n\ndata: [DONE]\n', "a blank line after the last event"),
        ('{"a":1}\n\ndata: [DONE]\n\n', "'data: ' prefix"),
        ("data: [DONE]\n\ndata: [DONE]\n\n", "exactly one \\[DONE\\]"),
    ],
)
def test_sse_rejects(body: str, message: str) -> None:
    with pytest.raises(AssertionError, match="expected " + message):
        expect.sse(_resp(body, "text/event-stream"))


def test_sse_accepts() -> None:
    body = 'data: {"a":1}\n\ndata: {"b":2}\n\ndata: [DONE]\n\n'
    assert expect.sse(_resp(body, "text/event-stream")) == [{"a": 1}, {"b": 2}]


@pytest.mark.parametrize(
    ("value", "utc", "ok"),
    [
        ("2024-12-06T00:48:09.983619Z", True, True),
        ("2024-12-06T00:48:09Z", True, True),
        ("2025-05-10T08:06:48.639712648-07:00", False, True),
        ("2025-05-10T08:06:48.639712648-07:00", True, False),
        ("2024-12-06T00:48:09.983619+00:00", True, False),
        ("2024-12-06 00:48:09Z", True, False),
        ("1733446089", False, False),
    ],
)
def test_timestamp(value: str, utc: bool, ok: bool) -> None:
    if ok:
        expect.timestamp(value, "t", utc=utc)
    else:
        with pytest.raises(AssertionError, match="t"):
            expect.timestamp(value, "t", utc=utc)


@pytest.mark.parametrize(("value", "ok"), [(5_000_000, True), (5, False), (5.0, False), (True, False), (-1, False)])
def test_duration_ns(value: object, ok: bool) -> None:
    wall = 10_000_000
    if ok:
        expect.duration_ns(value, "d", wall_ns=wall)
    else:
        with pytest.raises(AssertionError, match="d"):
            expect.duration_ns(value, "d", wall_ns=wall)


def test_native_error_single_key() -> None:
    with pytest.raises(AssertionError, match="error body keys"):
        expect.native_error(_resp('{"error":"x","code":1}', "application/json", 400), 400)


def test_openai_error_type() -> None:
    body = '{"error":{"message":"m","type":"api_error","param":null,"code":null}}'
    with pytest.raises(AssertionError, match="expected 'not_found_error', observed 'api_error'"):
        expect.openai_error(_resp(body, "application/json", 404), 404, "not_found_error")


def test_fields_bool_is_not_int() -> None:
    with pytest.raises(AssertionError, match="expected integer, observed True"):
        expect.fields({"n": True}, {"n": int}, "obj")


def test_go_json_escapes() -> None:
    assert expect.go_json({"a": "<b>&"}) == '{"a":"\\u003cb\\u003e\\u0026"}'
