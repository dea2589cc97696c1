"""A request's plan: everything about it decided and validated once, before any model is loaded or queued.

Both dialects reach the service as native requests (``/v1`` converts its requests with pure functions); the
plan turns one into typed values: the model, how long it stays loaded, whether it thinks, the sampling
settings (a validated :class:`~server.engine.SamplingParams`) and the load settings (a
:class:`~server.engine.LoadParams`). A bad option, format or schema is a 400 (or Ollama's 500 for a wrongly
typed option) here, not after a load or in the middle of a batch.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from server.engine import LoadParams, SamplingParams
from server.errors import BadRequest
from server.service import params as values
from server.service.models import ResolvedModel
from server.settings import Settings

# A JSON schema becomes a grammar in the runner; a huge one costs time there, so its size is bounded.
MAX_SCHEMA_BYTES = 64 * 1024


@dataclass(frozen=True)
class Plan:
    """How to run one generate/chat/embed request (``sampling`` is unused by embeddings)."""

    model: ResolvedModel
    keep_alive: float | None
    think: values.Think
    sampling: SamplingParams
    load: LoadParams
    num_ctx: int

    @property
    def thinks(self) -> bool:
        """Whether to split reasoning from the answer: a thinking model thinks unless the request said no."""
        return "thinking" in self.model.capabilities and (self.think.enabled if self.think.is_set else True)


@dataclass(frozen=True)
class Planner:
    """Builds plans against the server's settings and per-model ``num_parallel`` overrides."""

    settings: Settings
    num_parallel: dict[str, int]

    def plan(
        self,
        model: ResolvedModel,
        *,
        options: dict[str, Any] | None,
        keep_alive: float | None,
        think: values.Think | None = None,
        format: Any = None,
        logprobs: bool = False,
        top_logprobs: int = 0,
        shift: bool | None = None,
        truncate: bool | None = None,
        generating: bool = True,
    ) -> Plan:
        """Check and decide everything about a request. Embedding requests (``generating`` False) take their
        load settings from the options and ignore the sampling ones, as Ollama does."""
        layered = values.layered_options(self.settings, model.content.parameters, values.request_options(options))
        sampling = SamplingParams()
        if generating:
            fmt = values.output_format(format)
            if isinstance(fmt, dict) and len(json.dumps(fmt)) > MAX_SCHEMA_BYTES:
                raise BadRequest(f"the format schema is larger than {MAX_SCHEMA_BYTES // 1024} KiB")
            sampling = values.sampling_params(
                layered, format=fmt, logprobs=logprobs, top_logprobs=top_logprobs, shift=shift, truncate=truncate
            )
            sampling.validate()
        load = values.load_params(
            self.settings,
            layered,
            model_path=model.model_path,
            adapter_paths=model.content.adapter_paths,
            num_parallel=self.num_parallel.get(model.name.display),
            embedding=model.info.is_embedding,
        )
        load.validate()
        return Plan(
            model=model,
            keep_alive=keep_alive,
            think=think or values.think_setting(None),
            sampling=sampling,
            load=load,
            num_ctx=int(layered["num_ctx"]),
        )


def check_context(context: list[int] | None, model: ResolvedModel) -> None:
    """``context`` token ids must be in the model's vocabulary (from its GGUF header), checked before the model
    is loaded or the request queued; the runner checks again against the loaded vocabulary."""
    n_vocab = model.info.array_lengths.get("tokenizer.ggml.tokens", 0)
    if not context or not n_vocab:
        return
    bad = next((t for t in context if not 0 <= t < n_vocab), None)
    if bad is not None:
        raise BadRequest(f"invalid token id {bad} in context: the model's vocabulary has {n_vocab} tokens")


def check_top_logprobs(value: int) -> None:
    if not 0 <= value <= 20:
        raise BadRequest("top_logprobs must be between 0 and 20")


def decode_images(images: list[str] | None) -> list[bytes]:
    decoded = []
    for image in images or []:
        try:
            decoded.append(base64.b64decode(image, validate=True))
        except (binascii.Error, ValueError) as exc:
            raise BadRequest(f"illegal base64 data at input byte 0: {exc}") from exc
    return decoded


def embed_inputs(value: Any) -> list[str]:
    if value is None or value == "" or value == []:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    raise BadRequest("invalid input type")
