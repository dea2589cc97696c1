"""``corral serve``: the HTTP server process, with Corral's logging and its graceful drain.

Signals, as a Kubernetes pod sees them:

- The first SIGTERM (or SIGINT) starts a drain (:meth:`server.lifecycle.Lifecycle.drain`): the server keeps
  listening, ``/readyz`` fails at once so the endpoints controller takes the pod out of its Services, new work gets
  503 with ``Retry-After``, and running requests get up to ``CORRAL_DRAIN_TIMEOUT`` to finish; generations still
  running then end with the dialect's error line. Then the server stops listening, unloads its models (stopping
  their runners) and exits 0.
- A second SIGTERM or SIGINT exits at once: connections are cut, runners end with the process.

The pod's ``terminationGracePeriodSeconds`` must exceed ``CORRAL_DRAIN_TIMEOUT`` plus a few seconds for the
unload (the deployment in ``infra/`` sets it so).
"""

from __future__ import annotations

import asyncio
import logging
from types import FrameType

import uvicorn

from server.app import create_app
from server.lifecycle import ABORT_GRACE_S, Lifecycle
from server.settings import Settings
from server.telemetry.logs import configure_logging

log = logging.getLogger(__name__)


class DrainingServer(uvicorn.Server):
    """uvicorn's server whose first exit signal drains instead of stopping."""

    def __init__(self, config: uvicorn.Config, lifecycle: Lifecycle, drain_timeout: float) -> None:
        super().__init__(config)
        self.lifecycle = lifecycle
        self.drain_timeout = drain_timeout
        self._signalled = False
        self._tasks: set[asyncio.Task[None]] = set()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Runs in the main thread, where the event loop runs. The signal is not recorded for re-raising (uvicorn
        # would end the process with it): a drained exit is 0.
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not serving yet (or any more): nothing to drain
            loop = None
        if self._signalled or loop is None:
            log.warning("exiting now, without draining")
            self.should_exit = True
            self.force_exit = True
            return
        self._signalled = True
        loop.call_soon_threadsafe(self._start_drain)

    def _start_drain(self) -> None:
        self.lifecycle.begin_drain()
        task = asyncio.get_running_loop().create_task(self._drain())
        self._tasks.add(task)

    async def _drain(self) -> None:
        left = await self.lifecycle.drain(self.drain_timeout)
        log.info("drained (%d request(s) ended at the deadline); stopping", left)
        self.should_exit = True


def serve(settings: Settings) -> int:
    """Run the server in the foreground on ``OLLAMA_HOST`` until it is drained."""
    configure_logging(json_lines=settings.log_format == "json", debug=bool(settings.debug))
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host.host or "0.0.0.0",
        port=settings.host.port,
        log_level="debug" if settings.debug else "info",
        access_log=False,  # Corral writes its own request log (server.telemetry.access)
        log_config=None,  # uvicorn's loggers write through configure_logging's handler (JSON lines too)
        timeout_graceful_shutdown=int(ABORT_GRACE_S),
    )
    server = DrainingServer(config, app.state.lifecycle, settings.drain_timeout)
    server.run()
    return 0
