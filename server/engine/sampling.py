"""Per-request sampler chains (llama.cpp's ``llama_sampler_chain_*``), tail-free sampling and logprobs.

Every request owns one chain, so its state (RNG, penalty window, grammar, mirostat mu) never depends on which
requests share its decode steps: the same seed gives the same text alone or in a batch.

Order (llama.cpp's common order): penalties, then either greedy (temperature 0), mirostat (temperature then
mirostat v1/v2), or top_k, tail-free, typical, top_p, min_p, temperature, dist(seed).

Two steps run outside llama.cpp's chain because they are much cheaper there, with the same numbers: penalties
touch only the logits of the tokens in their window (llama.cpp's penalties sampler looks up every token of the
vocabulary, ~0.2 ms per token on 49k tokens), restored after the pick; greedy picking is an argmax.

A grammar (``format``) is applied lazily: the chain picks a token as if unconstrained, the grammar checks just
that token, and only when it is rejected is the grammar applied to the whole vocabulary before picking again.
Checking a 49k-token vocabulary against a grammar at every step is what made constrained output slow; most
steps of a model asked for JSON already pick a valid token.
"""

from __future__ import annotations

import ctypes
import json
import math
import secrets
from collections import deque
from collections.abc import Callable
from typing import Any

import llama_cpp
import numpy as np
from llama_cpp.llama_grammar import JSON_GBNF, json_schema_to_gbnf

from server.errors import InvalidOption

from .events import Logprob, TopLogprob
from .params import JsonSchema, SamplingParams
from .weights import Weights

# Layout of llama_token_data {int32 id; float logit; float p}: lets numpy read candidates in place.
_TOKEN_DATA = np.dtype([("id", "<i4"), ("logit", "<f4"), ("p", "<f4")])
_MIROSTAT_M = 100
_RANDOM_SEED = 0xFFFFFFFF  # llama.cpp reads this seed as "pick one at random"


def resolve_seed(seed: int) -> int:
    """Seed for llama.cpp's RNG: 0 or negative draws a random one (Ollama's table: 0 = random)."""
    if seed <= 0:
        return secrets.randbits(32) & 0xFFFFFFFE
    value = seed & 0xFFFFFFFF
    # 0xFFFFFFFF would mean "random" to llama.cpp; a reproducible seed must not.
    return value if value != _RANDOM_SEED else value - 1


def grammar_for(fmt: str | JsonSchema | None) -> str | None:
    """The GBNF grammar for Ollama's ``format``: None/"" none, "json" any JSON object, a dict a JSON schema."""
    if fmt is None or fmt == "":
        return None
    if fmt == "json":
        return JSON_GBNF
    if isinstance(fmt, dict):
        try:
            return str(json_schema_to_gbnf(json.dumps(fmt)))
        except Exception as exc:  # the converter raises bare Exception/ValueError/KeyError on bad schemas
            raise InvalidOption(f"invalid format: {json.dumps(fmt)}; {exc}") from exc
    raise InvalidOption(f'invalid format: "{fmt}"; expected "json" or a valid JSON Schema object')


def _candidates(cur: Any) -> np.ndarray[Any, np.dtype[np.void]]:
    """The first ``cur.size`` entries of a llama_token_data_array as a writable numpy record array (no copy)."""
    size = int(cur.size)
    address = ctypes.addressof(cur.data.contents)
    raw = (ctypes.c_char * (size * _TOKEN_DATA.itemsize)).from_address(address)
    return np.frombuffer(memoryview(raw).cast("B"), dtype=_TOKEN_DATA)


def tail_free(cur: Any, z: float, min_keep: int = 1) -> None:
    """Tail-free sampling (Phillips, 2019), the algorithm llama.cpp dropped: sort candidates by logit, take the
    absolute second differences of their probabilities, normalise, and cut the tail where their running sum
    passes ``z``. Works on the candidate array in place; ``z >= 1`` keeps everything."""
    size = int(cur.size)
    if z >= 1.0 or size <= 2:
        return
    arr = _candidates(cur)
    if not cur.sorted:
        order = np.argsort(-arr["logit"], kind="stable")
        arr[:] = arr[order]
        cur.sorted = True
    logits = arr["logit"].astype(np.float64)
    if not math.isfinite(logits[0]):
        return
    probs = np.exp(logits - logits[0])
    probs /= probs.sum()
    second = np.abs(np.diff(probs, 2))
    total = second.sum()
    if total > 1e-6:
        second /= total
    over = np.flatnonzero(np.cumsum(second) > z)
    last = int(over[0]) if over.size else size
    cur.size = max(last, min_keep)


class Penalties:
    """Repeat, frequency and presence penalties over the last ``window`` tokens (prompt end and output).

    The same arithmetic as llama.cpp's penalties sampler, in float32: a token seen ``n`` times in the window has
    its logit divided by ``repeat`` when positive (multiplied when not), then ``n * frequency + presence``
    subtracted. Only the logits of tokens in the window are touched; ``exempt`` (the newline token when
    penalize_newline is off) never is."""

    def __init__(self, window: int, repeat: float, frequency: float, presence: float, exempt: int = -1) -> None:
        self._history: deque[int] = deque(maxlen=window)
        self._counts: dict[int, int] = {}
        self._repeat = np.float32(repeat)
        self._frequency = np.float32(frequency)
        self._presence = np.float32(presence)
        self._exempt = exempt

    def accept(self, token: int) -> None:
        history = self._history
        if len(history) == history.maxlen:
            old = history[0]
            left = self._counts[old] - 1
            if left:
                self._counts[old] = left
            else:
                del self._counts[old]
        history.append(token)
        self._counts[token] = self._counts.get(token, 0) + 1

    def apply(self, logits: np.ndarray[Any, np.dtype[np.float32]]) -> Callable[[], None]:
        """Penalise ``logits`` in place; returns the function that puts the touched values back."""
        counts = self._counts
        if self._exempt in counts:
            counts = {t: n for t, n in counts.items() if t != self._exempt}
        if not counts:
            return _nothing
        ids = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        seen = np.fromiter(counts.values(), dtype=np.float32, count=len(counts))
        saved = logits[ids]
        scaled = np.where(saved <= 0, saved * self._repeat, saved / self._repeat)
        logits[ids] = scaled - (seen * self._frequency + self._presence)

        def restore() -> None:
            logits[ids] = saved

        return restore


def _nothing() -> None:
    pass


class _PySampler:
    """A llama_sampler whose ``apply`` is a Python function on the llama_token_data_array.

    Only used where llama.cpp has no sampler (tail-free, newline exemption); the callback objects are kept on
    this instance because llama.cpp calls them for as long as the owning chain lives."""

    def __init__(self, name: str, apply: Callable[[Any], None]) -> None:
        self._name = ctypes.create_string_buffer(name.encode())
        name_fn = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p)(lambda _smpl: ctypes.addressof(self._name))
        self._callbacks = (
            name_fn,
            llama_cpp.llama_sampler_i_apply(lambda _smpl, cur_p: apply(cur_p.contents)),
        )
        self._iface = llama_cpp.llama_sampler_i()
        self._iface.name = ctypes.cast(name_fn, llama_cpp.llama_sampler_i_name)
        self._iface.apply = self._callbacks[1]
        self.ptr: Any = llama_cpp.llama_sampler_init(ctypes.byref(self._iface), None)


class SamplerChain:
    """The sampler chain of one request. Build on any thread; ``sample`` on the decode thread; ``free`` once."""

    def __init__(self, weights: Weights, params: SamplingParams, n_ctx: int) -> None:
        grammar = grammar_for(params.format)
        self._weights = weights
        self._keep: list[_PySampler] = []
        self._penalties: Penalties | None = None
        self._greedy = params.temperature <= 0
        self._grammar: Any = None
        self._candidates: np.ndarray[Any, np.dtype[np.void]] | None = None
        self._cur: Any = None
        self.penalty_window = 0
        self.seed = resolve_seed(params.seed)
        cparams = llama_cpp.llama_sampler_chain_default_params()
        cparams.no_perf = True
        self.ptr: Any = llama_cpp.llama_sampler_chain_init(cparams)
        try:
            if grammar is not None:
                self._add_grammar(grammar)
            self._add_penalties(params, n_ctx)
            self._add_choice(params)
        except BaseException:
            self.free()
            raise

    def _add(self, sampler: Any) -> None:
        llama_cpp.llama_sampler_chain_add(self.ptr, sampler)

    def _add_grammar(self, grammar: str) -> None:
        sampler = llama_cpp.llama_sampler_init_grammar(self._weights.vocab, grammar.encode(), b"root")
        if not sampler:
            raise InvalidOption("invalid format: the JSON schema could not be turned into a grammar")
        # Kept outside the chain: see the module docstring.
        self._grammar = sampler
        n_vocab = self._weights.n_vocab
        self._candidates = np.zeros(n_vocab, dtype=_TOKEN_DATA)
        self._candidates["id"] = np.arange(n_vocab, dtype=np.int32)
        self._cur = llama_cpp.llama_token_data_array(
            data=self._candidates.ctypes.data_as(llama_cpp.llama_token_data_p),
            size=n_vocab,
            selected=-1,
            sorted=False,
        )

    def _add_penalties(self, params: SamplingParams, n_ctx: int) -> None:
        last_n = n_ctx if params.repeat_last_n == -1 else params.repeat_last_n
        active = last_n > 0 and (
            params.repeat_penalty != 1.0 or params.presence_penalty != 0.0 or params.frequency_penalty != 0.0
        )
        if not active:
            return
        self.penalty_window = last_n
        exempt = -1 if params.penalize_newline else self._weights.newline
        self._penalties = Penalties(
            last_n, params.repeat_penalty, params.frequency_penalty, params.presence_penalty, exempt
        )

    def _add_choice(self, params: SamplingParams) -> None:
        if self._greedy:
            self._add(llama_cpp.llama_sampler_init_greedy())  # used with a grammar; else an argmax picks
            return
        if params.mirostat == 1:
            self._add(llama_cpp.llama_sampler_init_temp(params.temperature))
            self._add(
                llama_cpp.llama_sampler_init_mirostat(
                    self._weights.n_vocab, self.seed, params.mirostat_tau, params.mirostat_eta, _MIROSTAT_M
                )
            )
            return
        if params.mirostat == 2:
            self._add(llama_cpp.llama_sampler_init_temp(params.temperature))
            self._add(llama_cpp.llama_sampler_init_mirostat_v2(self.seed, params.mirostat_tau, params.mirostat_eta))
            return
        if params.top_k > 0:
            self._add(llama_cpp.llama_sampler_init_top_k(params.top_k))
        if params.tfs_z < 1.0:
            z = params.tfs_z
            self._add_python("tail-free", lambda cur: tail_free(cur, z))
        if params.typical_p < 1.0:
            self._add(llama_cpp.llama_sampler_init_typical(params.typical_p, 1))
        if params.top_p < 1.0:
            self._add(llama_cpp.llama_sampler_init_top_p(params.top_p, 1))
        if params.min_p > 0.0:
            self._add(llama_cpp.llama_sampler_init_min_p(params.min_p, 1))
        self._add(llama_cpp.llama_sampler_init_temp(params.temperature))
        self._add(llama_cpp.llama_sampler_init_dist(self.seed))

    def _add_python(self, name: str, apply: Callable[[Any], None]) -> None:
        sampler = _PySampler(name, apply)
        self._keep.append(sampler)
        self._add(sampler.ptr)

    def accept_prompt(self, tokens: list[int]) -> None:
        """Feed the end of the prompt into the penalty window (not into the grammar, which constrains output)."""
        if self._penalties is None:
            return
        for token in tokens[-self.penalty_window :]:
            self._penalties.accept(token)

    def sample(self, ctx: Any, index: int) -> int:
        """Pick the next token from the logits of batch entry ``index`` and advance the chain's state. The
        logits are left as they were (penalties are undone), so logprobs read the model's own numbers."""
        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx, index), shape=(self._weights.n_vocab,))
        restore = self._penalties.apply(logits) if self._penalties is not None else _nothing
        try:
            token = self._choose(ctx, index, logits)
        finally:
            restore()
        if self._penalties is not None:
            self._penalties.accept(token)
        return token

    def _choose(self, ctx: Any, index: int, logits: np.ndarray[Any, np.dtype[np.float32]]) -> int:
        if self._grammar is None:
            if self._greedy:
                return int(np.argmax(logits))  # the first of equal maxima, as llama.cpp's greedy sampler
            return int(llama_cpp.llama_sampler_sample(self.ptr, ctx, index))
        token = self._pick(logits, constrained=False)
        if not self._grammar_allows(token, float(logits[token])):
            token = self._pick(logits, constrained=True)
        llama_cpp.llama_sampler_accept(self._grammar, token)
        llama_cpp.llama_sampler_accept(self.ptr, token)
        return token

    def _pick(self, logits: np.ndarray[Any, np.dtype[np.float32]], *, constrained: bool) -> int:
        """Run the chain (after the grammar when ``constrained``) over fresh candidates; the chosen token id."""
        assert self._candidates is not None
        self._candidates["id"] = np.arange(self._weights.n_vocab, dtype=np.int32)
        self._candidates["logit"] = logits
        self._candidates["p"] = 0.0
        cur = self._cur
        cur.data = self._candidates.ctypes.data_as(llama_cpp.llama_token_data_p)
        cur.size = self._weights.n_vocab
        cur.selected = -1
        cur.sorted = False
        if constrained:
            llama_cpp.llama_sampler_apply(self._grammar, ctypes.byref(cur))
        llama_cpp.llama_sampler_apply(self.ptr, ctypes.byref(cur))
        return int(cur.data[cur.selected].id)

    def _grammar_allows(self, token: int, logit: float) -> bool:
        single = np.array([(token, logit, 0.0)], dtype=_TOKEN_DATA)
        array = llama_cpp.llama_token_data_array(
            data=single.ctypes.data_as(llama_cpp.llama_token_data_p), size=1, selected=-1, sorted=False
        )
        llama_cpp.llama_sampler_apply(self._grammar, ctypes.byref(array))
        return bool(np.isfinite(single["logit"][0]))

    def free(self) -> None:
        if self.ptr is not None:
            llama_cpp.llama_sampler_free(self.ptr)
            self.ptr = None
        if self._grammar is not None:
            llama_cpp.llama_sampler_free(self._grammar)
            self._grammar = None


def logprob_of(ctx: Any, weights: Weights, index: int, token: int, top_n: int) -> Logprob:
    """Log-probability of ``token`` under the model's raw distribution at batch entry ``index``, with the
    ``top_n`` most likely tokens. Reads the logits in place; only called when a request asks for logprobs."""
    pointer = llama_cpp.llama_get_logits_ith(ctx, index)
    logits = np.ctypeslib.as_array(pointer, shape=(weights.n_vocab,)).astype(np.float64)
    peak = float(logits.max())
    log_total = peak + math.log(float(np.exp(logits - peak).sum()))
    top: tuple[TopLogprob, ...] = ()
    if top_n > 0:
        best = np.argpartition(-logits, top_n - 1)[:top_n]
        best = best[np.argsort(-logits[best], kind="stable")]
        top = tuple(_top(weights, int(t), float(logits[t]) - log_total) for t in best)
    piece = weights.piece(token)
    return Logprob(
        token=piece.decode("utf-8", "replace"),
        token_id=token,
        logprob=float(logits[token]) - log_total,
        bytes=piece,
        top_logprobs=top,
    )


def _top(weights: Weights, token: int, logprob: float) -> TopLogprob:
    piece = weights.piece(token)
    return TopLogprob(token=piece.decode("utf-8", "replace"), token_id=token, logprob=logprob, bytes=piece)
