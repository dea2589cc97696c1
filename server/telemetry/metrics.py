"""Prometheus metrics (``GET /metrics``), through ``prometheus_client`` with a registry per app.

Two kinds of numbers, kept off the decode path:

- Per request, observed once the response has been sent (:meth:`Metrics.observe`): requests by route, dialect
  and status; request duration; time to first token, every inter-token gap and time per output token; prompt,
  cached-prompt and output tokens; rejected requests by reason; requests and output tokens per API key id.
- Per loaded model, read when Prometheus scrapes (:meth:`Metrics.render` with :class:`ModelState` rows): queue
  depth, busy and total slots, memory estimate, the compute thread's step-time histogram (from the runner
  process), loaded models. Nothing is updated for these while requests run.

Latency buckets suit LLM serving: TTFT from 25 ms (a cached prompt on a GPU) to minutes (a long prefill behind a
queue on a CPU); inter-token gaps from 1 ms to 2.5 s.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from server.engine import StepStats

from .record import RequestRecord

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

REQUEST_BUCKETS = (0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)
TTFT_BUCKETS = (0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 20.0, 30.0, 60.0, 120.0)
TOKEN_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.5)
LOAD_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)

# Errors counted as rejections, by the error class a request ended with.
REJECTIONS = {"ServerBusy": "queue_full", "ShuttingDown": "draining", "Unauthorized": "unauthorized"}


@dataclass(frozen=True)
class ModelState:
    """One loaded model as a scrape sees it."""

    name: str
    active: int
    waiting: int
    slots: int
    memory_bytes: int
    steps: StepStats | None


class _ModelCollector(Collector):
    """Yields the gauges and the step histogram of the rows handed to it just before a scrape renders."""

    def __init__(self) -> None:
        self.rows: list[ModelState] = []
        self.waiting: dict[str, int] = {}

    def collect(self) -> Iterator[Metric]:
        queue = GaugeMetricFamily(
            "corral_queue_depth", "Requests waiting for a slot or for their model to load", labels=["model"]
        )
        busy = GaugeMetricFamily("corral_slots_busy", "Slots decoding a request", labels=["model"])
        total = GaugeMetricFamily("corral_slots_total", "Request slots of a loaded model", labels=["model"])
        memory = GaugeMetricFamily(
            "corral_model_memory_bytes",
            "Memory estimate of a loaded model (weights, KV cache, compute)",
            labels=["model"],
        )
        steps = HistogramMetricFamily(
            "corral_compute_step_seconds",
            "Time of one compute-thread step (a decode step, or an embedding batch) of a model's runner",
            labels=["model"],
        )
        loaded = GaugeMetricFamily("corral_models_loaded", "Models loaded now")
        loaded.add_metric([], len(self.rows))
        for row in self.rows:
            queue.add_metric([row.name], max(row.active - row.slots, 0) + row.waiting)
            busy.add_metric([row.name], min(row.active, row.slots))
            total.add_metric([row.name], row.slots)
            memory.add_metric([row.name], row.memory_bytes)
            if row.steps is not None:
                steps.add_metric([row.name], _buckets(row.steps), row.steps.total_seconds)
        loading = {name: count for name, count in self.waiting.items() if name not in {r.name for r in self.rows}}
        for name, count in loading.items():
            queue.add_metric([name], count)
        yield from (queue, busy, total, memory, steps, loaded)


def _buckets(stats: StepStats) -> list[tuple[str, float]]:
    running = 0
    out = []
    for bound, count in zip((*stats.bounds, float("inf")), stats.counts, strict=True):
        running += count
        out.append(("+Inf" if bound == float("inf") else repr(bound), float(running)))
    return out


class Metrics:
    """Every metric of one server; ``observe`` after each request, ``render`` per scrape."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("corral_requests", "HTTP requests answered", ["route", "dialect", "status"], registry=r)
        self.duration = Histogram(
            "corral_request_duration_seconds",
            "Time from a request's arrival to the end of its response",
            ["route", "dialect"],
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "corral_time_to_first_token_seconds",
            "Time from a generation request's arrival to its first generated token",
            ["model"],
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        self.itl = Histogram(
            "corral_inter_token_latency_seconds",
            "Every gap between consecutive token events of a request (one token each, unless stop strings held text)",
            ["model"],
            buckets=TOKEN_BUCKETS,
            registry=r,
        )
        self.tpot = Histogram(
            "corral_time_per_output_token_seconds",
            "Mean time per output token after the first, per request",
            ["model"],
            buckets=TOKEN_BUCKETS,
            registry=r,
        )
        self.prompt_tokens = Counter(
            "corral_prompt_tokens", "Prompt tokens of generation requests", ["model"], registry=r
        )
        self.cached_tokens = Counter(
            "corral_prompt_tokens_cached",
            "Prompt tokens served from the prefix cache, not computed",
            ["model"],
            registry=r,
        )
        self.output_tokens = Counter("corral_output_tokens", "Generated tokens", ["model"], registry=r)
        self.rejected = Counter(
            "corral_rejected_requests",
            "Requests refused: queue_full (503, OLLAMA_MAX_QUEUE), draining (503), unauthorized (401)",
            ["reason"],
            registry=r,
        )
        self.key_requests = Counter(
            "corral_key_requests",
            "Requests per API key (its id: the first 8 hex digits of its SHA-256)",
            ["key_id"],
            registry=r,
        )
        self.key_tokens = Counter(
            "corral_key_output_tokens", "Generated tokens per API key (its id)", ["key_id"], registry=r
        )
        self.load_duration = Histogram(
            "corral_model_load_duration_seconds", "Time to load a model", ["model"], buckets=LOAD_BUCKETS, registry=r
        )
        self._models = _ModelCollector()
        r.register(self._models)

    def observe(self, record: RequestRecord) -> None:
        """Count a finished request."""
        self.requests.labels(record.route, record.dialect, str(record.status)).inc()
        self.duration.labels(record.route, record.dialect).observe(record.duration)
        reason = REJECTIONS.get(record.error)
        if reason:
            self.rejected.labels(reason).inc()
        if record.key_id:
            self.key_requests.labels(record.key_id).inc()
            if record.output_tokens:
                self.key_tokens.labels(record.key_id).inc(record.output_tokens)
        if not record.model:
            return
        model = record.model
        if record.prompt_tokens:
            self.prompt_tokens.labels(model).inc(record.prompt_tokens)
        if record.cached_tokens:
            self.cached_tokens.labels(model).inc(record.cached_tokens)
        if record.output_tokens:
            self.output_tokens.labels(model).inc(record.output_tokens)
        ttft = record.ttft
        if ttft is not None:
            self.ttft.labels(model).observe(ttft)
            itl = self.itl.labels(model)
            for gap in record.inter_token_gaps():
                itl.observe(gap)
        tpot = record.tpot
        if tpot is not None:
            self.tpot.labels(model).observe(tpot)

    def model_loaded(self, name: str, seconds: float) -> None:
        self.load_duration.labels(name).observe(seconds)

    def render(self, models: Iterable[ModelState], waiting: dict[str, int]) -> bytes:
        """The exposition text, with ``models`` as the loaded models' state. Synchronous on purpose: the rows are
        set and rendered with no await in between, so concurrent scrapes cannot mix."""
        self._models.rows = list(models)
        self._models.waiting = dict(waiting)
        return generate_latest(self.registry)
