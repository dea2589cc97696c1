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

from starlette.responses import Response, StreamingResponse

from server.errors import ApiError
from server.protocol.base import GoJSONResponse, WireModel, ndjson_line

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


async def progress_response(
    items: AsyncIterator[WireModel], *, stream: bool, final: Callable[[], WireModel] | None = None
) -> Response:
    """Respond with an NDJSON stream of ``items`` or, with ``stream=False``, only the last item.

    Errors before the first item propagate (real status); later ones become a final error line.
    """
    if not stream:
        last: WireModel | None = None
        async for item in items:
            last = item
        return GoJSONResponse(last if last is not None else (final() if final else {}))
    first = await anext(items)

    async def body() -> AsyncIterator[bytes]:
        yield ndjson_line(first)
        try:
            async for item in items:
                yield ndjson_line(item)
        except ApiError as exc:
            yield ndjson_line({"error": exc.message})
        except Exception as exc:
            log.exception("stream failed")
            yield ndjson_line({"error": str(exc)})

    return StreamingResponse(body(), media_type=NDJSON)
