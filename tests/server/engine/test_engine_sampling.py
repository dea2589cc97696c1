"""Sampling options on a real model (smollm2, CPU): each option changes the output the way it should."""

from __future__ import annotations

import asyncio
import ctypes
from typing import Any

import llama_cpp
import numpy as np
import pytest

from server.engine import EngineModel
from server.engine.sampling import Penalties

pytestmark = pytest.mark.slow

QUESTIONS = [
    "Hello",
    "What is 2+2?",
    "Tell me a story about a cat.",
    "Write a poem about the sea.",
    "Name three colors.",
    "What is Python?",
    "Why is the sky blue?",
    "Count to ten.",
]


def test_greedy_is_identical_alone_and_in_a_batch_of_8(smollm2: EngineModel, kit: Any) -> None:
    options = {"temperature": 0, "num_predict": 48}
    alone = [kit.generate(smollm2, kit.chatml(q), **options).text for q in QUESTIONS]

    async def together() -> list[str]:
        results = await asyncio.gather(*(kit.collect(smollm2, kit.chatml(q), **options) for q in QUESTIONS))
        return [r.text for r in results]

    assert kit.run(together()) == alone
    assert all(alone)


def test_seeded_sampling_is_reproducible_alone_and_in_a_batch(smollm2: EngineModel, kit: Any) -> None:
    options = {"temperature": 1.0, "top_k": 0, "top_p": 1.0, "seed": 1234, "num_predict": 40}
    prompt = kit.chatml("Tell me a story about a cat.")
    first = kit.generate(smollm2, prompt, **options).text
    assert kit.generate(smollm2, prompt, **options).text == first

    async def beside_others() -> str:
        others = [
            kit.collect(smollm2, kit.chatml(q), temperature=1.0, seed=i + 1, num_predict=40)
            for i, q in enumerate(QUESTIONS[:7])
        ]
        results = await asyncio.gather(kit.collect(smollm2, prompt, **options), *others)
        return str(results[0].text)

    assert kit.run(beside_others()) == first
    other_seed = kit.generate(smollm2, prompt, **{**options, "seed": 99}).text
    assert other_seed != first


def test_top_k_1_min_p_1_top_p_0_and_tiny_tfs_equal_greedy(smollm2: EngineModel, kit: Any) -> None:
    prompt = kit.chatml("Write a poem about the sea.")
    greedy = kit.generate(smollm2, prompt, temperature=0, repeat_penalty=1.0, num_predict=32).text
    hot = {"temperature": 1.5, "repeat_penalty": 1.0, "num_predict": 32, "seed": 7}
    assert kit.generate(smollm2, prompt, **hot, top_k=1).text == greedy
    assert kit.generate(smollm2, prompt, **hot, top_k=0, top_p=1.0, min_p=1.0).text == greedy
    assert kit.generate(smollm2, prompt, **hot, top_k=0, top_p=0.0).text == greedy
    assert kit.generate(smollm2, prompt, **hot, top_k=0, top_p=1.0, tfs_z=1e-9).text == greedy
    # and without those limits the same seed wanders off
    assert kit.generate(smollm2, prompt, **hot, top_k=0, top_p=1.0).text != greedy


def test_tail_free_and_typical_change_hot_sampling(smollm2: EngineModel, kit: Any) -> None:
    prompt = kit.chatml("Tell me a story about a dragon.")
    hot = {"temperature": 1.5, "top_k": 0, "top_p": 1.0, "num_predict": 32, "seed": 11}
    free = kit.generate(smollm2, prompt, **hot).text
    assert kit.generate(smollm2, prompt, **hot, tfs_z=0.5).text != free
    assert kit.generate(smollm2, prompt, **hot, typical_p=0.2).text != free


def repeats(tokens: tuple[int, ...]) -> float:
    return 1 - len(set(tokens)) / len(tokens)


def test_repeat_penalty_reduces_repeats(smollm2: EngineModel, kit: Any) -> None:
    prompt = kit.chatml("List ten fruits, one per line.")
    plain = kit.generate(smollm2, prompt, temperature=0, num_predict=64, repeat_penalty=1.0)
    penalised = kit.generate(smollm2, prompt, temperature=0, num_predict=64, repeat_penalty=1.5)
    n = len(smollm2.tokenize(prompt))
    assert repeats(penalised.done.context[n:]) < repeats(plain.done.context[n:])
    for option in ({"presence_penalty": 1.5}, {"frequency_penalty": 1.5}):
        other = kit.generate(smollm2, prompt, temperature=0, num_predict=64, repeat_penalty=1.0, **option)
        assert repeats(other.done.context[n:]) < repeats(plain.done.context[n:])


def test_penalize_newline_false_exempts_newlines(smollm2: EngineModel, kit: Any) -> None:
    prompt = kit.chatml("List ten fruits, one per line.")
    options = {"temperature": 0, "num_predict": 80, "repeat_penalty": 2.0}
    penalised = kit.generate(smollm2, prompt, **options).text
    exempt = kit.generate(smollm2, prompt, **options, penalize_newline=False).text
    assert exempt.count("\n") > penalised.count("\n")


def test_repeat_last_n_zero_turns_penalties_off(smollm2: EngineModel, kit: Any) -> None:
    prompt = kit.chatml("List ten fruits, one per line.")
    plain = kit.generate(smollm2, prompt, temperature=0, num_predict=40, repeat_penalty=1.0).text
    off = kit.generate(smollm2, prompt, temperature=0, num_predict=40, repeat_penalty=2.0, repeat_last_n=0).text
    assert off == plain


@pytest.mark.parametrize("mirostat", [1, 2])
def test_mirostat_is_seeded_and_differs_from_greedy(smollm2: EngineModel, kit: Any, mirostat: int) -> None:
    prompt = kit.chatml("Tell me a story about a cat.")
    options = {"temperature": 1.0, "mirostat": mirostat, "seed": 5, "num_predict": 32}
    first = kit.generate(smollm2, prompt, **options).text
    assert kit.generate(smollm2, prompt, **options).text == first
    assert first != kit.generate(smollm2, prompt, temperature=0, num_predict=32).text


def test_stop_sequences_never_appear_even_across_tokens(smollm2: EngineModel, kit: Any) -> None:
    prompt = kit.chatml("Tell me a story about a cat.")
    full = kit.generate(smollm2, prompt, temperature=0, num_predict=48)
    chunks = [c.text for c in full.chunks]
    # a stop string that starts inside one chunk and ends inside a later one
    start = len(chunks[0]) + len(chunks[1]) - 2
    stop = full.text[start : start + 8]
    assert not any(stop in c for c in chunks)
    stopped = kit.generate(smollm2, prompt, temperature=0, num_predict=48, stop=[stop])
    assert stopped.done.done_reason == "stop"
    assert stopped.text == full.text[: full.text.index(stop)]
    assert stop not in stopped.text
    # several stops: the earliest in the text wins
    later = full.text[start + 20 : start + 26]
    both = kit.generate(smollm2, prompt, temperature=0, num_predict=48, stop=[later, stop])
    assert both.text == stopped.text


def test_end_of_generation_token_stops(smollm2: EngineModel, kit: Any) -> None:
    result = kit.generate(smollm2, kit.chatml("List five fruits, one per line."), temperature=0, num_predict=100)
    assert result.done.done_reason == "stop"
    assert "<|im_end|>" not in result.text
    assert result.done.eval_count < 100


def test_num_predict_caps_eval_count(smollm2: EngineModel, kit: Any) -> None:
    prompt = kit.chatml("Tell me a long story.")
    result = kit.generate(smollm2, prompt, temperature=0, num_predict=7)
    assert result.done.done_reason == "length"
    assert result.done.eval_count == 7
    assert len(result.done.context) == len(smollm2.tokenize(prompt)) + 7


def test_ignore_eos_generates_past_the_end(smollm2: EngineModel, kit: Any) -> None:
    result = kit.generate(smollm2, kit.chatml("Hello"), temperature=0, num_predict=60, ignore_eos=True)
    assert result.done.eval_count == 60


def test_logprobs_with_top_alternatives(smollm2: EngineModel, kit: Any) -> None:
    result = kit.generate(smollm2, kit.chatml("Say hello"), temperature=0, num_predict=8, logprobs=True, top_logprobs=3)
    logprobs = result.logprobs
    assert len(logprobs) == 8
    assert "".join(lp.token for lp in logprobs) == result.text
    for lp in logprobs:
        assert lp.logprob <= 0
        assert len(lp.top_logprobs) == 3
        # greedy picks the most likely token, which leads the alternatives
        assert lp.top_logprobs[0].token_id == lp.token_id
        assert lp.top_logprobs[0].logprob == pytest.approx(lp.logprob)
        assert [t.logprob for t in lp.top_logprobs] == sorted((t.logprob for t in lp.top_logprobs), reverse=True)
    plain = kit.generate(smollm2, kit.chatml("Say hello"), temperature=0, num_predict=8)
    assert plain.logprobs == []
    assert plain.text == result.text


@pytest.mark.parametrize(
    ("window", "repeat", "frequency", "presence"),
    [(64, 1.1, 0.0, 0.0), (16, 1.3, 0.5, 0.25), (300, 0.8, -0.2, 0.1), (5, 1.0, 1.0, 0.0)],
)
def test_penalties_give_llama_cpp_numbers_and_undo_cleanly(
    window: int, repeat: float, frequency: float, presence: float
) -> None:
    """Corral's penalties touch only the window's tokens; the result equals llama.cpp's penalties sampler over
    the whole vocabulary, bit for bit, and the logits are restored after the pick."""
    rng = np.random.default_rng(window)
    n_vocab = 2000
    history = rng.integers(0, 60, 250).tolist()
    logits = rng.normal(0.0, 3.0, n_vocab).astype(np.float32)
    logits[:10] = 0.0  # the <= 0 branch at exactly zero
    ours = Penalties(window, repeat, frequency, presence, exempt=7)
    theirs = llama_cpp.llama_sampler_init_penalties(n_vocab, window, repeat, frequency, presence)
    try:
        for token in history:
            ours.accept(token)
            llama_cpp.llama_sampler_accept(theirs, token)
        data = np.zeros(n_vocab, dtype=[("id", "<i4"), ("logit", "<f4"), ("p", "<f4")])
        data["id"] = np.arange(n_vocab)
        data["logit"] = logits
        array = llama_cpp.llama_token_data_array(
            data=data.ctypes.data_as(llama_cpp.llama_token_data_p), size=n_vocab, selected=-1, sorted=False
        )
        llama_cpp.llama_sampler_apply(theirs, ctypes.byref(array))
    finally:
        llama_cpp.llama_sampler_free(theirs)
    expected = data["logit"].copy()
    expected[7] = logits[7]  # exempt (penalize_newline off)
    got = logits.copy()
    restore = ours.apply(got)
    assert np.array_equal(got, expected)
    assert (got != logits).sum() > 5 or repeat == 1.0
    restore()
    assert np.array_equal(got, logits)
