"""LoRA adapters applied at load: a random low-rank adapter changes greedy output; scale 0 and no adapter give the
base output exactly; several adapters stack; a broken adapter fails the load cleanly."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from server.engine import EngineModel, LoadParams, SamplingParams, Token
from server.errors import InvalidOption, ModelLoadFailed
from tests.server.engine.lora import write_random_lora

PROMPT = "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"


def greedy(params: LoadParams, n: int = 12) -> str:
    async def run() -> str:
        model = EngineModel.load(params)
        try:
            parts = []
            async for event in model.generate(PROMPT, SamplingParams(temperature=0, num_predict=n)):
                if isinstance(event, Token):
                    parts.append(event.text)
            return "".join(parts)
        finally:
            model.close()

    return asyncio.run(run())


@pytest.fixture(scope="module")
def adapters(tmp_path_factory: pytest.TempPathFactory, smollm2_path: Path) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("lora")
    first = write_random_lora(smollm2_path, root / "a.gguf", seed=1)
    second = write_random_lora(smollm2_path, root / "b.gguf", tensors=("blk.2.attn_k.weight",), seed=2)
    return first, second


@pytest.fixture(scope="module")
def base_text(smollm2_path: Path) -> str:
    return greedy(LoadParams(model_path=str(smollm2_path), num_ctx=256))


@pytest.mark.slow
def test_adapter_changes_greedy_output_and_scale_zero_restores_it(smollm2_path, adapters, base_text) -> None:
    path = str(smollm2_path)
    with_adapter = greedy(LoadParams(model_path=path, num_ctx=256, adapter_paths=(str(adapters[0]),)))
    assert with_adapter != base_text
    off = greedy(LoadParams(model_path=path, num_ctx=256, adapter_paths=(str(adapters[0]),), adapter_scales=(0.0,)))
    assert off == base_text


@pytest.mark.slow
def test_several_adapters_stack(smollm2_path, adapters, base_text) -> None:
    path = str(smollm2_path)
    both = tuple(str(a) for a in adapters)
    first = greedy(LoadParams(model_path=path, num_ctx=256, adapter_paths=both[:1]))
    stacked = greedy(LoadParams(model_path=path, num_ctx=256, adapter_paths=both))
    assert stacked not in (base_text, first)
    second_off = greedy(LoadParams(model_path=path, num_ctx=256, adapter_paths=both, adapter_scales=(1.0, 0.0)))
    assert second_off == first


def test_an_adapter_for_another_model_fails_the_load(tmp_path: Path, smollm2_path: Path) -> None:
    wrong = write_random_lora(smollm2_path, tmp_path / "wrong.gguf")
    # Same architecture but a tensor the model does not have: llama.cpp refuses it at load.
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(wrong.read_bytes().replace(b"blk.0.attn_q.weight.lora_a", b"blk.0.attn_x.weight.lora_a"))
    with pytest.raises(ModelLoadFailed, match="unable to load adapter"):
        EngineModel.load(LoadParams(model_path=str(smollm2_path), num_ctx=64, adapter_paths=(str(bad),)))


def test_adapter_scales_are_checked() -> None:
    with pytest.raises(InvalidOption, match="more adapter scales"):
        LoadParams(model_path="m", adapter_scales=(1.0,)).validate()
    with pytest.raises(InvalidOption, match="finite"):
        LoadParams(model_path="m", adapter_paths=("a",), adapter_scales=(float("nan"),)).validate()
