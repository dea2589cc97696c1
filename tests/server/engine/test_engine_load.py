"""Loading and unloading: unloadable files fail cleanly, close() gives the memory back, other architectures."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import pytest

from server.engine import EngineModel, LoadParams
from server.errors import InvalidOption, ModelLoadFailed

pytestmark = pytest.mark.slow


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096


def test_a_file_that_is_not_gguf_fails_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "model.gguf"
    path.write_text("this is not a model\n" * 100)
    with pytest.raises(ModelLoadFailed, match="not a GGUF file"):
        EngineModel.load(LoadParams(model_path=str(path)))


def test_a_missing_file_fails_cleanly(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadFailed, match="unable to load model"):
        EngineModel.load(LoadParams(model_path=str(tmp_path / "absent.gguf")))


@pytest.mark.parametrize("keep", [0.5, 0.0001])
def test_a_truncated_gguf_fails_cleanly(smollm2_path: Path, tmp_path: Path, keep: float) -> None:
    data = smollm2_path.read_bytes()
    path = tmp_path / "truncated.gguf"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ModelLoadFailed, match="unable to load model"):
        EngineModel.load(LoadParams(model_path=str(path), num_thread=1))


def test_bad_load_params_are_invalid_options(smollm2_path: Path) -> None:
    with pytest.raises(InvalidOption):
        EngineModel.load(LoadParams(model_path=str(smollm2_path), num_parallel=0))


def test_close_gives_the_memory_back(smollm2_path: Path, kit: Any) -> None:
    params = LoadParams(model_path=str(smollm2_path), num_ctx=2048, num_parallel=4, num_thread=1, use_mmap=False)
    # one load/unload first, so allocator arenas and llama.cpp's one-time state do not count
    EngineModel.load(params).close()
    gc.collect()
    before = rss_bytes()
    model = EngineModel.load(params)
    kit.generate(model, kit.chatml("Hello"), temperature=0, num_predict=8)
    kit.run(model.embed(["hello"]))
    loaded = rss_bytes()
    assert loaded - before > 80 * 2**20  # the weights (98 MB) are resident
    assert model.size_bytes > 98 * 10**6
    model.close()
    model.close()  # idempotent
    gc.collect()
    after = rss_bytes()
    assert after - before < 0.2 * (loaded - before), (before, loaded, after)


def test_load_facts(smollm2: EngineModel) -> None:
    assert smollm2.context_length == 512
    assert smollm2.num_parallel == 8
    assert smollm2.embedding_length == 576
    assert smollm2.training_context_length >= 2048
    assert smollm2.vram_bytes == 0 or smollm2.vram_bytes <= smollm2.size_bytes
    tokens = smollm2.tokenize("<|im_start|>user")
    assert smollm2.detokenize(tokens).endswith("<|im_start|>user")


def test_gemma3_generates_and_embeds(gemma_path: Path, kit: Any) -> None:
    model = EngineModel.load(LoadParams(model_path=str(gemma_path), num_ctx=256, num_parallel=2, num_thread=1))
    try:
        prompt = "The capital of France is"
        alone = kit.generate(model, prompt, temperature=0, num_predict=12)
        assert alone.done.eval_count >= 1
        assert alone.text.strip()
        again = kit.generate(model, prompt, temperature=0, num_predict=12)
        assert again.text == alone.text
        vectors, _ = kit.run(model.embed(["hello world"]))
        assert len(vectors[0]) == model.embedding_length
    finally:
        model.close()
