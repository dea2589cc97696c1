"""What a generation yields: text chunks (:class:`Token`) and one final :class:`Done`.

Events are immutable values made on the decode thread and read on the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

DoneReason = Literal["stop", "length"]


@dataclass(frozen=True, slots=True)
class TopLogprob:
    """One alternative at a position: the token's text, raw bytes and log-probability."""

    token: str
    token_id: int
    logprob: float
    bytes: bytes


@dataclass(frozen=True, slots=True)
class Logprob:
    """The log-probability of a generated token under the model (before sampling filters), with the best
    ``top_logprobs`` alternatives, most likely first."""

    token: str
    token_id: int
    logprob: float
    bytes: bytes
    top_logprobs: tuple[TopLogprob, ...] = ()


@dataclass(frozen=True, slots=True)
class Token:
    """A chunk of output text.

    ``text`` is complete UTF-8 and never contains (a part of) a stop sequence; it may cover several tokens when
    text was held back (an incomplete character, or the possible start of a stop sequence). ``token_ids`` are the
    tokens it covers; ``logprobs`` has one entry per token when the request asked for logprobs, else is empty.
    """

    text: str
    token_ids: tuple[int, ...]
    logprobs: tuple[Logprob, ...] = ()

    @property
    def token_id(self) -> int:
        """The last token of the chunk."""
        return self.token_ids[-1]


@dataclass(frozen=True, slots=True)
class Done:
    """The end of a generation. Always the last event.

    ``prompt_eval_count`` counts the prompt tokens actually evaluated (a reused prefix is not counted), as Ollama
    reports it; ``eval_count`` counts sampled tokens. Durations are nanoseconds: prompt evaluation runs from the
    request's first decode step to its first sampled token, evaluation from there to the end. ``context`` is the
    prompt (after any truncation) followed by the generated tokens, without the end-of-generation token;
    ``prompt_tokens`` is that prompt's length (evaluated, or reused from the prefix cache).
    """

    done_reason: DoneReason
    prompt_eval_count: int
    prompt_eval_duration_ns: int
    eval_count: int
    eval_duration_ns: int
    context: tuple[int, ...]
    truncated: bool = False
    prompt_tokens: int = 0


Event = Token | Done
