"""Test helper: a random low-rank LoRA adapter for a llama-architecture GGUF, written with ``gguf``.

For each chosen weight W (GGUF shape ``[n_in, n_out]``) it writes ``<name>.lora_a`` (``[n_in, rank]``) and
``<name>.lora_b`` (``[rank, n_out]``) in the layout llama.cpp's adapter loader checks, and the metadata it reads
(``general.type`` adapter, ``adapter.type`` lora, ``adapter.lora.alpha``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gguf import GGUFReader, GGUFWriter


def write_random_lora(
    base: Path,
    target: Path,
    *,
    tensors: tuple[str, ...] = ("blk.0.attn_q.weight", "blk.0.attn_v.weight", "blk.1.attn_q.weight"),
    rank: int = 4,
    alpha: float = 4.0,
    std: float = 0.5,
    seed: int = 0,
) -> Path:
    reader = GGUFReader(base)
    arch = str(reader.fields["general.architecture"].contents())
    shapes = {t.name: [int(d) for d in t.shape] for t in reader.tensors}
    rng = np.random.default_rng(seed)
    writer = GGUFWriter(target, arch)
    writer.add_string("general.type", "adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", alpha)
    for name in tensors:
        n_in, n_out = shapes[name][0], shapes[name][1]
        # numpy shapes are the reverse of GGUF's: A is [rank, n_in], B is [n_out, rank].
        writer.add_tensor(f"{name}.lora_a", rng.normal(0, std, (rank, n_in)).astype(np.float32))
        writer.add_tensor(f"{name}.lora_b", rng.normal(0, std, (n_out, rank)).astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return target
