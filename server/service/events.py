"""What the inference service yields for a generate or chat request: dialect-neutral events.

A generation is zero or more :class:`Output` events (never an empty one) and then one :class:`Finished`.
Requests that generate nothing answer with exactly one event instead: :class:`ModelLoaded` (an empty prompt
or message list), :class:`ModelUnloaded` (the same with ``keep_alive: 0``) or :class:`Rendered`
(``_debug_render_only``). Errors are not events: they are raised ``ApiError``s, and each dialect's renderer
turns one raised after its stream began into that dialect's last error line.

One renderer per dialect turns these into wire objects (``server.native_render`` for ``/api``,
``server.openai_compat`` for ``/v1``); for ``stream: false`` both render the :class:`Reply` that
:func:`fold` makes of the whole sequence. Nothing here knows a wire format.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import ClassVar

from server.engine.events import Logprob
from server.prompt import ChatToolCall


@dataclass(frozen=True, slots=True)
class Output:
    """A piece of generated output: answer text, reasoning text, parsed tool calls, and (when the request
    asked for them) one log-probability per generated token it covers."""

    content: str = ""
    thinking: str = ""
    tool_calls: tuple[ChatToolCall, ...] = ()
    logprobs: tuple[Logprob, ...] = ()


@dataclass(frozen=True, slots=True)
class Metrics:
    """Ollama's metrics of one generation; durations in nanoseconds."""

    prompt_eval_count: int = 0
    prompt_eval_duration: int = 0
    eval_count: int = 0
    eval_duration: int = 0
    total_duration: int = 0
    load_duration: int = 0


@dataclass(frozen=True, slots=True)
class Finished:
    """The end of a generation: why it stopped (``stop``, ``length``), its metrics, and for ``/api/generate``
    outside raw mode the prompt and output tokens (``context``; ``None`` otherwise)."""

    reason: str
    metrics: Metrics
    context: tuple[int, ...] | None = None


@dataclass(frozen=True, slots=True)
class ModelLoaded:
    """The only event of a request that just loads its model."""

    reason: ClassVar[str] = "load"


@dataclass(frozen=True, slots=True)
class ModelUnloaded:
    """The only event of a request that unloads its model."""

    reason: ClassVar[str] = "unload"


@dataclass(frozen=True, slots=True)
class Rendered:
    """The only event of a ``_debug_render_only`` request: the prompt the model would have seen."""

    prompt: str
    image_count: int


Answer = ModelLoaded | ModelUnloaded | Rendered
"""The single-event answers of requests that generate nothing."""

End = Finished | ModelLoaded | ModelUnloaded
"""The events that end a response with a ``done_reason``."""

Event = Output | Finished | ModelLoaded | ModelUnloaded | Rendered


@dataclass(frozen=True, slots=True)
class Reply:
    """A whole sequence of events folded into one answer (``stream: false``): the outputs joined, and the
    event that ended it (``None`` only when nothing did, which a complete sequence never does)."""

    content: str = ""
    thinking: str = ""
    tool_calls: tuple[ChatToolCall, ...] = ()
    logprobs: tuple[Logprob, ...] = ()
    end: End | Rendered | None = None

    @property
    def done_reason(self) -> str | None:
        """``stop``, ``length``, ``load`` or ``unload``; ``None`` for a debug render."""
        return None if self.end is None or isinstance(self.end, Rendered) else self.end.reason

    @property
    def metrics(self) -> Metrics | None:
        return self.end.metrics if isinstance(self.end, Finished) else None


def reply_of(events: Iterable[Event]) -> Reply:
    """Fold ``events`` into a :class:`Reply`: content, thinking, tool calls and logprobs concatenated in order;
    the last non-output event kept as its end."""
    content: list[str] = []
    thinking: list[str] = []
    calls: list[ChatToolCall] = []
    logprobs: list[Logprob] = []
    end: End | Rendered | None = None
    for event in events:
        if isinstance(event, Output):
            content.append(event.content)
            thinking.append(event.thinking)
            calls += event.tool_calls
            logprobs += event.logprobs
        else:
            end = event
    return Reply("".join(content), "".join(thinking), tuple(calls), tuple(logprobs), end)


async def fold(first: Event, rest: AsyncIterator[Event]) -> Reply:
    """The :class:`Reply` of ``first`` and everything left in ``rest`` (an error raised by ``rest`` propagates)."""
    return reply_of([first] + [event async for event in rest])
