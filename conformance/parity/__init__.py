"""The parity run: the conformance suite against a real Ollama built from source and against Corral, in one go.

``python -m conformance.parity`` (``make parity``) builds Ollama (``build-ollama.sh``, cached by version), serves
the catalog model with it, runs the suite against it and then against a Corral server the suite starts, and
writes one parity matrix (``matrix.py``) as Markdown and JUnit.
"""
