"""CORS and the Host guard, as units and through a real server."""

from __future__ import annotations

import pytest

from server.http_policy import allowed_origins, host_allowed, is_loopback, origin_allowed


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("http://localhost", True),
        ("http://localhost:3000", True),
        ("https://127.0.0.1:8443", True),
        ("http://0.0.0.0:1", True),
        ("app://obsidian.md", True),
        ("vscode-webview://abc", True),
        ("https://evil.example.com", False),
        ("http://localhost.evil.com", False),
        ("https://myapp.example.com", True),
    ],
)
def test_origins(origin: str, allowed: bool) -> None:
    assert origin_allowed(origin, allowed_origins(["https://myapp.example.com"])) is allowed


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("", True),
        ("localhost:11434", True),
        ("127.0.0.1:11434", True),
        ("[::1]:11434", True),
        ("10.1.2.3", True),
        ("192.168.0.5:80", True),
        ("box.local", True),
        ("api.internal", True),
        ("app.localhost", True),
        ("attacker.example.com", False),
        ("8.8.8.8", False),
    ],
)
def test_hosts(host: str, allowed: bool) -> None:
    assert host_allowed(host) is allowed


def test_loopback_detection() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("") and not is_loopback("0.0.0.0") and not is_loopback("10.0.0.1")


def test_policy_through_a_server(start_server) -> None:
    server = start_server(origins="https://myapp.example.com")
    with server.client() as http:
        ok = http.get("/api/version", headers={"Origin": "http://localhost:3000"})
        assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == "http://localhost:3000"
        assert http.get("/api/version", headers={"Origin": "https://myapp.example.com"}).status_code == 200
        assert http.get("/api/version", headers={"Origin": "https://evil.example.com"}).status_code == 403
        preflight = http.options(
            "/api/chat",
            headers={"Origin": "http://localhost", "Access-Control-Request-Method": "POST"},
        )
        assert preflight.status_code == 204
        assert "POST" in preflight.headers["access-control-allow-methods"]
        assert "x-stainless-lang" in preflight.headers["access-control-allow-headers"]
        assert http.get("/", headers={"Host": "attacker.example.com"}).status_code == 403
        assert "access-control-allow-origin" not in http.get("/").headers


def test_pull_and_push_check_their_input(http) -> None:
    for route in ("/api/pull", "/api/push"):
        assert http.post(route).json() == {"error": "missing request body"}
        assert http.post(route, json={}).json() == {"error": "model is required"}
        assert http.post(route, json={"model": "../x"}).json() == {"error": "invalid model name"}
