"""GGUF header reading: the real smollm2 file, files built with GGUFWriter, truncated and foreign files."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from gguf import GGUFReader, GGUFValueType, GGUFWriter

from server.errors import InvalidModelFile
from server.store.gguf_info import read_gguf

MakeGGUF = Callable[..., Path]


@pytest.fixture(scope="module")
def smollm2_reader(smollm2_path: Path) -> GGUFReader:
    """The ``gguf`` package's own (slow) reader, as the reference for offsets and tensors."""
    return GGUFReader(smollm2_path)


@pytest.fixture(scope="module")
def smollm2_data_offset(smollm2_reader: GGUFReader) -> int:
    return int(smollm2_reader.data_offset)


def test_smollm2_summary(smollm2_path: Path) -> None:
    info = read_gguf(smollm2_path)
    assert info.version == 3
    assert info.architecture == "llama"
    assert info.context_length == 8192
    assert info.embedding_length == 576
    assert info.file_type == "Q4_1"
    assert info.parameter_count == 134515008
    assert info.is_embedding is False
    assert info.has_vision is False
    assert info.arch_value("block_count") == 30
    assert len(info.tensors) == 272
    assert sum(t.elements for t in info.tensors) == 134515008


def test_smollm2_chat_template(smollm2_path: Path) -> None:
    template = read_gguf(smollm2_path).chat_template
    assert "<|im_start|>" in template
    assert "messages" in template


def test_smollm2_model_info(smollm2_path: Path) -> None:
    model_info = read_gguf(smollm2_path).model_info()
    assert "general.name" not in model_info
    assert "tokenizer.chat_template" not in model_info
    assert model_info["general.architecture"] == "llama"
    assert model_info["general.parameter_count"] == 134515008
    assert model_info["llama.context_length"] == 8192
    assert model_info["llama.attention.layer_norm_rms_epsilon"] == 1e-05  # float32 printed as Go prints it
    assert model_info["tokenizer.ggml.tokens"] == []
    assert model_info["tokenizer.ggml.merges"] == []
    assert model_info["tokenizer.ggml.token_type"] == []
    assert model_info["general.languages"] == ["en"]  # short arrays are kept
    assert list(model_info) == sorted(model_info)


def test_smollm2_full_arrays(smollm2_path: Path) -> None:
    short = read_gguf(smollm2_path)
    full = read_gguf(smollm2_path, full_arrays=True)
    tokens = full.kv["tokenizer.ggml.tokens"]
    assert len(tokens) == 49152 == short.array_lengths["tokenizer.ggml.tokens"]
    assert tokens[:3] == ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    assert len(full.kv["tokenizer.ggml.token_type"]) == 49152
    assert len(full.kv["tokenizer.ggml.merges"]) == short.array_lengths["tokenizer.ggml.merges"] == 48900
    assert {k: v for k, v in full.kv.items() if not isinstance(v, list)} == {
        k: v for k, v in short.kv.items() if not isinstance(v, list)
    }


def test_smollm2_tensors_match_the_gguf_package(smollm2_path: Path, smollm2_reader: GGUFReader) -> None:
    ours = read_gguf(smollm2_path).tensors
    theirs = smollm2_reader.tensors
    assert [(t.name, t.type, t.shape) for t in ours] == [
        (t.name, t.tensor_type.name, tuple(int(d) for d in t.shape)) for t in theirs
    ]


def _cut(source: Path, size: int, target: Path) -> Path:
    with source.open("rb") as reader:
        target.write_bytes(reader.read(size))
    return target


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("empty", "supplied file was not in GGUF format"),
        ("magic-only", "supplied file was not in GGUF format"),
        ("in-counts", "supplied file was not in GGUF format"),
        ("first-key", "truncated in its header"),
        ("mid-metadata", "truncated in its header"),
        ("mid-vocabulary", "truncated in its header"),
        ("mid-tensor-table", "truncated in its header"),
        ("at-data-start", "GGUF file is truncated: 1785664 of 98362432 bytes present"),
        ("mid-tensor-data", "GGUF file is truncated: 49181216 of 98362432 bytes present"),
        ("last-byte-missing", "GGUF file is truncated: 98362431 of 98362432 bytes present"),
    ],
)
def test_truncated_smollm2(
    smollm2_path: Path, smollm2_data_offset: int, tmp_path: Path, where: str, message: str
) -> None:
    total = smollm2_path.stat().st_size
    size = {
        "empty": 0,
        "magic-only": 4,
        "in-counts": 20,
        "first-key": 30,
        "mid-metadata": 1000,
        "mid-vocabulary": 200_000,
        "mid-tensor-table": smollm2_data_offset - 2000,
        "at-data-start": smollm2_data_offset,
        "mid-tensor-data": total // 2,
        "last-byte-missing": total - 1,
    }[where]
    with pytest.raises(InvalidModelFile) as info:
        read_gguf(_cut(smollm2_path, size, tmp_path / "cut.gguf"))
    assert message in str(info.value)
    assert info.value.status_code == 400


@pytest.mark.parametrize(
    "data",
    [
        b"not a gguf file, just some text that is long enough to be read",
        b"\x00" * 64,
        b"FUGG" + b"\x00" * 60,
        b"PK\x03\x04" + b"\x00" * 60,
    ],
    ids=["text", "zeros", "wrong-magic", "zip"],
)
def test_foreign_files_are_not_gguf(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "foreign.bin"
    path.write_bytes(data)
    with pytest.raises(InvalidModelFile) as info:
        read_gguf(path)
    assert str(info.value) == "supplied file was not in GGUF format"


def test_missing_file_is_invalid(tmp_path: Path) -> None:
    with pytest.raises(InvalidModelFile, match="supplied file was not in GGUF format"):
        read_gguf(tmp_path / "missing.gguf")


def test_a_directory_is_invalid(tmp_path: Path) -> None:
    with pytest.raises(InvalidModelFile):
        read_gguf(tmp_path)


def _header(version: int, tensors: int, kvs: int) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", version, tensors, kvs)


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("<Q", len(data)) + data


def test_old_versions_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "v1.gguf"
    path.write_bytes(_header(1, 0, 0) + b"\x00" * 32)
    with pytest.raises(InvalidModelFile, match="unsupported GGUF version 1"):
        read_gguf(path)


def test_unknown_value_type(tmp_path: Path) -> None:
    path = tmp_path / "bad-type.gguf"
    path.write_bytes(_header(3, 0, 1) + _string("general.x") + struct.pack("<I", 99) + b"\x00" * 32)
    with pytest.raises(InvalidModelFile, match="unknown value type 99"):
        read_gguf(path)


def test_unknown_tensor_type(tmp_path: Path) -> None:
    tensor = _string("t") + struct.pack("<I", 1) + struct.pack("<Q", 4) + struct.pack("<I", 250) + struct.pack("<Q", 0)
    path = tmp_path / "bad-tensor.gguf"
    path.write_bytes(_header(3, 1, 0) + tensor + b"\x00" * 64)
    with pytest.raises(InvalidModelFile, match="unknown type 250"):
        read_gguf(path)


def test_arrays_nested_absurdly_deep_are_invalid_not_a_crash(tmp_path: Path) -> None:
    depth = 20_000
    nested = struct.pack("<IQ", GGUFValueType.ARRAY, 1) * depth + struct.pack("<IQ", GGUFValueType.UINT8, 0)
    path = tmp_path / "deep.gguf"
    path.write_bytes(_header(3, 0, 1) + _string("k") + struct.pack("<I", GGUFValueType.ARRAY) + nested + b"\x00" * 32)
    with pytest.raises(InvalidModelFile, match="supplied file was not in GGUF format"):
        read_gguf(path)


def test_huge_declared_counts_are_truncation_not_a_hang(tmp_path: Path) -> None:
    path = tmp_path / "huge.gguf"
    path.write_bytes(_header(3, 0, 2**62) + _string("k") + struct.pack("<I", GGUFValueType.UINT8) + b"\x01")
    with pytest.raises(InvalidModelFile, match="truncated"):
        read_gguf(path)
    array = struct.pack("<IQ", GGUFValueType.UINT32, 2**40)
    path.write_bytes(_header(3, 0, 1) + _string("k") + struct.pack("<I", GGUFValueType.ARRAY) + array + b"\x00" * 64)
    with pytest.raises(InvalidModelFile, match="truncated"):
        read_gguf(path, full_arrays=True)
    with pytest.raises(InvalidModelFile, match="truncated"):
        read_gguf(path)


def test_tiny_gguf(make_gguf: MakeGGUF, tmp_path: Path) -> None:
    info = read_gguf(make_gguf(tmp_path / "tiny.gguf"))
    assert info.architecture == "llama"
    assert info.context_length == 128
    assert info.embedding_length == 8
    assert info.file_type == "F32"
    assert info.parameter_count == 64  # no general.parameter_count: the tensors' elements
    assert info.is_embedding is False
    assert info.chat_template == "{% for m in messages %}{{ m.content }}{% endfor %}"
    assert info.kv["general.name"] == "tiny"
    assert info.kv["tokenizer.ggml.tokens"] == []  # 6 tokens: longer than a short array
    assert info.array_lengths["tokenizer.ggml.tokens"] == 6
    model_info = info.model_info()
    assert "general.name" not in model_info
    assert "tokenizer.chat_template" not in model_info
    assert model_info["general.parameter_count"] == 64
    assert [(t.name, t.type, t.shape) for t in info.tensors] == [
        ("blk.0.t0.weight", "F32", (8, 4)),
        ("blk.0.t1.weight", "F32", (8, 4)),
    ]


def test_tiny_gguf_full_arrays(make_gguf: MakeGGUF, tmp_path: Path) -> None:
    info = read_gguf(make_gguf(tmp_path / "tiny.gguf"), full_arrays=True)
    assert info.kv["tokenizer.ggml.tokens"] == ["<s>", "</s>", "a", "b", "c", "d"]


@pytest.mark.parametrize(("pooling", "embedding"), [(True, True), (False, False)], ids=["pooling", "no-pooling"])
def test_pooling_type_makes_an_embedding_model(
    make_gguf: MakeGGUF, tmp_path: Path, pooling: bool, embedding: bool
) -> None:
    info = read_gguf(make_gguf(tmp_path / "m.gguf", arch="bert", pooling=pooling))
    assert info.architecture == "bert"
    assert info.is_embedding is embedding
    assert (info.arch_value("pooling_type") == 1) is pooling


def test_vision_keys(make_gguf: MakeGGUF, tmp_path: Path) -> None:
    def vision(writer: GGUFWriter) -> None:
        writer.add_uint32("llama.vision.block_count", 2)

    assert read_gguf(make_gguf(tmp_path / "v.gguf", extra=vision)).has_vision is True


def test_declared_parameter_count_wins(make_gguf: MakeGGUF, tmp_path: Path) -> None:
    def declared(writer: GGUFWriter) -> None:
        writer.add_uint64("general.parameter_count", 1_234_567)

    assert read_gguf(make_gguf(tmp_path / "p.gguf", extra=declared)).parameter_count == 1_234_567


def test_unknown_file_type(make_gguf: MakeGGUF, tmp_path: Path) -> None:
    def odd(writer: GGUFWriter) -> None:
        writer.add_uint32("general.quantization_version", 2)

    path = make_gguf(tmp_path / "ft.gguf", extra=odd)
    data = bytearray(path.read_bytes())
    # general.file_type is a uint32 right after its key: rewrite the value to a number no enum knows.
    key = _string("general.file_type") + struct.pack("<I", GGUFValueType.UINT32)
    at = bytes(data).index(key) + len(key)
    data[at : at + 4] = struct.pack("<I", 9999)
    path.write_bytes(bytes(data))
    assert read_gguf(path).file_type == "unknown"


def test_float_values_print_like_go(make_gguf: MakeGGUF, tmp_path: Path) -> None:
    def floats(writer: GGUFWriter) -> None:
        writer.add_float32("llama.attention.layer_norm_rms_epsilon", 1e-6)
        writer.add_float32("llama.rope.freq_base", 10000.0)
        writer.add_float64("general.f64", 0.1)

    info = read_gguf(make_gguf(tmp_path / "f.gguf", extra=floats))
    assert info.kv["llama.attention.layer_norm_rms_epsilon"] == 1e-6
    assert info.kv["llama.rope.freq_base"] == 10000.0
    assert info.kv["general.f64"] == 0.1


@pytest.mark.parametrize("missing", [1, 16, 100])
def test_truncated_tiny_gguf(make_gguf: MakeGGUF, tmp_path: Path, missing: int) -> None:
    path = make_gguf(tmp_path / "tiny.gguf")
    data = path.read_bytes()
    path.write_bytes(data[:-missing])
    with pytest.raises(InvalidModelFile, match=f"truncated: {len(data) - missing} of {len(data)} bytes"):
        read_gguf(path)


def test_custom_alignment(make_gguf: MakeGGUF, tmp_path: Path) -> None:
    def aligned(writer: GGUFWriter) -> None:
        writer.add_custom_alignment(64)

    path = make_gguf(tmp_path / "a.gguf", extra=aligned)
    info = read_gguf(path)
    assert info.kv["general.alignment"] == 64
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(InvalidModelFile, match="truncated"):
        read_gguf(path)
