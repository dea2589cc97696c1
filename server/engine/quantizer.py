"""llama.cpp's quantizer (``llama_model_quantize``), run as its own process.

A native quantizer that meets a tensor it cannot handle may ``abort()`` the process, so the model store never
calls it in the server process: it runs ``python -m server.engine.quantizer SOURCE TARGET FTYPE [THREADS]``
 and reads its standard output, one JSON object per line:

* ``{"tensor": NAME, "index": I, "count": N}`` when llama.cpp starts on the I-th of N tensors;
* ``{"done": true}`` once TARGET is complete.

Anything else llama.cpp logs goes to standard error. The exit status is 0 on success; on failure the last
standard-error lines say why and TARGET may be left half-written (the caller removes it).
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

_TENSOR_LINE = re.compile(r"\[\s*(\d+)\s*/\s*(\d+)\s*\]\s+(\S+)")


def quantize(source: str, target: str, ftype: int, threads: int = 0) -> int:
    """Quantize in this process, reporting progress lines on stdout; returns llama.cpp's status (0 = ok)."""
    import llama_cpp

    def forward(level: int, text: bytes | None, _user_data: Any) -> None:
        if not text:
            return
        message = text.decode("utf-8", "replace")
        match = _TENSOR_LINE.match(message.strip())
        if match:
            index, count, name = int(match.group(1)), int(match.group(2)), match.group(3)
            print(json.dumps({"tensor": name, "index": index, "count": count}), flush=True)
        sys.stderr.write(message)

    callback = llama_cpp.llama_log_callback(forward)
    llama_cpp.llama_log_set(callback, None)
    llama_cpp.llama_backend_init()
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = threads
    status = int(llama_cpp.llama_model_quantize(source.encode(), target.encode(), params))
    if status == 0:
        print(json.dumps({"done": True}), flush=True)
    return status


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 4):
        sys.stderr.write("usage: python -m server.engine.quantizer SOURCE TARGET FTYPE [THREADS]\n")
        return 2
    threads = int(argv[3]) if len(argv) == 4 else 0
    status = quantize(argv[0], argv[1], int(argv[2]), threads)
    if status != 0:
        sys.stderr.write(f"llama_model_quantize failed with status {status}\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
