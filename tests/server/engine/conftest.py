"""Fixtures for the engine tests: real GGUF models on the CPU, and a helper that runs a generation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from server.engine import Done, EngineModel, Event, LoadParams, Logprob, SamplingParams, Token

T = TypeVar("T")


@dataclass
class Result:
    """Everything one generation produced."""

    chunks: list[Token] = field(default_factory=list)
    done: Done | None = None

    @property
    def text(self) -> str:
        return "".join(c.text for c in self.chunks)

    @property
    def logprobs(self) -> list[Logprob]:
        return [lp for c in self.chunks for lp in c.logprobs]

    @classmethod
    async def drain(cls, stream: AsyncIterator[Event]) -> Result:
        """Read a generation's events to the end."""
        result = cls()
        async for event in stream:
            if isinstance(event, Token):
                result.chunks.append(event)
            else:
                result.done = event
        assert result.done is not None
        return result


def chatml(user: str) -> str:
    """A one-turn ChatML prompt (smollm2's template)."""
    return f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"


async def collect(model: EngineModel, prompt: str | list[int], **options: Any) -> Result:
    """Run one generation to its end."""
    return await Result.drain(model.generate(prompt, SamplingParams(**options)))


class Kit:
    """Helpers handed to tests as the ``kit`` fixture (test modules cannot import conftest reliably)."""

    chatml = staticmethod(chatml)
    collect = staticmethod(collect)
    Result = Result

    @staticmethod
    def sampling(**options: Any) -> SamplingParams:
        return SamplingParams(**options)

    @staticmethod
    def run(coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run(coro)

    @staticmethod
    def generate(model: EngineModel, prompt: str | list[int], **options: Any) -> Result:
        """Run one generation on a fresh event loop."""
        return asyncio.run(collect(model, prompt, **options))


@pytest.fixture(scope="session")
def kit() -> type[Kit]:
    return Kit


@pytest.fixture(scope="module")
def smollm2(smollm2_path: Path) -> Iterator[EngineModel]:
    """smollm2 with 8 slots of 512 tokens, shared by the tests of a module. One thread: on a busy shared machine
    two spin-waiting threads stall each other badly, one thread just runs slower."""
    model = EngineModel.load(LoadParams(model_path=str(smollm2_path), num_ctx=512, num_parallel=8, num_thread=1))
    yield model
    model.close()
