"""Quantization on create (``corral create -q TYPE``, ``/api/create`` ``quantize``), as Ollama does it.

The type name is checked first (:func:`parse_type`, upper-cased; ``Q4_K`` and ``Q5_K`` mean their ``_M``
variants), then the source weights (:func:`check_source`: only F32, F16 and BF16 weights can be quantized,
Ollama's rule), then llama.cpp's quantizer runs in a child process (:mod:`server.engine.quantizer`: a native
abort must not take the server down) while progress is reported as Ollama reports it: ``quantizing F16 model
to Q4_K_M`` with ``total``/``completed`` bytes, then ``verifying conversion``.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, LlamaFileType

from server.errors import BadRequest, InternalError
from server.store.gguf_info import GGUFInfo

# Ollama's error texts.
ONLY_FLOAT_SOURCES = "quantization is only supported for F16, BF16 and F32 models"
FLOAT_TYPES = ("F32", "F16", "BF16")

# Corral's types: Ollama's (F32, F16, BF16, Q4_K_S, Q4_K_M, Q8_0) and the other common llama.cpp ones.
TYPES: dict[str, LlamaFileType] = {
    "F32": LlamaFileType.ALL_F32,
    "F16": LlamaFileType.MOSTLY_F16,
    "BF16": LlamaFileType.MOSTLY_BF16,
    "Q4_0": LlamaFileType.MOSTLY_Q4_0,
    "Q4_1": LlamaFileType.MOSTLY_Q4_1,
    "Q5_0": LlamaFileType.MOSTLY_Q5_0,
    "Q5_1": LlamaFileType.MOSTLY_Q5_1,
    "Q8_0": LlamaFileType.MOSTLY_Q8_0,
    "Q2_K": LlamaFileType.MOSTLY_Q2_K,
    "Q3_K_S": LlamaFileType.MOSTLY_Q3_K_S,
    "Q3_K_M": LlamaFileType.MOSTLY_Q3_K_M,
    "Q3_K_L": LlamaFileType.MOSTLY_Q3_K_L,
    "Q4_K_S": LlamaFileType.MOSTLY_Q4_K_S,
    "Q4_K_M": LlamaFileType.MOSTLY_Q4_K_M,
    "Q5_K_S": LlamaFileType.MOSTLY_Q5_K_S,
    "Q5_K_M": LlamaFileType.MOSTLY_Q5_K_M,
    "Q6_K": LlamaFileType.MOSTLY_Q6_K,
}
ALIASES = {"Q4_K": "Q4_K_M", "Q5_K": "Q5_K_M", "Q3_K": "Q3_K_M"}

# Ollama reports quantization progress under this placeholder digest.
PROGRESS_DIGEST = "0000000000000000000"

Counts = Callable[[str, str, int, int], None]
"""``(status, digest, total, completed)``: a progress line with byte counts."""


@dataclass(frozen=True)
class QuantizeType:
    """A checked quantization type: its name as Ollama prints it and llama.cpp's file type."""

    name: str
    ftype: LlamaFileType


def parse_type(text: str) -> QuantizeType:
    """The type ``text`` names (any case); BadRequest with Ollama's text, listing Corral's types, otherwise."""
    name = text.strip().upper()
    name = ALIASES.get(name, name)
    ftype = TYPES.get(name)
    if ftype is None:
        supported = ", ".join(TYPES)
        raise BadRequest(f"unsupported quantization type {text} - supported types are {supported}")
    return QuantizeType(name, ftype)


def check_source(info: GGUFInfo) -> None:
    """BadRequest (Ollama's text) unless the weights are unquantized (F32, F16 or BF16)."""
    if info.file_type not in FLOAT_TYPES:
        raise BadRequest(ONLY_FLOAT_SOURCES)


def quantize_file(
    source: Path,
    target: Path,
    info: GGUFInfo,
    wanted: QuantizeType,
    counts: Counts,
    *,
    threads: int = 0,
) -> None:
    """Write ``source`` (GGUF weights described by ``info``) quantized to ``wanted`` into ``target``.

    Reports ``quantizing <F16> model to <TYPE>`` with the source size as ``total`` and the bytes of the tensors
    done so far as ``completed``. Raises InternalError (with llama.cpp's last words) when the quantizer fails or
    dies; ``target`` is then removed.
    """
    status = f"quantizing {info.file_type} model to {wanted.name}"
    total = source.stat().st_size
    sizes = {t.name: _tensor_bytes(t.type, t.elements) for t in info.tensors}
    tensor_total = max(1, sum(sizes.values()))
    counts(status, PROGRESS_DIGEST, total, 0)
    done = 0
    stderr_tail: collections.deque[str] = collections.deque(maxlen=20)
    # The child imports llama.cpp; this process (the API server, or catalog apply) does not need to.
    argv = [sys.executable, "-m", "server.engine.quantizer", str(source), str(target), str(int(wanted.ftype))]
    argv.append(str(threads))
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    ) as child:
        assert child.stdout is not None and child.stderr is not None
        stderr = child.stderr

        def drain() -> None:  # on its own thread, so a chatty child never blocks on a full pipe
            for text in stderr:
                stderr_tail.append(text)

        reader = threading.Thread(target=drain, name="quantizer-stderr", daemon=True)
        reader.start()
        finished = False
        for line in child.stdout:
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if event.get("done"):
                    finished = True
                elif "tensor" in event:
                    done += sizes.get(str(event["tensor"]), 0)
                    counts(status, PROGRESS_DIGEST, total, total * min(done, tensor_total) // tensor_total)
        code = child.wait()
        reader.join()
    if code != 0 or not finished:
        with contextlib.suppress(FileNotFoundError):
            target.unlink()
        detail = " ".join(line.strip() for line in stderr_tail if line.strip())[-400:]
        raise InternalError(f"quantization to {wanted.name} failed (exit status {code}): {detail}")


def _tensor_bytes(type_name: str, elements: int) -> int:
    try:
        block, size = GGML_QUANT_SIZES[GGMLQuantizationType[type_name]]
    except KeyError:
        return 0
    return elements // block * size
