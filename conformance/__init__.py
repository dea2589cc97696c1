"""Black-box Ollama API parity suite: pytest cases plus a runner that writes a parity report.

The suite knows the API only from the written reference (``shared/reference/ollama-api.md``) and imports
nothing from ``server/``: it can judge any server that claims the Ollama API. Run it with
``python -m conformance --url URL`` (see ``conformance.cli``) or ``pytest conformance --url URL``.
"""
