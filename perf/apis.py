"""The serving APIs a load test can drive: path, dialect and where a chunk carries its text.

Names are what users pass to ``--api`` and what records and Locust rows carry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Chunk = dict[str, Any]


def _native_chat_text(chunk: Chunk) -> str:
    message = chunk.get("message") or {}
    return str(message.get("content") or "") + str(message.get("thinking") or "")


def _native_generate_text(chunk: Chunk) -> str:
    return str(chunk.get("response") or "") + str(chunk.get("thinking") or "")


def _openai_chat_text(chunk: Chunk) -> str:
    text = ""
    for choice in chunk.get("choices") or []:
        part = choice.get("delta") or choice.get("message") or {}
        text += str(part.get("content") or "") + str(part.get("reasoning_content") or part.get("reasoning") or "")
    return text


def _openai_completion_text(chunk: Chunk) -> str:
    return "".join(str(choice.get("text") or "") for choice in chunk.get("choices") or [])


def _no_text(chunk: Chunk) -> str:
    return ""


@dataclass(frozen=True)
class Api:
    """One endpoint: ``dialect`` is ``native`` (NDJSON streams ending in ``"done": true``) or ``openai`` (SSE
    streams ending in ``data: [DONE]``); ``text`` pulls the generated text out of one chunk or response."""

    name: str
    path: str
    dialect: str
    text: Callable[[Chunk], str]
    generates: bool = True


APIS: dict[str, Api] = {
    api.name: api
    for api in (
        Api("chat", "/api/chat", "native", _native_chat_text),
        Api("generate", "/api/generate", "native", _native_generate_text),
        Api("openai-chat", "/v1/chat/completions", "openai", _openai_chat_text),
        Api("openai-completions", "/v1/completions", "openai", _openai_completion_text),
        Api("embed", "/api/embed", "native", _no_text, generates=False),
    )
}

DEFAULT_API = {"native": "chat", "openai": "openai-chat"}


def api_named(name: str) -> Api:
    """The API called ``name``; ``native``/``openai`` stand for their chat endpoint. Raises ValueError."""
    key = DEFAULT_API.get(name, name)
    if key not in APIS:
        known = ", ".join([*DEFAULT_API, *APIS])
        raise ValueError(f"unknown API {name!r}; use one of: {known}")
    return APIS[key]
