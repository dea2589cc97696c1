"""Feature areas of the parity report: one per test module, named after the API surface it checks.

A case's area is derived from its module (``test_chat.py`` -> ``chat``), so a new case needs no extra marker.
"""

from __future__ import annotations

AREAS: dict[str, str] = {
    "system": "system (/, version, CORS)",
    "generate": "generate",
    "chat": "chat",
    "tools": "tools",
    "structured": "structured output",
    "embed": "embeddings",
    "models": "model management",
    "errors": "errors",
    "openai_chat": "OpenAI chat",
    "openai_completions": "OpenAI completions",
    "openai_embeddings": "OpenAI embeddings",
    "openai_models": "OpenAI models",
    "clients": "official clients",
}


def area_of(module_stem: str) -> str:
    """The area key of a test module's file stem (``test_chat`` -> ``chat``)."""
    return module_stem.removeprefix("test_")
