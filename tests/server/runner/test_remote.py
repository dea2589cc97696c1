"""Runner processes: a model served from a child process behaves as the engine does in process, and when the
child dies only its requests fail (smollm2 on the CPU, real processes, real signals)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.engine import Done, EngineModel, LoadParams, SamplingParams, Token
from server.errors import BadRequest, InternalError, InvalidOption, ModelLoadFailed
from server.runner import RemoteModel

pytestmark = pytest.mark.slow

GREEDY = {"temperature": 0, "num_predict": 32, "ignore_eos": True}
PROMPT = "<|im_start|>user\nName three birds.<|im_end|>\n<|im_start|>assistant\n"


def params(path: Path, **extra: Any) -> LoadParams:
    return LoadParams(**{"model_path": str(path), "num_ctx": 256, "num_parallel": 2, "num_thread": 1, **extra})


@pytest.fixture
def remote(smollm2_path: Path) -> Iterator[RemoteModel]:
    model = RemoteModel.load(params(smollm2_path))
    yield model
    model.close()


async def drain(model: Any, tokens: list[int], **options: Any) -> tuple[str, Done]:
    text = ""
    async with model.generate(tokens, SamplingParams(**options)) as events:
        async for event in events:
            if isinstance(event, Token):
                text += event.text
            else:
                return text, event
    raise AssertionError("no Done")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_for(condition: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met"
        time.sleep(0.01)


def test_a_remote_model_answers_exactly_as_the_engine_in_process(remote: RemoteModel, smollm2_path: Path) -> None:
    local = EngineModel.load(params(smollm2_path))
    try:
        tokens = local.tokenize(PROMPT)
        expected = asyncio.run(drain(local, tokens, **GREEDY))
        vectors, count = asyncio.run(local.embed(["a cat", "a dog"]))
    finally:
        local.close()
    assert remote.tokenize(PROMPT) == tokens
    text, done = asyncio.run(drain(remote, tokens, **GREEDY))
    assert text == expected[0] and done.eval_count == expected[1].eval_count == 32
    assert asyncio.run(remote.embed(["a cat", "a dog"])) == (vectors, count)
    assert remote.context_length == 256 and remote.size_bytes > 0 and remote.alive


def test_request_errors_come_back_typed(remote: RemoteModel) -> None:
    with pytest.raises(BadRequest, match="invalid token id"):
        asyncio.run(drain(remote, [99_999_999], **GREEDY))
    with pytest.raises(InvalidOption):
        asyncio.run(drain(remote, remote.tokenize(PROMPT), mirostat=7))
    assert remote.alive  # errors are the request's, not the runner's


def test_a_killed_runner_fails_its_requests_clearly(remote: RemoteModel) -> None:
    tokens = remote.tokenize(PROMPT)

    async def scenario() -> BaseException:
        stream = remote.generate(tokens, SamplingParams(temperature=0, num_predict=10_000, ignore_eos=True))
        assert isinstance(await anext(stream), Token)
        os.kill(remote.pid, signal.SIGKILL)
        try:
            async for _ in stream:
                pass
        except InternalError as exc:
            return exc
        raise AssertionError("the stream ended without an error")

    error = asyncio.run(scenario())
    assert "killed by SIGKILL" in str(error)
    wait_for(lambda: not remote.alive)
    with pytest.raises(InternalError, match="stopped unexpectedly"):
        remote.tokenize("hello")


def test_a_cancelled_generation_frees_its_slot_in_the_runner(remote: RemoteModel) -> None:
    tokens = remote.tokenize(PROMPT)

    async def scenario() -> None:
        stream = remote.generate(tokens, SamplingParams(temperature=0, num_predict=10_000, ignore_eos=True))
        await anext(stream)
        await stream.aclose()
        # Both slots are usable again: two more requests finish.
        results = await asyncio.gather(drain(remote, tokens, **GREEDY), drain(remote, tokens, **GREEDY))
        assert results[0][0] == results[1][0]

    asyncio.run(asyncio.wait_for(scenario(), 120))


def test_load_errors_are_the_engines(smollm2_path: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a model at all")
    with pytest.raises(ModelLoadFailed):
        RemoteModel.load(params(junk))
    with pytest.raises(InvalidOption):
        RemoteModel.load(params(smollm2_path, num_ctx=1))


def test_close_stops_the_process_and_an_orphaned_runner_exits(smollm2_path: Path) -> None:
    model = RemoteModel.load(params(smollm2_path))
    pid = model.pid
    model.close()
    assert not pid_alive(pid)
    orphan = RemoteModel.load(params(smollm2_path))
    # What the runner sees when the API process dies: its end of the socket pair is shut down.
    peer = socket.socket(fileno=os.dup(orphan._conn.fileno()))
    peer.shutdown(socket.SHUT_RDWR)
    peer.close()
    wait_for(lambda: orphan._process.poll() is not None)
    assert not pid_alive(orphan.pid)


def test_concurrent_generations_each_get_their_alone_output(remote: RemoteModel) -> None:
    """Both slots decode in the same steps, so their events share messages; each stream still gets exactly its
    own tokens, in order."""
    prompts = [PROMPT, PROMPT.replace("three birds", "two rivers")]
    tokens = [remote.tokenize(p) for p in prompts]
    alone = [asyncio.run(drain(remote, t, **GREEDY))[0] for t in tokens]

    async def together() -> list[tuple[str, Done]]:
        return list(await asyncio.gather(*(drain(remote, t, **GREEDY) for t in tokens)))

    results = asyncio.run(asyncio.wait_for(together(), 120))
    assert [text for text, _ in results] == alone and alone[0] != alone[1]
    assert all(done.eval_count == 32 for _, done in results)
