"""System routes and HTTP policy: ``/``, ``/api/version``, unknown routes and methods, CORS, Host checks."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx
import pytest

from conformance import expect

pytestmark = pytest.mark.ref("0")


def test_root_get(http: httpx.Client) -> None:
    resp = http.get("/")
    expect.status(resp, 200)
    expect.equal(resp.text, "Ollama is running", "GET / body")


def test_root_content_type(http: httpx.Client) -> None:
    expect.media_type(http.get("/"), "text/plain; charset=utf-8", exact=True)


def test_root_head(http: httpx.Client) -> None:
    resp = http.head("/")
    expect.status(resp, 200)
    expect.equal(resp.content, b"", "HEAD / body")


def test_version_get(http: httpx.Client) -> None:
    resp = http.get("/api/version")
    expect.status(resp, 200)
    body = expect.json_body(resp)
    expect.fields(body, {"version": str}, "/api/version")


def test_version_is_dotted(http: httpx.Client) -> None:
    version = expect.json_body(http.get("/api/version")).get("version")
    expect.check(
        isinstance(version, str) and re.match(r"^v?\d+\.\d+\.\d+", version) is not None,
        "/api/version version",
        "a dotted version such as '0.12.3'",
        version,
    )


def test_version_content_type(http: httpx.Client) -> None:
    expect.media_type(http.get("/api/version"), "application/json; charset=utf-8", exact=True)


def test_version_head(http: httpx.Client) -> None:
    expect.status(http.head("/api/version"), 200)


def test_tags_head(http: httpx.Client) -> None:
    expect.status(http.head("/api/tags"), 200)


@pytest.mark.parametrize("path", ["/api/nope", "/v2/models", "/api/generat"])
def test_unknown_route_404(http: httpx.Client, path: str) -> None:
    resp = http.get(path)
    expect.status(resp, 404)
    expect.media_type(resp, "text/plain")
    expect.equal(resp.text, "404 page not found", f"GET {path} body")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/generate"),
        ("GET", "/api/chat"),
        ("POST", "/api/tags"),
        ("GET", "/api/delete"),
        ("PUT", "/api/show"),
    ],
)
def test_wrong_method_405(http: httpx.Client, method: str, path: str) -> None:
    resp = http.request(method, path)
    expect.status(resp, 405)
    expect.equal(resp.text, "405 method not allowed", f"{method} {path} body")


@pytest.mark.ref("7.4")
@pytest.mark.parametrize("origin", ["http://localhost:3000", "http://127.0.0.1", "app://obsidian.md"])
def test_cors_allowed_origin(http: httpx.Client, origin: str) -> None:
    resp = http.get("/api/version", headers={"Origin": origin})
    expect.status(resp, 200)
    allowed = resp.headers.get("access-control-allow-origin")
    expect.check(allowed in (origin, "*"), "Access-Control-Allow-Origin", f"{origin!r} or '*'", allowed)


@pytest.mark.ref("7.4")
def test_cors_preflight_204(http: httpx.Client) -> None:
    resp = http.options(
        "/api/chat",
        headers={
            "Origin": "http://localhost:8080",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    expect.status(resp, 204)
    methods = resp.headers.get("access-control-allow-methods", "")
    expect.check("POST" in methods.upper(), "Access-Control-Allow-Methods", "a list with POST", methods)


@pytest.mark.ref("7.4")
def test_cors_disallowed_origin_403(http: httpx.Client) -> None:
    resp = http.get("/api/version", headers={"Origin": "https://evil.example.com"})
    expect.status(resp, 403)


@pytest.mark.ref("7.4")
def test_no_origin_unaffected(http: httpx.Client) -> None:
    resp = http.get("/api/version")
    expect.status(resp, 200)
    expect.check(
        "access-control-allow-origin" not in resp.headers,
        "Access-Control-Allow-Origin without Origin",
        "absent",
        resp.headers.get("access-control-allow-origin"),
    )


def _loopback(base_url: str) -> bool:
    host = urlsplit(base_url).hostname or ""
    return host in ("127.0.0.1", "localhost", "::1")


@pytest.mark.ref("7.4")
def test_host_guard_rejects_foreign_host(http: httpx.Client, base_url: str) -> None:
    if not _loopback(base_url):
        pytest.skip("the DNS-rebinding guard applies only to servers listening on loopback")
    resp = http.get("/api/version", headers={"Host": "attacker.example.com"})
    expect.status(resp, 403)


@pytest.mark.ref("7.4")
@pytest.mark.parametrize("host", ["localhost", "myapp.localhost", "127.0.0.1", "10.0.0.7", "box.local"])
def test_host_guard_allows_local_names(http: httpx.Client, host: str) -> None:
    resp = http.get("/api/version", headers={"Host": host})
    expect.status(resp, 200)


@pytest.mark.optional
@pytest.mark.ref("1")
def test_status_route(http: httpx.Client) -> None:
    resp = http.get("/api/status")
    expect.status(resp, 200)
    body = expect.json_body(resp)
    expect.fields(body, {"cloud": dict}, "/api/status")
    expect.fields(body["cloud"], {"disabled": bool}, "/api/status cloud")
