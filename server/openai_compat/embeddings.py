"""``/v1/embeddings`` <-> ``/api/embed``."""

from __future__ import annotations

import base64
import struct

from server.errors import BadRequest
from server.protocol import ollama as api
from server.protocol import openai as oai


def from_embedding_request(req: oai.EmbeddingRequest) -> api.EmbedRequest:
    if req.encoding_format and req.encoding_format.lower() not in ("float", "base64"):
        raise BadRequest(
            f"Invalid value for 'encoding_format' = {req.encoding_format}. Supported values: ['float', 'base64']."
        )
    value = [""] if req.input == "" else req.input
    if value is None or value == []:
        raise BadRequest("invalid input")
    return api.EmbedRequest(model=req.model, input=value, dimensions=req.dimensions or None, keep_alive=req.keep_alive)


def embedding_base64(vector: list[float]) -> str:
    """Little-endian float32 bytes, base64-encoded (what the openai SDKs decode)."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def to_embedding_list(native: api.EmbedResponse, *, model: str, encoding_format: str = "") -> oai.EmbeddingList:
    as_base64 = encoding_format.lower() == "base64"
    data = [
        oai.Embedding(embedding=embedding_base64(vector) if as_base64 else vector, index=i)
        for i, vector in enumerate(native.embeddings)
    ]
    tokens = native.prompt_eval_count or 0
    return oai.EmbeddingList(
        data=data, model=model, usage=oai.EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens)
    )
