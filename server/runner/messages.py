"""What the API process and a runner process say to each other (pickled dataclasses).

API -> runner: :class:`Load` once, then :class:`Generate`, :class:`Cancel`, :class:`Embed`, :class:`Tokenize`,
:class:`Probe`, and :class:`Shutdown` last. Runner -> API: :class:`Loaded` (or :class:`Failed` with no request id)
once, then the generations' events in :class:`Events` (everything one decode step produced, for every request on
the runner, in one message), and per other request a :class:`Reply` or a :class:`Failed`. Request ids are the
API side's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from server.engine import Event, LoadParams, SamplingParams


@dataclass(frozen=True, slots=True)
class Load:
    params: LoadParams


@dataclass(frozen=True, slots=True)
class Generate:
    rid: int
    tokens: list[int]
    sampling: SamplingParams


@dataclass(frozen=True, slots=True)
class Cancel:
    rid: int


@dataclass(frozen=True, slots=True)
class Embed:
    rid: int
    texts: list[str]
    truncate: bool


@dataclass(frozen=True, slots=True)
class Tokenize:
    rid: int
    text: str
    add_special: bool


@dataclass(frozen=True, slots=True)
class Probe:
    """Ask for the compute thread's :class:`~server.engine.StepStats`; answered by the runner's event loop, never
    queued behind compute, so a runner that does not answer is itself stuck."""

    rid: int


@dataclass(frozen=True, slots=True)
class Shutdown:
    pass


@dataclass(frozen=True, slots=True)
class Facts:
    """What the scheduler and ``/api/ps`` need of a loaded model; fixed once it is loaded."""

    context_length: int
    size_bytes: int
    vram_bytes: int
    num_parallel: int
    embedding_length: int


@dataclass(frozen=True, slots=True)
class Loaded:
    facts: Facts
    pid: int


@dataclass(frozen=True, slots=True)
class Events:
    """Generation events in the order they happened: ``(rid, event)``, or ``(rid, error)`` for a generation that
    failed (its last item)."""

    items: list[tuple[int, Event | BaseException]]


@dataclass(frozen=True, slots=True)
class Reply:
    rid: int
    value: Any


@dataclass(frozen=True, slots=True)
class Failed:
    """A request failed (``rid``), or the load did (``rid`` None). ``error`` is re-raised on the API side."""

    rid: int | None
    error: BaseException


ToRunner = Load | Generate | Cancel | Embed | Tokenize | Probe | Shutdown
FromRunner = Loaded | Events | Reply | Failed
