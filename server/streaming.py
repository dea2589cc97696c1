"""Streams: blocking work with progress run in a thread, and NDJSON responses with Ollama's error framing.

An error raised before the first item gets a real status code (the exception handler renders it); an error
after the stream began becomes one last ``{"error": "..."}`` line and the stream ends with status 200, as
Ollama does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from server.disconnect import while_connected
from server.errors import ApiError
from server.native_render import NativeRenderer
from server.protocol.base import GoJSONResponse, WireModel, ndjson_line
from server.service.events import Answer, Event, Reply, fold

log = logging.getLogger(__name__)

T = TypeVar("T")
NDJSON = "application/x-ndjson"


async def run_with_progress(work: Callable[[Callable[[T], None]], object]) -> AsyncIterator[T]:
    """Run ``work(report)`` in a worker thread and yield each reported item as it arrives. Exceptions from
    ``work`` are re-raised in the consumer; its return value is discarded."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, object]] = asyncio.Queue()

    def report(item: T) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, ("item", item))

    def run() -> None:
        try:
            work(report)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            loop.call_soon_threadsafe(queue.put_nowait, ("error", exc))
        else:
            loop.call_soon_threadsafe(queue.put_nowait, ("done", None))

    task = loop.run_in_executor(None, run)
    try:
        while True:
            kind, value = await queue.get()
            if kind == "item":
                yield value  # type: ignore[misc]
            elif kind == "error":
                assert isinstance(value, BaseException)
                raise value
            else:
                return
    finally:
        await asyncio.shield(task)


async def progress_response(items: AsyncIterator[WireModel], *, stream: bool) -> Response:
    """Respond with an NDJSON stream of ``items`` or, with ``stream=False``, only the last item.

    Errors before the first item propagate (real status); later ones become a final error line.
    """
    if not stream:
        last: WireModel | None = None
        async for item in items:
            last = item
        return GoJSONResponse(last if last is not None else {})
    return ndjson_response(await anext(items), items)


def ndjson_response(first: WireModel, rest: AsyncIterator[WireModel]) -> StreamingResponse:
    """Stream ``first`` then ``rest`` as NDJSON; an error after the first line becomes a last
    ``{"error": ...}`` line (the status is already 200), as Ollama does."""

    async def body() -> AsyncIterator[bytes]:
        yield ndjson_line(first)
        try:
            async for item in rest:
                yield ndjson_line(item)
        except ApiError as exc:
            yield ndjson_line({"error": exc.message})
        except Exception as exc:
            log.exception("stream failed")
            yield ndjson_line({"error": str(exc)})

    return StreamingResponse(body(), media_type=NDJSON)


async def inference_response(
    request: Request, events: AsyncIterator[Event], render: NativeRenderer, *, stream: bool
) -> Response:
    """Respond to generate/chat: ``render``ed NDJSON chunks, or (``stream=False``) one object with the output
    joined (:func:`server.service.events.fold`).

    Load, unload and debug-render answers are a single JSON object even when streaming, as Ollama sends them.
    Until the response starts, a client that disconnects cancels the request (see ``server.disconnect``).
    """
    first = await first_item(request, events)
    if isinstance(first, Answer):
        await _aclose(events)
        return GoJSONResponse(render.whole(Reply(end=first)))
    if not stream:
        return GoJSONResponse(render.whole(await while_connected(request, fold(first, events))))

    async def chunks() -> AsyncIterator[WireModel]:
        try:
            async for event in events:
                yield render.chunk(event)
        finally:
            await _aclose(events)

    return ndjson_response(render.chunk(first), chunks())


async def first_item(request: Request, items: AsyncIterator[T]) -> T:
    """The first item of ``items`` (errors before it get a real status), cancelled if the client goes away
    while the model loads, the request queues or the prompt is evaluated."""
    try:
        return await while_connected(request, anext(items))
    except BaseException:
        await _aclose(items)
        raise


async def _aclose(items: AsyncIterator[T]) -> None:
    close = getattr(items, "aclose", None)
    if close is not None:
        await close()


def sse_event(item: WireModel | dict[str, object]) -> bytes:
    """One server-sent event for ``/v1`` streams: ``data: <compact Go-style JSON>`` and a blank line."""
    return b"data: " + ndjson_line(item) + b"\n"


def sse_done() -> bytes:
    """The event that ends an OpenAI-style stream."""
    return b"data: [DONE]\n\n"
