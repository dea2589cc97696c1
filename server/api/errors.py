"""Errors on the wire, rendered in one place: ``{"error": "..."}`` on the native API, OpenAI's error object under
``/v1/``, with the error's own headers (``Retry-After``, ``WWW-Authenticate``). Used by the exception handlers
and by the middlewares that answer before a route runs (API keys, drain)."""

from __future__ import annotations

from starlette.responses import Response

from server.errors import ApiError
from server.protocol.base import GoJSONResponse

from .openai import error_response as openai_error_response


def render_error(path: str, exc: ApiError) -> Response:
    if path.startswith("/v1/"):
        response = openai_error_response(exc)
    else:
        response = GoJSONResponse({"error": exc.message}, status_code=exc.status_code)
    response.headers.update(exc.headers)
    return response
