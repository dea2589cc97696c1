"""Watching the server: per-request records, the request log, Prometheus metrics."""
