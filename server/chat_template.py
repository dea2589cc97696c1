"""GGUF chat templates: the Jinja ``tokenizer.chat_template`` a model carries, rendered in a sandbox.

Used when a model has no Modelfile TEMPLATE (reference §6.5: fall back to the GGUF template). The environment
follows the conventions chat templates are written for (Hugging Face ``apply_chat_template``): blocks trimmed
(``trim_blocks``/``lstrip_blocks``), ``break``/``continue`` available, ``tojson`` that keeps non-ASCII text as
is, and the globals ``raise_exception(message)`` and ``strftime_now(format)``. The sandbox is immutable: a
template cannot reach Python internals or mutate the data it is given.

    template = ChatTemplate(source)
    template.render([{"role": "user", "content": "hi"}], add_generation_prompt=True)
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, NoReturn

import jinja2
import jinja2.sandbox

from server.errors import TemplateError

__all__ = ["ChatTemplate"]


def _raise_exception(message: object) -> NoReturn:
    raise TemplateError(f"chat template: {message}")


def _strftime_now(format: str) -> str:
    return datetime.now().strftime(format)


def _tojson(
    value: object,
    indent: int | None = None,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
    ensure_ascii: bool = False,
) -> str:
    # Jinja's own ``tojson`` HTML-escapes ``<>&'``, which would corrupt tool schemas inside prompts.
    return json.dumps(value, indent=indent, separators=separators, sort_keys=sort_keys, ensure_ascii=ensure_ascii)


def _environment() -> jinja2.sandbox.ImmutableSandboxedEnvironment:
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
    )
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    return env


class ChatTemplate:
    """A compiled Jinja chat template. Immutable after construction; safe to share between requests.

    Construction raises ``TemplateError`` when the source does not compile.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        try:
            self._template = _environment().from_string(source)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(f"chat template: line {exc.lineno}: {exc.message}") from exc

    def render(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
        add_generation_prompt: bool = True,
        bos_token: str = "",
        eos_token: str = "",
    ) -> str:
        """Render ``messages`` (JSON-shaped dicts with at least ``role`` and ``content``).

        ``tools`` is passed as ``None`` when empty, as templates test ``{% if tools %}`` or ``tools is not none``.
        Any failure while rendering, including ``raise_exception`` from the template, raises ``TemplateError``.
        """
        try:
            return self._template.render(
                messages=list(messages),
                tools=list(tools) if tools else None,
                add_generation_prompt=add_generation_prompt,
                bos_token=bos_token,
                eos_token=eos_token,
            )
        except TemplateError:
            raise
        # A model's template is arbitrary code: a bad one can fail with any Python error (TypeError on
        # None + str, KeyError, ...). All of them mean "this template cannot render this request".
        except Exception as exc:
            raise TemplateError(f"chat template: {type(exc).__name__}: {exc}") from exc
