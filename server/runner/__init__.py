"""Model runners: every loaded model lives in a child process the API process supervises.

llama.cpp can end a process (a ``GGML_ASSERT`` is an ``abort()``), whatever the input checks before it. So the
API process never calls it: the scheduler's loader starts one runner process per loaded model
(``python -m server.runner``), as Ollama runs a runner per model. The runner loads an
:class:`~server.engine.EngineModel` and serves it over a socket pair; the API side holds a
:class:`RemoteModel` with the same interface (``tokenize``, ``generate``, ``embed``, ``close``).

If a runner dies (a crash, an abort, ``kill -9``), only the requests on it fail, each with a clear error; the
scheduler drops the dead runner and the next request for that model starts a fresh one.

Messages are the dataclasses in :mod:`server.runner.messages`, pickled over
:class:`multiprocessing.connection.Connection`: both ends are this package, of the same version.
"""

from __future__ import annotations

from typing import Protocol

from server.engine import EventStream, SamplingParams, StepStats
from server.scheduler import Runner

from .remote import RemoteModel

__all__ = ["ModelRunner", "RemoteModel"]


class ModelRunner(Runner, Protocol):
    """What the inference service uses of a loaded model (besides what the scheduler needs of any runner): a
    :class:`RemoteModel`, or an in-process :class:`~server.engine.EngineModel` (benchmarks, and tests that need
    the engine's seams)."""

    @property
    def num_parallel(self) -> int: ...

    def tokenize(self, text: str, *, add_special: bool = True) -> list[int]: ...

    def generate(self, tokens: list[int], sampling: SamplingParams) -> EventStream: ...

    async def embed(self, texts: list[str], truncate: bool = True) -> tuple[list[list[float]], int]: ...

    async def step_stats(self) -> StepStats: ...
