"""``/openapi.json``: a valid OpenAPI 3.1 document that names every route the app has, with schemas that resolve
(loaded the way schemathesis loads it), served by a real server (behind a key when keys are on)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
import schemathesis
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from server.api.openapi import OPERATIONS, build_document
from server.app import create_app
from server.settings import Settings
from tests.server.conftest import LiveServer


def app_routes() -> set[tuple[str, str]]:
    """(method, path) of every route of a fresh app, through included routers (FastAPI wraps them)."""

    def walk(routes: Sequence[BaseRoute]) -> Iterator[APIRoute]:
        for route in routes:
            if isinstance(route, APIRoute):
                yield route
            elif (included := getattr(route, "original_router", None)) is not None:
                yield from walk(included.routes)

    app = create_app(Settings.from_env({}))
    found = {(method, route.path) for route in walk(app.routes) for method in route.methods}
    assert found, "no routes found: has FastAPI changed how it stores included routers?"
    return found


def test_the_document_names_every_route_of_the_app_and_nothing_else() -> None:
    documented = {(op.method, op.path) for op in OPERATIONS}
    assert documented == app_routes()
    paths = build_document()["paths"]
    assert {(method.upper(), path) for path, item in paths.items() for method in item} == documented


def test_the_document_is_valid_openapi_and_every_operation_resolves() -> None:
    schema = schemathesis.openapi.from_dict(build_document())
    schema.validate()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == len(OPERATIONS)
    for operation in operations:
        for response in operation.responses.iter_successful_responses():
            assert response is not None


def test_validation_catches_a_broken_document() -> None:
    broken: dict[str, Any] = {**build_document(), "paths": {"/api/tags": {"get": {"responses": "none"}}}}
    with pytest.raises(Exception, match="responses"):
        schemathesis.openapi.from_dict(broken).validate()


def test_every_reference_names_a_component() -> None:
    document = build_document()
    names = set(document["components"]["schemas"])

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
            return own + [ref for value in node.values() for ref in refs(value)]
        if isinstance(node, list):
            return [ref for value in node for ref in refs(value)]
        return []

    found = refs(document)
    assert found
    assert {ref.removeprefix("#/components/schemas/") for ref in found} <= names


def test_both_dialects_document_their_own_error_shape() -> None:
    paths = build_document()["paths"]
    native = paths["/api/chat"]["post"]["responses"]["400"]["content"]["application/json"]["schema"]
    openai = paths["/v1/chat/completions"]["post"]["responses"]["400"]["content"]["application/json"]["schema"]
    assert native == {"$ref": "#/components/schemas/ErrorResponse"}
    assert openai == {"$ref": "#/components/schemas/OpenAIErrorResponse"}
    streams = paths["/api/chat"]["post"]["responses"]["200"]["content"]
    assert set(streams) == {"application/json", "application/x-ndjson"}
    assert "text/event-stream" in paths["/v1/chat/completions"]["post"]["responses"]["200"]["content"]


@pytest.mark.slow
def test_a_real_server_serves_the_document(server: LiveServer) -> None:
    with server.client() as client:
        reply = client.get("/openapi.json")
    assert reply.status_code == 200
    assert reply.json() == build_document()


@pytest.mark.slow
def test_with_keys_on_the_document_needs_a_key(start_server: Callable[..., LiveServer]) -> None:
    server = start_server(variables={"CORRAL_API_KEYS": "secret-key"})
    with server.client() as client:
        assert client.get("/openapi.json").status_code == 401
        reply = client.get("/openapi.json", headers={"Authorization": "Bearer secret-key"})
    assert reply.status_code == 200
    assert reply.json()["openapi"] == "3.1.0"


def test_the_document_says_what_the_models_cannot() -> None:
    schemas = build_document()["components"]["schemas"]
    assert schemas["OpenAIChatCompletionRequest"]["required"] == ["model", "messages"]
    assert schemas["OpenAIChatCompletionRequest"]["properties"]["messages"]["minItems"] == 1
    assert {"type": "number"} in schemas["GenerateRequest"]["properties"]["keep_alive"]["anyOf"]
    seed = schemas["OpenAIChatCompletionRequest"]["properties"]["seed"]["anyOf"][0]
    assert seed == {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1}
