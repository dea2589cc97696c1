"""Load tests and capacity planning for Ollama- and OpenAI-compatible servers.

Two halves that never share a process:

- the load side imports Locust, which monkey-patches the whole process with gevent on import:
  ``perf/users.py`` (one stream-reading user per API), ``perf/locustfile.py`` (the entry point for the
  ``locust`` command and ``corral perf run``), ``perf/recorder.py`` (the listener that collects one record per
  request, also from workers) and ``perf/loadgen.py`` (one measured load level, driven by the capacity search);
- the analysis side imports no Locust and is unit-tested in the normal test run: ``records`` (the per-request
  record), ``stream`` (reading NDJSON and SSE streams into records), ``workload`` (prompts and request bodies),
  ``stats`` (percentiles, bootstrap intervals, summaries), ``slo`` (thresholds and verdicts), ``search`` (the
  capacity search), ``planner`` (knee and replicas), ``report`` and ``plots`` (what is written to disk).

Metric definitions (vLLM's, written into every report header):

- TTFT: from sending the request to the first chunk with non-empty content (or thinking) text.
- ITL: every gap between consecutive content chunks, pooled over requests (vLLM's ITL, AIPerf's ICL).
- TPOT: (t_last_chunk - t_first_chunk) / (output_tokens - 1) per request.
- E2E: from sending the request to the final object (``done``) or ``[DONE]``.
- Output tokens: the server's ``eval_count`` or ``usage.completion_tokens``, never re-tokenized.
- Error: a non-2xx status (notably 503 from a full queue), a timeout or connection error, an error object in
  the stream, or a stream that ends without its final object / ``[DONE]``.
"""
