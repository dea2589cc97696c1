"""Watching the client while a request works: a client that goes away cancels its request.

A streaming response notices a gone client when it next writes; a non-streaming one writes nothing until the
end, so without a watch a client that disconnects (a timeout, a cancelled job, the OpenAI SDK's default
non-streaming call) would keep its slot decoding for nobody. :func:`while_connected` runs the work and the
watch side by side: whichever ends first decides. Cancelling the work cancels the engine request at its next
decode step and releases the model lease, through the ``finally`` blocks of the service generators.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TypeVar

from starlette.requests import Request

from server.errors import RequestCanceled

T = TypeVar("T")


async def while_connected(request: Request, work: Awaitable[T]) -> T:
    """Await ``work`` unless the client disconnects first; then ``work`` is cancelled and RequestCanceled is
    raised. Call it after the request body was read (the ASGI channel then carries only the disconnect)."""
    task = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        raise RequestCanceled("client disconnected")
    finally:
        watch.cancel()
        task.cancel()


async def _disconnected(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return
