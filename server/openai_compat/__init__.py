"""Pure conversions for the OpenAI-compatible API (``/v1/*``): requests to native ones, events to responses.

``/v1`` routes convert a request to the native one with a ``from_*`` function, run the same service code as
``/api`` and render the dialect-neutral events it yields (:mod:`server.service.events`) with a ``to_*``
function (a folded ``stream: false`` reply) or a ``*Stream`` (SSE chunks); native response objects are never
parsed back. Nothing here does I/O; invalid requests raise ``BadRequest`` with Ollama's texts (reference §3).

Where Corral goes beyond Ollama's shim (which ignores them) the choices are:

* ``n``: absent or 1; anything else is a 400, since only one choice is ever produced.
* ``max_completion_tokens``: like ``max_tokens`` (→ ``num_predict``); it wins when both are sent.
* ``tool_choice``: ``"auto"`` (or absent) sends the tools as given; ``"none"`` sends no tools, so the model
  answers in text; ``"required"`` sends the tools as given (there is no way to force a call without a
  grammar, so it is best effort); ``{"type": "function", "function": {"name": N}}`` sends only tool ``N``
  (400 when the request has no such tool). Nothing is added to the prompt in any case.
* ``think`` is accepted as an Ollama extension next to ``reasoning_effort``/``reasoning.effort`` (which win),
  and so are ``keep_alive`` and ``_debug_render_only``.
* ``/v1/completions``: ``prompt`` may be a list holding one string; ``echo`` prepends the prompt to the text;
  ``logprobs`` come back in OpenAI's legacy shape (``tokens``, ``token_logprobs``, ``top_logprobs``,
  ``text_offset``).
"""

from __future__ import annotations

from .chat import from_chat_completion_request
from .chat_render import ChatCompletionStream, finish_chunk, to_chat_completion, to_chat_completion_chunks
from .common import chat_completion_id, completion_id, to_error, to_usage, unix_time
from .completions import CompletionStream, completion_prompt, from_completion_request, to_completion
from .embeddings import embedding_base64, from_embedding_request, to_embedding_list
from .models import to_model, to_model_list

__all__ = [
    "ChatCompletionStream",
    "CompletionStream",
    "chat_completion_id",
    "completion_id",
    "completion_prompt",
    "embedding_base64",
    "finish_chunk",
    "from_chat_completion_request",
    "from_completion_request",
    "from_embedding_request",
    "to_chat_completion",
    "to_chat_completion_chunks",
    "to_completion",
    "to_embedding_list",
    "to_error",
    "to_model",
    "to_model_list",
    "to_usage",
    "unix_time",
]
