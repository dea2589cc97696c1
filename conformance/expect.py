"""Shape checks written from the reference, not from any server's models.

Every check raises ``AssertionError`` whose message reads ``<what>: expected <x>, observed <y>``; the parity
report quotes that first line, so a reviewer sees the difference without opening a traceback.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import httpx

_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?P<frac>\.\d{1,9})?(?P<zone>Z|[+-]\d{2}:\d{2})$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")
_OBSERVED_LIMIT = 240

Spec = type | tuple[type, ...]


def show(value: object) -> str:
    """A short ``repr`` for messages: long bodies are cut so a report row stays readable."""
    text = repr(value)
    return text if len(text) <= _OBSERVED_LIMIT else text[: _OBSERVED_LIMIT - 3] + "..."


def check(condition: bool, what: str, expected: object, observed: object) -> None:
    """Fail with ``what: expected ..., observed ...`` unless ``condition`` holds.

    ``expected`` is written as given when it is a string (a description), else as its ``repr``.
    """
    __tracebackhide__ = True
    if not condition:
        wanted = expected if isinstance(expected, str) else show(expected)
        raise AssertionError(f"{what}: expected {wanted}, observed {show(observed)}")


def equal(observed: object, expected: object, what: str) -> None:
    """Fail unless ``observed == expected``."""
    __tracebackhide__ = True
    check(observed == expected, what, show(expected), observed)


def status(resp: httpx.Response, expected: int | Iterable[int]) -> None:
    """The HTTP status is ``expected`` (or one of them); the message carries the body for context."""
    __tracebackhide__ = True
    allowed = {expected} if isinstance(expected, int) else set(expected)
    if resp.status_code not in allowed:
        wanted = " or ".join(str(s) for s in sorted(allowed))
        raise AssertionError(
            f"{resp.request.method} {resp.request.url.path} status: expected {wanted}, "
            f"observed {resp.status_code} with body {show(_body_text(resp))}"
        )


def media_type(resp: httpx.Response, expected: str, *, exact: bool = False) -> None:
    """The ``Content-Type`` media type is ``expected``; with ``exact`` the whole header must match."""
    __tracebackhide__ = True
    header = resp.headers.get("content-type", "")
    observed = header if exact else header.split(";", 1)[0].strip()
    equal(observed.lower(), expected.lower(), f"{resp.request.url.path} Content-Type")


def json_body(resp: httpx.Response) -> Any:
    """The body parsed as JSON; a body that is not JSON fails with its text."""
    __tracebackhide__ = True
    try:
        return resp.json()
    except ValueError:
        raise AssertionError(
            f"{resp.request.url.path} body: expected JSON, observed {show(_body_text(resp))}"
        ) from None


def native_error(resp: httpx.Response, code: int, text: str | None = None, *, prefix: str | None = None) -> str:
    """A native error: status ``code``, JSON ``{"error": "<text>"}`` with exactly one key. Returns the text.

    ``text`` demands the exact message; ``prefix`` only its start.
    """
    __tracebackhide__ = True
    status(resp, code)
    media_type(resp, "application/json")
    body = json_body(resp)
    check(isinstance(body, dict) and set(body) == {"error"}, "error body keys", "{'error'} only", body)
    message = body["error"]
    check(isinstance(message, str), "error message type", "str", message)
    if text is not None:
        equal(message, text, "error message")
    if prefix is not None:
        check(message.startswith(prefix), "error message", f"text starting with {prefix!r}", message)
    return str(message)


def openai_error(resp: httpx.Response, code: int, kind: str, message: str | None = None) -> dict[str, Any]:
    """An OpenAI-dialect error: status ``code`` and ``{"error": {"message","type","param","code"}}``."""
    __tracebackhide__ = True
    status(resp, code)
    body = json_body(resp)
    check(isinstance(body, dict) and isinstance(body.get("error"), dict), "OpenAI error body", "{'error': {...}}", body)
    error: dict[str, Any] = body["error"]
    check({"message", "type"} <= set(error), "OpenAI error keys", "message and type", sorted(error))
    equal(error["type"], kind, "OpenAI error type")
    check(isinstance(error["message"], str), "OpenAI error message type", "str", error["message"])
    if message is not None:
        equal(error["message"], message, "OpenAI error message")
    return error


def ndjson(resp: httpx.Response) -> list[dict[str, Any]]:
    """Parse an NDJSON stream: ``application/x-ndjson``, one JSON object per ``\\n``-terminated line, no blanks."""
    __tracebackhide__ = True
    status(resp, 200)
    media_type(resp, "application/x-ndjson")
    text = resp.text
    check(text.endswith("\n"), "NDJSON stream end", "a final '\\n'", text[-40:])
    objects: list[dict[str, Any]] = []
    for number, line in enumerate(text.split("\n")[:-1], start=1):
        check(line.strip() != "", f"NDJSON line {number}", "a JSON object", "a blank line")
        check(not line.startswith("data:"), f"NDJSON line {number}", "bare JSON (no SSE 'data:' prefix)", line)
        try:
            value = json.loads(line)
        except ValueError:
            raise AssertionError(f"NDJSON line {number}: expected a JSON object, observed {show(line)}") from None
        check(isinstance(value, dict), f"NDJSON line {number}", "a JSON object", value)
        objects.append(value)
    check(bool(objects), "NDJSON stream", "at least one line", text)
    return objects


def sse(resp: httpx.Response) -> list[dict[str, Any]]:
    """Parse an OpenAI SSE stream: ``text/event-stream``, ``data: <json>\\n\\n`` events ending in ``data: [DONE]``."""
    __tracebackhide__ = True
    status(resp, 200)
    media_type(resp, "text/event-stream")
    text = resp.text.replace("\r\n", "\n")
    check(text.endswith("\n\n"), "SSE stream end", "a blank line after the last event", text[-40:])
    payloads: list[str] = []
    for block in text.split("\n\n")[:-1]:
        data = [line for line in block.split("\n") if not line.startswith(":")]
        if not data:
            continue
        for line in data:
            check(line.startswith("data: "), "SSE event line", "'data: ' prefix", line)
        payloads.append("\n".join(line[len("data: ") :] for line in data))
    check(bool(payloads), "SSE stream", "at least one event", text)
    check(payloads[-1] == "[DONE]", "SSE stream terminator", "last event 'data: [DONE]'", payloads[-1])
    check(payloads.count("[DONE]") == 1, "SSE stream", "exactly one [DONE]", payloads.count("[DONE]"))
    chunks: list[dict[str, Any]] = []
    for payload in payloads[:-1]:
        try:
            value = json.loads(payload)
        except ValueError:
            raise AssertionError(f"SSE event data: expected JSON, observed {show(payload)}") from None
        check(isinstance(value, dict), "SSE event data", "a JSON object", value)
        chunks.append(value)
    return chunks


def fields(obj: Mapping[str, Any], spec: Mapping[str, Spec], where: str) -> None:
    """Every key of ``spec`` is present in ``obj`` with the given JSON type.

    ``int`` means an integer (not a bool, not a float); ``float`` means any JSON number.
    """
    __tracebackhide__ = True
    check(isinstance(obj, Mapping), where, "a JSON object", obj)
    for key, kind in spec.items():
        check(key in obj, f"{where} key {key!r}", "present", sorted(obj))
        check(is_type(obj[key], kind), f"{where}.{key} type", _type_name(kind), obj[key])


def is_type(value: object, kind: Spec) -> bool:
    """JSON-aware ``isinstance``: bools are not numbers, ints count as floats."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    for k in kinds:
        if k is type(None) and value is None:
            return True
        if k is bool and isinstance(value, bool):
            return True
        if k is int and isinstance(value, int) and not isinstance(value, bool):
            return True
        if k is float and isinstance(value, int | float) and not isinstance(value, bool):
            return True
        if k not in (bool, int, float, type(None)) and isinstance(value, k):
            return True
    return False


def _type_name(kind: Spec) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {str: "string", int: "integer", float: "number", bool: "boolean", list: "array", dict: "object"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def timestamp(value: object, where: str, *, utc: bool = False) -> datetime:
    """An RFC 3339 timestamp with up to nanosecond precision (``Z`` only when ``utc``). Returns it parsed."""
    __tracebackhide__ = True
    form = "RFC 3339 UTC timestamp ending in 'Z'" if utc else "RFC 3339 timestamp with offset"
    check(isinstance(value, str), f"{where} type", "string", value)
    match = _TIMESTAMP.match(str(value))
    check(match is not None, where, form, value)
    assert match is not None
    if utc:
        check(match["zone"] == "Z", where, form, value)
    frac = (match["frac"] or "")[:7]
    base = str(value)[: match.start("frac")] if match["frac"] else str(value)[: match.start("zone")]
    zone = "+00:00" if match["zone"] == "Z" else match["zone"]
    return datetime.fromisoformat(base + frac + zone)


def trimmed_fraction(value: str, where: str) -> None:
    """Go's RFC3339Nano drops trailing zeros of the fraction (``.5Z``, never ``.500000Z``)."""
    __tracebackhide__ = True
    match = _TIMESTAMP.match(value)
    frac = match["frac"] if match else None
    check(not frac or not frac.endswith("0"), where, "fraction without trailing zeros (Go RFC3339Nano)", value)


def duration_ns(value: object, where: str, *, wall_ns: int | None = None) -> int:
    """A duration in integer nanoseconds; with ``wall_ns`` (the client-side time of the request) it must be
    plausible: not above the wall time (plus 50 ms slack), not below 1/100 of it (milli- or microseconds)."""
    __tracebackhide__ = True
    check(is_type(value, int), f"{where} type", "integer nanoseconds", value)
    assert isinstance(value, int)
    number = value
    check(number >= 0, where, "a non-negative duration", number)
    if wall_ns is not None:
        check(
            wall_ns // 100 <= number <= wall_ns + 50_000_000,
            where,
            f"nanoseconds consistent with the request's wall time of {wall_ns} ns",
            number,
        )
    return number


def unit_norm(vector: Sequence[float], where: str, *, tolerance: float = 1e-3) -> None:
    """The vector has L2 norm 1 (within ``tolerance``)."""
    __tracebackhide__ = True
    norm = math.sqrt(sum(x * x for x in vector))
    check(abs(norm - 1.0) <= tolerance, f"{where} L2 norm", "1.0", round(norm, 6))


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity of two equal-length vectors."""
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


def go_json(value: Any) -> str:
    """``value`` as Go's ``encoding/json`` writes it: compact, ``<``, ``>``, ``&`` escaped, key order kept."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def key_order(obj: Mapping[str, Any], order: Sequence[str], where: str) -> None:
    """The keys of ``obj`` that appear in ``order`` come in that relative order."""
    __tracebackhide__ = True
    seen = [k for k in obj if k in order]
    wanted = [k for k in order if k in obj]
    equal(seen, wanted, f"{where} key order")


def _body_text(resp: httpx.Response) -> str:
    try:
        return resp.text
    except (httpx.ResponseNotRead, UnicodeDecodeError):
        return "<unreadable body>"
