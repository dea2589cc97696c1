"""Load-time and per-request parameters of the engine.

These are plain values: the engine never reads the environment. ``server/options.py`` and ``server/settings.py``
turn Ollama options and ``OLLAMA_*`` variables into them. Defaults follow the PARAMETER table of the seed document
(``reference/seed.md``); ``validate()`` raises :class:`~server.errors.InvalidOption` for values llama.cpp cannot use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from server.errors import InvalidOption

KvCacheType = Literal["f16", "q8_0", "q4_0"]
JsonSchema = dict[str, Any]

MAX_TOP_LOGPROBS = 20
# Stop strings are matched against the output at every token, on the compute thread every request shares.
MAX_STOPS = 64
MAX_STOP_LENGTH = 1024


@dataclass(frozen=True)
class LoadParams:
    """How to load one model. Changing any field means a reload (the scheduler compares instances).

    ``num_ctx`` is the context of ONE slot; the llama context holds ``num_ctx * num_parallel`` cells, as Ollama
    allocates it. ``num_gpu`` counts layers to offload (0 = CPU only, -1 = all). ``num_thread`` 0 lets the engine
    pick (the number of CPUs). ``use_mmap`` None lets llama.cpp decide. ``max_queue`` bounds the requests that wait
    for a free slot; one more raises :class:`~server.errors.ServerBusy`. ``flash_attention`` None lets llama.cpp
    decide (it enables it where supported: about 20% more tokens/s for 8 CPU streams); True/False force it
    (``OLLAMA_FLASH_ATTENTION`` set to a value). A quantized ``kv_cache_type`` needs flash attention: with False
    the cache falls back to f16, as Ollama does. ``embedding`` loads a context for
    embeddings only (no generation), as Ollama does for embedding models. ``adapter_paths`` are LoRA GGUF files
    applied to generation, each at the scale of the same index in ``adapter_scales`` (1.0 where absent; llama.cpp
    multiplies it by the adapter's alpha / rank; 0 leaves the base model's output unchanged).
    """

    model_path: str
    num_ctx: int = 4096
    num_batch: int = 512
    num_gpu: int = -1
    main_gpu: int = 0
    num_thread: int = 0
    use_mmap: bool | None = None
    numa: bool = False
    num_parallel: int = 1
    flash_attention: bool | None = None
    kv_cache_type: KvCacheType = "f16"
    adapter_paths: tuple[str, ...] = ()
    adapter_scales: tuple[float, ...] = ()
    embedding: bool = False
    max_queue: int = 512

    def validate(self) -> None:
        """Raise InvalidOption naming the first field llama.cpp cannot use."""
        if self.num_ctx < 4:
            raise InvalidOption(f"num_ctx must be at least 4, got {self.num_ctx}")
        if self.num_batch < 1:
            raise InvalidOption(f"num_batch must be at least 1, got {self.num_batch}")
        if self.num_parallel < 1:
            raise InvalidOption(f"num_parallel must be at least 1, got {self.num_parallel}")
        if self.num_thread < 0:
            raise InvalidOption(f"num_thread must not be negative, got {self.num_thread}")
        if self.max_queue < 0:
            raise InvalidOption(f"max_queue must not be negative, got {self.max_queue}")
        if len(self.adapter_scales) > len(self.adapter_paths):
            raise InvalidOption("more adapter scales than adapters")
        if any(not math.isfinite(scale) for scale in self.adapter_scales):
            raise InvalidOption("adapter scales must be finite numbers")
        if self.kv_cache_type not in ("f16", "q8_0", "q4_0"):
            raise InvalidOption(f"unsupported kv cache type {self.kv_cache_type!r} (f16, q8_0 or q4_0)")


@dataclass
class SamplingParams:
    """Per-request generation settings (Ollama option names and meanings).

    - ``temperature`` 0 = greedy; ``top_k`` 0 = off; ``top_p``/``typical_p``/``tfs_z`` 1.0 = off; ``min_p`` 0 = off.
    - ``repeat_last_n``: 0 = off, -1 = the slot's context. ``repeat_penalty`` 1.0 = off. The window covers the end
      of the prompt too, so a model is not pushed to repeat its input. ``penalize_newline`` False exempts the
      newline token from the repeat/presence/frequency penalties.
    - ``mirostat`` 0 = off, 1 or 2 select Mirostat v1/v2 (then top_k/top_p/... are not used).
    - ``seed`` 0 or negative = random; any other value makes the output reproducible, alone or in a batch.
    - ``num_predict``: -1 (or 0) = until a stop or forever with context shift, -2 = until the context is full,
      N > 0 = at most N tokens.
    - ``num_keep``: tokens at the start of the context kept by a context shift and by prompt truncation.
    - ``stop``: strings that end generation; they are never emitted.
    - ``format``: None (or ""), ``"json"`` or a JSON schema (dict); constrains the output with a llama.cpp grammar.
    - ``logprobs``/``top_logprobs``: report the log-probability of each token and its best alternatives (0-20).
    - ``shift``: False ends generation with done_reason "length" when the slot's context is full.
    - ``truncate``: a prompt that does not fit the context keeps ``num_keep`` tokens and its tail when True, else
      raises BadRequest("the input length exceeds the context length").
    - ``ignore_eos``: keep generating past end-of-generation tokens (benchmarks).
    """

    temperature: float = 0.8
    top_k: int = 40
    top_p: float = 0.9
    min_p: float = 0.0
    typical_p: float = 1.0
    tfs_z: float = 1.0
    repeat_penalty: float = 1.1
    repeat_last_n: int = 64
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    penalize_newline: bool = True
    mirostat: int = 0
    mirostat_tau: float = 5.0
    mirostat_eta: float = 0.1
    seed: int = 0
    num_predict: int = -1
    num_keep: int = 4
    stop: list[str] = field(default_factory=list)
    format: str | JsonSchema | None = None
    logprobs: bool = False
    top_logprobs: int = 0
    shift: bool = True
    truncate: bool = True
    ignore_eos: bool = False

    def validate(self) -> None:
        """Raise InvalidOption naming the first value that cannot be used."""
        floats = {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "min_p": self.min_p,
            "typical_p": self.typical_p,
            "tfs_z": self.tfs_z,
            "repeat_penalty": self.repeat_penalty,
            "presence_penalty": self.presence_penalty,
            "frequency_penalty": self.frequency_penalty,
            "mirostat_tau": self.mirostat_tau,
            "mirostat_eta": self.mirostat_eta,
        }
        for name, value in floats.items():
            if not math.isfinite(value):
                raise InvalidOption(f"option {name!r} must be a finite number, got {value}")
        if self.mirostat not in (0, 1, 2):
            raise InvalidOption(f"mirostat must be 0, 1 or 2, got {self.mirostat}")
        if self.repeat_last_n < -1:
            raise InvalidOption(f"repeat_last_n must be -1 or more, got {self.repeat_last_n}")
        if self.repeat_penalty <= 0:
            raise InvalidOption(f"repeat_penalty must be positive, got {self.repeat_penalty}")
        if self.num_predict < -2:
            raise InvalidOption(f"num_predict must be -2, -1 or more, got {self.num_predict}")
        if not 0 <= self.top_logprobs <= MAX_TOP_LOGPROBS:
            raise InvalidOption(f"top_logprobs must be between 0 and {MAX_TOP_LOGPROBS}, got {self.top_logprobs}")
        if any(not isinstance(s, str) for s in self.stop):
            raise InvalidOption('option "stop" must be of an array of strings')
        if len(self.stop) > MAX_STOPS:
            raise InvalidOption(f"at most {MAX_STOPS} stop sequences are allowed, got {len(self.stop)}")
        if any(len(s) > MAX_STOP_LENGTH for s in self.stop):
            raise InvalidOption(f"a stop sequence may be at most {MAX_STOP_LENGTH} characters long")
        if self.format not in (None, "", "json") and not isinstance(self.format, dict):
            raise InvalidOption(f'invalid format: "{self.format}"; expected "json" or a valid JSON Schema object')
