"""Inference shared by every dialect: generate, chat, embed, and the running-model list.

Both ``/api/*`` and ``/v1/*`` call these functions; they resolve the model, build the prompt, take a lease
from the scheduler, drive the engine and turn its events into Ollama's response objects. Errors are raised
as typed ``ApiError``s with Ollama's texts; one raised before the first response object gets a real status.
"""

from __future__ import annotations

import base64
import binascii
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from server.engine import Done, EngineModel, LoadParams, SamplingParams, Token
from server.errors import BadRequest, InternalError, ModelNotFound
from server.prompt import ChatToolCall
from server.protocol import ollama as api
from server.protocol.base import rfc3339
from server.scheduler import Lease, Scheduler
from server.service import params as values
from server.service.management import details
from server.service.models import ModelResolver, ResolvedModel
from server.service.prompting import PromptRequest, render_chat, render_generate, wire_tool_call
from server.settings import Settings
from server.store.store import Store
from server.thinking import ThinkingParser
from server.toolcalls import ToolCallParser, tool_names

EngineScheduler = Scheduler[EngineModel, LoadParams]


def now_iso() -> str:
    """``created_at``: UTC with nanoseconds, trailing zeros trimmed, as Go prints ``time.Now().UTC()``."""
    now = time.time_ns()
    stamp = datetime.fromtimestamp(now // 1_000_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{now % 1_000_000_000:09d}".rstrip("0")
    return f"{stamp}.{fraction}Z" if fraction else f"{stamp}Z"


@dataclass
class _Timer:
    started: int
    loaded: int = 0

    @classmethod
    def start(cls) -> _Timer:
        return cls(time.monotonic_ns())

    def mark_loaded(self) -> None:
        self.loaded = time.monotonic_ns()

    @property
    def load_ns(self) -> int:
        return max(self.loaded - self.started, 1)

    def total_ns(self) -> int:
        return time.monotonic_ns() - self.started


class Inference:
    """The service behind the inference endpoints; one per app (``app.state.inference``)."""

    def __init__(
        self,
        store: Store,
        scheduler: EngineScheduler,
        settings: Settings,
        num_parallel: dict[str, int] | None = None,
    ) -> None:
        self.models = ModelResolver(store)
        self.scheduler = scheduler
        self.settings = settings
        self.num_parallel = num_parallel or {}

    # -- generate ----------------------------------------------------------------------------------------

    async def generate(self, req: api.GenerateRequest) -> AsyncIterator[api.GenerateResponse]:
        """``/api/generate``. Yields response objects (one for load/unload/debug flows)."""
        timer = _Timer.start()
        if not req.model:
            raise ModelNotFound("model '' not found")
        model = self.models.resolve(req.model, missing="model '{name}' not found")
        keep_alive = values.keep_alive_seconds(req.keep_alive)
        if req.raw and (req.template or req.system or req.context):
            raise BadRequest("raw mode does not support template, system, or context")
        _check_top_logprobs(req.top_logprobs)
        think = values.think_setting(req.think)
        if not req.prompt and keep_alive == 0 and not req.debug_render_only:
            await self.scheduler.unload(model.name.full)
            yield api.GenerateResponse(model=req.model, created_at=now_iso(), done=True, done_reason="unload")
            return
        model.require("completion", action="generate")
        if req.suffix:
            model.require("insert", full_name=True)
        if think.enabled and think.is_set:
            model.require("thinking")
        images = _decode_images(req.images)
        if images:
            model.require("vision")
        options = values.layered_options(self.settings, model.content.parameters, values.request_options(req.options))
        fmt = values.output_format(req.format)
        prompt = render_generate(
            model,
            PromptRequest(
                prompt=req.prompt,
                suffix=req.suffix,
                system=req.system,
                template=req.template,
                context=req.context,
                raw=req.raw,
                think=think,
                images=tuple(images),
            ),
        )
        if req.debug_render_only:
            yield api.GenerateResponse(
                model=req.model,
                created_at=now_iso(),
                done=False,
                debug_info={"rendered_template": prompt.text, "image_count": len(images)},
            )
            return
        lease = await self._lease(model, options, keep_alive)
        timer.mark_loaded()
        try:
            if not req.prompt and not req.context:
                yield api.GenerateResponse(model=req.model, created_at=now_iso(), done=True, done_reason="load")
                return
            sampling = _sampling(req, options, fmt)
            tokens = list(req.context or []) + lease.runner.tokenize(prompt.text, add_special=not req.context)
            thinker = ThinkingParser() if _thinks(model, think) else None
            async with lease.runner.generate(tokens, sampling) as events:
                async for event in events:
                    if isinstance(event, Token):
                        thinking, text = thinker.feed(event.text) if thinker else ("", event.text)
                        logprobs = _logprobs(event) if sampling.logprobs else None
                        if text or thinking or logprobs:
                            yield api.GenerateResponse(
                                model=req.model,
                                created_at=now_iso(),
                                response=text,
                                thinking=thinking or None,
                                done=False,
                                logprobs=logprobs,
                            )
                    else:
                        if thinker is not None and any(rest := thinker.flush()):
                            yield api.GenerateResponse(
                                model=req.model,
                                created_at=now_iso(),
                                response=rest.content,
                                thinking=rest.thinking or None,
                                done=False,
                            )
                        final = api.GenerateResponse(
                            model=req.model,
                            created_at=now_iso(),
                            done=True,
                            done_reason=event.done_reason,
                            context=None if req.raw else list(event.context),
                        )
                        yield final.model_copy(update=_metrics(event, timer))
        finally:
            lease.release()

    # -- chat --------------------------------------------------------------------------------------------

    async def chat(self, req: api.ChatRequest) -> AsyncIterator[api.ChatResponse]:
        """``/api/chat``. Yields response objects; tool calls are parsed from the output when tools are given."""
        timer = _Timer.start()
        if not req.model:
            raise BadRequest("model is required")
        model = self.models.resolve(req.model, missing="model '{name}' not found")
        keep_alive = values.keep_alive_seconds(req.keep_alive)
        _check_top_logprobs(req.top_logprobs)
        think = values.think_setting(req.think)
        if not req.messages and keep_alive == 0 and not req.debug_render_only:
            await self.scheduler.unload(model.name.full)
            yield _chat_response(req.model, _message(""), done=True, done_reason="unload")
            return
        model.require("completion", action="chat")
        if req.tools:
            model.require("tools", full_name=True)
        if think.enabled and think.is_set:
            model.require("thinking")
        image_count = sum(len(_decode_images(m.images)) for m in req.messages)
        if image_count:
            model.require("vision")
        options = values.layered_options(self.settings, model.content.parameters, values.request_options(req.options))
        fmt = values.output_format(req.format)
        lease = None if req.debug_render_only else await self._lease(model, options, keep_alive)
        timer.mark_loaded()
        try:
            if not req.messages and not req.debug_render_only:
                yield _chat_response(req.model, _message(""), done=True, done_reason="load")
                return
            counter = (lambda text: len(lease.runner.tokenize(text))) if lease and req.truncate is not False else None
            prompt = render_chat(
                model, req.messages, req.tools, think, count_tokens=counter, num_ctx=options["num_ctx"]
            )
            if req.debug_render_only or lease is None:
                yield api.ChatResponse(
                    model=req.model,
                    created_at=now_iso(),
                    message=api.Message(role="assistant", content=""),
                    done=False,
                    debug_info={"rendered_template": prompt.text, "image_count": image_count},
                )
                return
            sampling = _sampling(req, options, fmt)
            output = _ChatOutput(
                ThinkingParser() if _thinks(model, think) else None,
                ToolCallParser(prompt.tool_tag, tool_names(req.tools)) if req.tools else None,
            )
            async with lease.runner.generate(prompt.text, sampling) as events:
                async for event in events:
                    if isinstance(event, Token):
                        logprobs = _logprobs(event) if sampling.logprobs else None
                        message = output.feed(event.text)
                        if message.content or message.thinking or message.tool_calls or logprobs:
                            yield _chat_response(req.model, message, done=False, logprobs=logprobs)
                    else:
                        message = output.flush()
                        if message.content or message.thinking or message.tool_calls:
                            yield _chat_response(req.model, message, done=False)
                        final = _chat_response(req.model, _message(""), done=True, done_reason=event.done_reason)
                        yield final.model_copy(update=_metrics(event, timer))
        finally:
            if lease is not None:
                lease.release()

    # -- embeddings --------------------------------------------------------------------------------------

    async def embed(self, req: api.EmbedRequest) -> api.EmbedResponse:
        timer = _Timer.start()
        if not req.model:
            raise ModelNotFound("model '' not found")
        model = self.models.resolve(req.model, missing='model "{name}" not found, try pulling it first')
        keep_alive = values.keep_alive_seconds(req.keep_alive)
        inputs = _embed_inputs(req.input)
        options = values.layered_options(self.settings, model.content.parameters, values.request_options(req.options))
        lease = await self._lease(model, options, keep_alive)
        timer.mark_loaded()
        if not inputs:
            lease.release()
            return api.EmbedResponse(model=req.model, embeddings=[])
        try:
            vectors, count = await lease.runner.embed(inputs, truncate=req.truncate is not False)
        finally:
            lease.release()
        if req.dimensions is not None and req.dimensions > 0:
            vectors = [_normalize(v[: req.dimensions]) for v in vectors]
        for vector in vectors:
            if not all(math.isfinite(x) for x in vector):
                raise InternalError("embedding contains NaN or Inf values")
        return api.EmbedResponse(
            model=req.model,
            embeddings=vectors,
            total_duration=timer.total_ns(),
            load_duration=timer.load_ns,
            prompt_eval_count=count or None,
        )

    async def embeddings(self, req: api.EmbeddingsRequest) -> api.EmbeddingsResponse:
        """Legacy ``/api/embeddings``: one prompt, one vector."""
        if not req.model:
            raise BadRequest("model is required")
        model = self.models.resolve(req.model, missing='model "{name}" not found, try pulling it first')
        keep_alive = values.keep_alive_seconds(req.keep_alive)
        options = values.layered_options(self.settings, model.content.parameters, values.request_options(req.options))
        lease = await self._lease(model, options, keep_alive)
        try:
            if not req.prompt:
                return api.EmbeddingsResponse(embedding=[])
            vectors, _count = await lease.runner.embed([req.prompt])
        finally:
            lease.release()
        return api.EmbeddingsResponse(embedding=vectors[0])

    # -- running models ----------------------------------------------------------------------------------

    def running(self) -> api.ProcessResponse:
        rows = []
        for row in self.scheduler.running():
            model: ResolvedModel = row.info
            rows.append(
                api.ProcessModel(
                    name=model.name.display,
                    model=model.name.display,
                    size=row.size,
                    digest=model.stored.digest,
                    details=details(self.models.store, model.stored).model_copy(update={"parent_model": ""}),
                    expires_at=rfc3339(row.expires_at.astimezone()),
                    size_vram=row.size_vram,
                    context_length=row.context_length,
                )
            )
        return api.ProcessResponse(models=rows)

    async def _lease(
        self, model: ResolvedModel, options: dict[str, Any], keep_alive: float | None
    ) -> Lease[EngineModel]:
        """Load (or reuse) the model with these options. Generative models embed through the same runner, so
        mixing chat and embed requests never reloads; embedding-only models load an embedding context."""
        load = values.load_params(
            self.settings,
            options,
            model_path=model.model_path,
            adapter_paths=model.content.adapter_paths,
            num_parallel=self.num_parallel.get(model.name.display),
            embedding=model.info.is_embedding,
        )
        return await self.scheduler.acquire(model.name.full, load, keep_alive=keep_alive, info=model)


def _sampling(
    req: api.GenerateRequest | api.ChatRequest, options: dict[str, Any], fmt: str | dict[str, Any] | None
) -> SamplingParams:
    return values.sampling_params(
        options,
        format=fmt,
        logprobs=req.logprobs,
        top_logprobs=req.top_logprobs,
        shift=req.shift,
        truncate=req.truncate,
    )


def _chat_response(
    model: str,
    message: api.Message,
    *,
    done: bool,
    done_reason: str | None = None,
    logprobs: list[api.Logprob] | None = None,
) -> api.ChatResponse:
    return api.ChatResponse(
        model=model, created_at=now_iso(), message=message, done=done, done_reason=done_reason, logprobs=logprobs
    )


def _message(content: str, thinking: str = "", calls: list[ChatToolCall] | None = None) -> api.Message:
    return api.Message(
        role="assistant",
        content=content,
        thinking=thinking or None,
        tool_calls=[wire_tool_call(c) for c in calls] if calls else None,
    )


class _ChatOutput:
    """Generated text -> assistant message parts: reasoning split off first, then tool calls parsed."""

    def __init__(self, thinker: ThinkingParser | None, tools: ToolCallParser | None) -> None:
        self.thinker = thinker
        self.tools = tools

    def feed(self, text: str) -> api.Message:
        thinking, content = self.thinker.feed(text) if self.thinker else ("", text)
        content, calls = self.tools.feed(content) if self.tools and content else (content, [])
        return _message(content, thinking, calls)

    def flush(self) -> api.Message:
        thinking, content = self.thinker.flush() if self.thinker else ("", "")
        calls: list[ChatToolCall] = []
        if self.tools is not None:
            fed, fed_calls = self.tools.feed(content) if content else ("", [])
            rest, rest_calls = self.tools.flush()
            content, calls = fed + rest, fed_calls + rest_calls
        return _message(content, thinking, calls)


def _thinks(model: ResolvedModel, think: values.Think) -> bool:
    """Whether to split reasoning from the answer: a thinking model thinks unless the request said no."""
    return "thinking" in model.capabilities and (think.enabled if think.is_set else True)


def _metrics(done: Done, timer: _Timer) -> dict[str, int]:
    return {
        "total_duration": timer.total_ns(),
        "load_duration": timer.load_ns,
        "prompt_eval_count": done.prompt_eval_count,
        "prompt_eval_duration": done.prompt_eval_duration_ns,
        "eval_count": done.eval_count,
        "eval_duration": done.eval_duration_ns,
    }


def _logprobs(token: Token) -> list[api.Logprob]:
    return [
        api.Logprob(
            token=lp.token,
            logprob=lp.logprob,
            bytes=list(lp.bytes),
            top_logprobs=[
                api.TopLogprob(token=t.token, logprob=t.logprob, bytes=list(t.bytes)) for t in lp.top_logprobs
            ]
            or None,
        )
        for lp in token.logprobs
    ]


def _check_top_logprobs(value: int) -> None:
    if not 0 <= value <= 20:
        raise BadRequest("top_logprobs must be between 0 and 20")


def _decode_images(images: list[str] | None) -> list[bytes]:
    decoded = []
    for image in images or []:
        try:
            decoded.append(base64.b64decode(image, validate=True))
        except (binascii.Error, ValueError) as exc:
            raise BadRequest(f"illegal base64 data at input byte 0: {exc}") from exc
    return decoded


def _embed_inputs(value: Any) -> list[str]:
    if value is None or value == "" or value == []:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    raise BadRequest("invalid input type")


def _normalize(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector] if norm > 0 else vector
