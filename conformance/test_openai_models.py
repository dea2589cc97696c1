"""``GET /v1/models`` and ``GET /v1/models/{model}``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from conformance import expect
from conformance.calls import display_name

pytestmark = pytest.mark.ref("3.4")


@pytest.fixture(scope="module")
def listing(http: httpx.Client) -> dict[str, Any]:
    resp = http.get("/v1/models")
    expect.status(resp, 200)
    body: dict[str, Any] = expect.json_body(resp)
    return body


def _entry(listing: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((m for m in listing.get("data") or [] if m.get("id") == display_name(name)), None)


def test_list_object(listing: dict[str, Any]) -> None:
    expect.equal(listing.get("object"), "list", "object")
    expect.check(isinstance(listing.get("data"), list), "data", "a list", listing.get("data"))


def test_list_contains_model(listing: dict[str, Any], model: str) -> None:
    item = _entry(listing, model)
    expect.check(item is not None, "/v1/models data", f"an id {display_name(model)!r}", listing.get("data"))
    assert item is not None
    expect.fields(item, {"id": str, "object": str, "created": int, "owned_by": str}, "model item")
    expect.equal(item["object"], "model", "item object")


def test_owned_by_library(listing: dict[str, Any], model: str) -> None:
    if "/" in model:
        pytest.skip("the model under test is not in the library namespace")
    expect.equal((_entry(listing, model) or {}).get("owned_by"), "library", "owned_by")


def test_created_matches_modified_at(http: httpx.Client, listing: dict[str, Any], model: str) -> None:
    tags = http.get("/api/tags").json().get("models") or []
    tag: dict[str, Any] = next((m for m in tags if m.get("name") == display_name(model)), {})
    modified = expect.timestamp(tag.get("modified_at"), "/api/tags modified_at")
    created = (_entry(listing, model) or {}).get("created", 0)
    expect.check(abs(created - modified.timestamp()) <= 1, "created", f"the modified_at unix time {modified}", created)


def test_owned_by_namespace(http: httpx.Client, model: str, scratch: Callable[..., str]) -> None:
    name = scratch("confns/")
    expect.status(http.post("/api/copy", json={"source": model, "destination": name}), 200)
    item = _entry(expect.json_body(http.get("/v1/models")), name)
    expect.equal((item or {}).get("owned_by"), "confns", f"owned_by of {name}")


def test_retrieve(http: httpx.Client, model: str) -> None:
    resp = http.get(f"/v1/models/{model}")
    expect.status(resp, 200)
    body = expect.json_body(resp)
    expect.fields(body, {"id": str, "object": str, "created": int, "owned_by": str}, "model")
    expect.equal(body["id"], model, "retrieved id (as requested)")
    expect.equal(body["object"], "model", "object")


def test_retrieve_unknown(http: httpx.Client) -> None:
    expect.openai_error(http.get("/v1/models/conformance-absent"), 404, "not_found_error")


@pytest.mark.optional
def test_retrieve_with_slash_does_not_route(http: httpx.Client) -> None:
    expect.status(http.get("/v1/models/confns/conformance-absent"), 404)
