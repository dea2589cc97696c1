from __future__ import annotations

import httpx

from server import __version__


def test_root_get_and_head(http: httpx.Client) -> None:
    response = http.get("/")
    assert (response.status_code, response.text) == (200, "Ollama is running")
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert http.head("/").status_code == 200


def test_version(http: httpx.Client) -> None:
    assert http.get("/api/version").json() == {"version": __version__}


def test_unknown_route_and_wrong_method_are_plain_text(http: httpx.Client) -> None:
    missing = http.get("/api/nothing")
    assert (missing.status_code, missing.text) == (404, "404 page not found")
    wrong = http.get("/api/show")
    assert (wrong.status_code, wrong.text) == (405, "405 method not allowed")


def test_status_reports_no_cloud(http: httpx.Client) -> None:
    assert http.get("/api/status").json() == {"cloud": {"disabled": True, "source": "default"}}
