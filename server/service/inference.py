"""Inference shared by every dialect: generate, chat, embed, and the running-model list.

Both ``/api/*`` and ``/v1/*`` call these functions. Each request is first checked and planned completely
(:mod:`server.service.plan`): nothing is loaded or queued for a request that would fail its checks. Then it
takes a lease from the scheduler and drives the model's runner; :mod:`server.service.replies` turns the
runner's events into dialect-neutral ones (:mod:`server.service.events`), which each dialect renders.
Errors are typed ``ApiError``s with Ollama's texts; one raised before the first event gets a real status.
The lease is released in a ``finally`` block, so a request cancelled anywhere (its client gone) gives its
model back at once.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator

from server.engine import LoadParams
from server.errors import BadRequest, InternalError, ModelNotFound
from server.gocompat.timefmt import rfc3339
from server.lifecycle import Lifecycle
from server.protocol import ollama as api
from server.runner import ModelRunner
from server.scheduler import Lease, Scheduler
from server.service import params as values
from server.service.events import Event, ModelLoaded, ModelUnloaded, Rendered
from server.service.management import details
from server.service.models import ModelResolver, ResolvedModel
from server.service.plan import Plan, Planner, check_context, check_top_logprobs, decode_images, embed_inputs
from server.service.prompting import PromptRequest, render_chat, render_generate
from server.service.replies import ChatOutput, Timer, chat_events, generate_events
from server.settings import Settings
from server.store.store import Store
from server.telemetry.record import RequestRecord
from server.thinking import ThinkingParser
from server.toolcalls import ToolCallParser, tool_names

EngineScheduler = Scheduler[ModelRunner, LoadParams]


class Inference:
    """The service behind the inference endpoints; one per app (``app.state.inference``)."""

    def __init__(
        self,
        store: Store,
        scheduler: EngineScheduler,
        settings: Settings,
        num_parallel: dict[str, int] | None = None,
        lifecycle: Lifecycle | None = None,
    ) -> None:
        self.models = ModelResolver(store)
        self.lifecycle = lifecycle or Lifecycle()
        self.scheduler = scheduler
        self.settings = settings
        self.planner = Planner(settings, num_parallel or {})

    # -- generate ----------------------------------------------------------------------------------------

    async def generate(self, req: api.GenerateRequest, record: RequestRecord | None = None) -> AsyncIterator[Event]:
        """``/api/generate``. Yields the generation's events, or the one answer of a load/unload/debug request
        (:mod:`server.service.events`). ``record`` collects what the request log and metrics see."""
        timer = Timer.start(record)
        if not req.model:
            raise ModelNotFound("model '' not found")
        model = await self._resolve(req.model, missing="model '{name}' not found", record=timer.record)
        keep_alive = values.keep_alive_seconds(req.keep_alive)
        if req.raw and (req.template or req.system or req.context):
            raise BadRequest("raw mode does not support template, system, or context")
        check_top_logprobs(req.top_logprobs)
        check_context(req.context, model)
        think = values.think_setting(req.think)
        if not req.prompt and keep_alive == 0 and not req.debug_render_only:
            await self.scheduler.unload(model.name.full)
            yield ModelUnloaded()
            return
        model.require("completion", action="generate")
        if req.suffix:
            model.require("insert", full_name=True)
        if think.enabled and think.is_set:
            model.require("thinking")
        images = decode_images(req.images)
        if images:
            model.require("vision")
        plan = self._plan(model, req, keep_alive, think)
        parts = PromptRequest(
            prompt=req.prompt,
            suffix=req.suffix,
            system=req.system,
            template=req.template,
            context=req.context,
            raw=req.raw,
            think=think,
            images=tuple(images),
        )
        prompt = await asyncio.to_thread(render_generate, model, parts)  # templates over big inputs take time
        if self.settings.debug:
            timer.record.prompt = prompt.text
        if req.debug_render_only:
            yield Rendered(prompt.text, len(images))
            return
        lease = await self._lease(plan)
        timer.mark_loaded()
        try:
            if not req.prompt and not req.context:
                yield ModelLoaded()
                return
            runner = lease.runner
            tokens = await asyncio.to_thread(runner.tokenize, prompt.text, add_special=not req.context)
            events = runner.generate(list(req.context or []) + tokens, plan.sampling)
            outputs = generate_events(
                events, thinks=plan.thinks, logprobs=plan.sampling.logprobs, raw=req.raw, timer=timer
            )
            with self.lifecycle.watching(events), timer.record.noting_errors():
                async for event in outputs:
                    yield event
        finally:
            lease.release()

    # -- chat --------------------------------------------------------------------------------------------

    async def chat(self, req: api.ChatRequest, record: RequestRecord | None = None) -> AsyncIterator[Event]:
        """``/api/chat``. Yields events as :meth:`generate` does; tool calls are parsed from the output when tools
        are given."""
        timer = Timer.start(record)
        if not req.model:
            raise BadRequest("model is required")
        model = await self._resolve(req.model, missing="model '{name}' not found", record=timer.record)
        keep_alive = values.keep_alive_seconds(req.keep_alive)
        check_top_logprobs(req.top_logprobs)
        think = values.think_setting(req.think)
        if not req.messages and keep_alive == 0 and not req.debug_render_only:
            await self.scheduler.unload(model.name.full)
            yield ModelUnloaded()
            return
        model.require("completion", action="chat")
        if req.tools:
            model.require("tools", full_name=True)
        if think.enabled and think.is_set:
            model.require("thinking")
        image_count = sum(len(decode_images(m.images)) for m in req.messages)
        if image_count:
            model.require("vision")
        plan = self._plan(model, req, keep_alive, think)
        lease = None if req.debug_render_only else await self._lease(plan)
        timer.mark_loaded()
        try:
            if not req.messages and lease is not None:
                yield ModelLoaded()
                return
            runner = lease.runner if lease else None
            counter = (lambda text: len(runner.tokenize(text))) if runner and req.truncate is not False else None
            # Rendering (and truncation, which renders and counts) runs off the event loop.
            prompt = await asyncio.to_thread(
                render_chat, model, req.messages, req.tools, think, count_tokens=counter, num_ctx=plan.num_ctx
            )
            if self.settings.debug:
                timer.record.prompt = prompt.text
            if runner is None:
                yield Rendered(prompt.text, image_count)
                return
            output = ChatOutput(
                ThinkingParser() if plan.thinks else None,
                ToolCallParser(prompt.tool_tag, tool_names(req.tools)) if req.tools else None,
            )
            tokens = await asyncio.to_thread(runner.tokenize, prompt.text)
            events = runner.generate(tokens, plan.sampling)
            with self.lifecycle.watching(events), timer.record.noting_errors():
                async for event in chat_events(events, output, logprobs=plan.sampling.logprobs, timer=timer):
                    yield event
        finally:
            if lease is not None:
                lease.release()

    # -- embeddings --------------------------------------------------------------------------------------

    async def embed(self, req: api.EmbedRequest, record: RequestRecord | None = None) -> api.EmbedResponse:
        timer = Timer.start(record)
        if not req.model:
            raise ModelNotFound("model '' not found")
        model = await self._resolve(
            req.model, missing='model "{name}" not found, try pulling it first', record=timer.record
        )
        keep_alive = values.keep_alive_seconds(req.keep_alive)
        inputs = embed_inputs(req.input)
        plan = self.planner.plan(model, options=req.options, keep_alive=keep_alive, generating=False)
        lease = await self._lease(plan)
        timer.mark_loaded()
        if not inputs:
            lease.release()
            return api.EmbedResponse(model=req.model, embeddings=[])
        try:
            vectors, count = await lease.runner.embed(inputs, truncate=req.truncate is not False)
        finally:
            lease.release()
        timer.record.prompt_tokens = count
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

    async def embeddings(
        self, req: api.EmbeddingsRequest, record: RequestRecord | None = None
    ) -> api.EmbeddingsResponse:
        """Legacy ``/api/embeddings``: one prompt, one vector."""
        if not req.model:
            raise BadRequest("model is required")
        model = await self._resolve(req.model, missing='model "{name}" not found, try pulling it first', record=record)
        keep_alive = values.keep_alive_seconds(req.keep_alive)
        plan = self.planner.plan(model, options=req.options, keep_alive=keep_alive, generating=False)
        lease = await self._lease(plan)
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

    # -- internals ---------------------------------------------------------------------------------------

    def _plan(
        self,
        model: ResolvedModel,
        req: api.GenerateRequest | api.ChatRequest,
        keep_alive: float | None,
        think: values.Think,
    ) -> Plan:
        return self.planner.plan(
            model,
            options=req.options,
            keep_alive=keep_alive,
            think=think,
            format=req.format,
            logprobs=req.logprobs,
            top_logprobs=req.top_logprobs,
            shift=req.shift,
            truncate=req.truncate,
        )

    async def _resolve(self, requested: str, *, missing: str, record: RequestRecord | None = None) -> ResolvedModel:
        # Reads the manifest (and, once per digest, the GGUF header): file I/O, so off the event loop.
        model = await asyncio.to_thread(self.models.resolve, requested, missing=missing)
        if record is not None:
            record.model = model.name.display
        return model

    async def _lease(self, plan: Plan) -> Lease[ModelRunner]:
        """Load (or reuse) the model with the plan's load settings. Generative models embed through the same
        runner, so mixing chat and embed requests never reloads; embedding-only models load an embedding
        context."""
        model = plan.model
        return await self.scheduler.acquire(model.name.full, plan.load, keep_alive=plan.keep_alive, info=model)


def _normalize(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector] if norm > 0 else vector
