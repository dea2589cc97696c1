"""One request's failure stays its own: bad token ids are refused before queueing, a batch that llama.cpp
rejects is retried per sequence, and a step that raises fails only the requests in it (smollm2 on the CPU).

Faults are injected at the llama.cpp call boundary (``EngineModel.wrap_decode``), the rest is the real engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.engine import DecodeFn, EngineModel, LoadParams, Token
from server.errors import BadRequest, InternalError

pytestmark = pytest.mark.slow

VICTIM = {"temperature": 0, "num_predict": 40, "ignore_eos": True}


@pytest.fixture
def model(smollm2_path: Path) -> Iterator[EngineModel]:
    loaded = EngineModel.load(LoadParams(model_path=str(smollm2_path), num_ctx=256, num_parallel=4, num_thread=1))
    yield loaded
    loaded.close()


def poisoned(token: int, *, raises: bool) -> Any:
    """A decode that fails (or raises) for any batch holding ``token``, as llama.cpp does for a bad id."""

    def wrap(real: DecodeFn) -> DecodeFn:
        def decode(ctx: Any, batch: Any) -> int:
            if any(batch.token[i] == token for i in range(batch.n_tokens)):
                if raises:
                    raise RuntimeError("injected fault")
                return -1
            return real(ctx, batch)

        return decode

    return wrap


def test_out_of_vocabulary_ids_are_refused_before_anything_is_queued(model: EngineModel, kit: Any) -> None:
    for bad in ([99_999_999], [1, -5], [model.embedding_length * 1000]):
        with pytest.raises(BadRequest, match="invalid token id"):
            model.generate(bad, kit.sampling(temperature=0))
    assert model.waiting_requests == 0 and model.active_requests == 0


@pytest.mark.parametrize("raises", [False, True], ids=["decode-fails", "decode-raises"])
def test_a_poisoned_request_fails_alone_and_its_batch_mate_finishes_exactly(
    model: EngineModel, kit: Any, raises: bool
) -> None:
    victim_prompt = kit.chatml("Count from one to twenty in words.")
    alone = kit.generate(model, victim_prompt, **VICTIM)
    attacker = model.tokenize(kit.chatml("Describe a xylophone."))
    poison = next(t for t in reversed(attacker) if t not in alone.done.context)
    model.wrap_decode(poisoned(poison, raises=raises))

    async def scenario() -> tuple[str, BaseException | None]:
        stream = model.generate(victim_prompt, kit.sampling(**VICTIM))
        first = await anext(stream)  # the victim is decoding when the attacker arrives
        assert isinstance(first, Token)
        failure: BaseException | None = None
        try:
            await kit.Result.drain(model.generate(attacker, kit.sampling(temperature=0, num_predict=8)))
        except InternalError as exc:
            failure = exc
        rest = await kit.Result.drain(stream)
        return first.text + rest.text, failure

    text, failure = kit.run(scenario())
    assert isinstance(failure, InternalError)
    assert text == alone.text
    # The model keeps serving, and the victim's slot kept its cells: the same prompt again reuses its prefix.
    again = kit.generate(model, victim_prompt, **VICTIM)
    assert again.text == alone.text
    assert again.done.prompt_eval_count < len(model.tokenize(victim_prompt))


def failing(times: int) -> Any:
    """A decode that raises for its next ``times`` calls, then works."""
    left = {"n": times}

    def wrap(real: DecodeFn) -> DecodeFn:
        def decode(ctx: Any, batch: Any) -> int:
            if left["n"]:
                left["n"] -= 1
                raise RuntimeError("injected fault")
            return real(ctx, batch)

        return decode

    return wrap


def test_a_transient_fault_is_retried_and_changes_nothing(model: EngineModel, kit: Any) -> None:
    prompt = kit.chatml("Name three rivers.")
    alone = kit.generate(model, kit.chatml("Name three rivers."), **VICTIM).text
    model.wrap_decode(failing(1))  # the batch fails once; its sequence retried alone succeeds
    assert kit.generate(model, kit.chatml("Name three lakes."), **VICTIM).done is not None
    assert kit.generate(model, prompt, **VICTIM).text == alone


def test_a_step_that_keeps_failing_fails_its_requests_and_the_model_goes_on(model: EngineModel, kit: Any) -> None:
    prompt = kit.chatml("Name three rivers.")
    alone = kit.generate(model, prompt, **VICTIM).text
    model.wrap_decode(failing(2))  # the batch and the retry of its one sequence
    with pytest.raises(InternalError, match="could not evaluate"):
        kit.generate(model, kit.chatml("Name three mountains."), **VICTIM)
    assert kit.generate(model, prompt, **VICTIM).text == alone
    assert model.active_requests == 0


def test_tokenizing_after_close_is_a_clear_error(smollm2_path: Path) -> None:
    loaded = EngineModel.load(LoadParams(model_path=str(smollm2_path), num_ctx=64, num_thread=1))
    loaded.close()
    with pytest.raises(InternalError, match="unloaded"):
        loaded.tokenize("hello")


def test_stop_strings_are_bounded(model: EngineModel, kit: Any) -> None:
    with pytest.raises(BadRequest, match="stop"):
        model.generate("hi", kit.sampling(stop=["x"] * 65))
    with pytest.raises(BadRequest, match="stop"):
        model.generate("hi", kit.sampling(stop=["y" * 1025]))


def test_thread_and_batch_settings_are_clamped(smollm2_path: Path, kit: Any) -> None:
    params = LoadParams(model_path=str(smollm2_path), num_ctx=64, num_thread=10_000, num_batch=1_000_000)
    loaded = EngineModel.load(params)
    try:
        result = kit.generate(loaded, kit.chatml("Hi"), temperature=0, num_predict=4, ignore_eos=True)
        assert result.done is not None and result.done.eval_count == 4
    finally:
        loaded.close()


def test_requests_beside_a_failure_keep_their_own_events(model: EngineModel, kit: Any) -> None:
    """Two victims and one attacker at once: both victims finish exactly as alone."""
    prompts = [kit.chatml("List four fruits."), kit.chatml("List four colours.")]
    results = [kit.generate(model, p, **VICTIM) for p in prompts]
    alone = [r.text for r in results]
    attacker = model.tokenize(kit.chatml("Spell the word quasar."))
    seen = {t for r in results for t in r.done.context}
    poison = next(t for t in reversed(attacker) if t not in seen)
    model.wrap_decode(poisoned(poison, raises=False))

    async def scenario() -> list[str]:
        victims = [asyncio.ensure_future(kit.collect(model, p, **VICTIM)) for p in prompts]
        with pytest.raises(InternalError):
            await kit.collect(model, attacker, temperature=0, num_predict=8)
        return [(await v).text for v in victims]

    assert kit.run(scenario()) == alone
