"""Model names: parsing from the right, defaults, validation (a name can never leave the store), display."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from server.errors import InvalidModelName
from server.store.names import ModelName


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("llama3.2", ("registry.ollama.ai", "library", "llama3.2", "latest")),
        ("llama3.2:1b", ("registry.ollama.ai", "library", "llama3.2", "1b")),
        ("user/model", ("registry.ollama.ai", "user", "model", "latest")),
        ("user/model:v1.0-q4_K_M", ("registry.ollama.ai", "user", "model", "v1.0-q4_K_M")),
        ("hf.co/u/r:Q4_K_M", ("hf.co", "u", "r", "Q4_K_M")),
        ("hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF", ("hf.co", "bartowski", "Llama-3.2-1B-Instruct-GGUF", "latest")),
        ("localhost:5000/ns/m:tag", ("localhost:5000", "ns", "m", "tag")),
        ("example.com:5000/ns/m", ("example.com:5000", "ns", "m", "latest")),
        ("https://example.com/ns/m:t", ("example.com", "ns", "m", "t")),
        ("_under/_score:_t", ("registry.ollama.ai", "_under", "_score", "_t")),
        ("a-b/c_d.e:1.0-x_y", ("registry.ollama.ai", "a-b", "c_d.e", "1.0-x_y")),
        ("MiXeD/CaSe:TaG", ("registry.ollama.ai", "MiXeD", "CaSe", "TaG")),
        ("x" * 80, ("registry.ollama.ai", "library", "x" * 80, "latest")),
        (f"{'n' * 80}/{'m' * 80}:{'t' * 80}", ("registry.ollama.ai", "n" * 80, "m" * 80, "t" * 80)),
        (f"{'h' * 350}/n/m", ("h" * 350, "n", "m", "latest")),
    ],
    ids=lambda v: v[:40] if isinstance(v, str) else None,
)
def test_parse_fills_defaults(text: str, parts: tuple[str, str, str, str]) -> None:
    name = ModelName.parse(text)
    assert (name.host, name.namespace, name.model, name.tag) == parts
    assert ModelName.try_parse(text) == name


def test_scheme_is_kept() -> None:
    assert ModelName.parse("http://example.com/ns/m").scheme == "http"
    assert ModelName.parse("ns/m").scheme == "https"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "../x",
        "../../etc/passwd",
        "/abs",
        "/abs/path/model",
        "a//b",
        "a/b/",
        "x:",
        ":tag",
        ":",
        "a b",
        "a*b",
        "m@sha256",
        "m:t:u",
        "m:t/x",
        "ns.dot/m",
        ".hidden",
        "-dash",
        "m:.tag",
        "m:-tag",
        "ns/.m",
        "é",
        "x" * 81,
        f"{'n' * 81}/m",
        f"m:{'t' * 81}",
        f"{'h' * 351}/n/m",
        "a/b/c/d",
        "a/b/c/d/e",
        "h/n/m/t:x",
        "ftp://h/n/m",
        "m\n",
        "m\x00",
        "back\\slash",
    ],
    ids=repr,
)
def test_invalid_names(text: str) -> None:
    assert ModelName.try_parse(text) is None
    with pytest.raises(InvalidModelName) as info:
        ModelName.parse(text)
    assert str(info.value) == "invalid model name"


@pytest.mark.parametrize(
    ("text", "display", "full"),
    [
        ("llama3.2", "llama3.2:latest", "registry.ollama.ai/library/llama3.2:latest"),
        ("llama3.2:1b", "llama3.2:1b", "registry.ollama.ai/library/llama3.2:1b"),
        ("library/m:t", "m:t", "registry.ollama.ai/library/m:t"),
        ("registry.ollama.ai/library/m", "m:latest", "registry.ollama.ai/library/m:latest"),
        ("REGISTRY.OLLAMA.AI/Library/m", "m:latest", "REGISTRY.OLLAMA.AI/Library/m:latest"),
        ("user/ns", "user/ns:latest", "registry.ollama.ai/user/ns:latest"),
        ("registry.ollama.ai/user/ns:v2", "user/ns:v2", "registry.ollama.ai/user/ns:v2"),
        ("hf.co/u/r:Q4_K_M", "hf.co/u/r:Q4_K_M", "hf.co/u/r:Q4_K_M"),
        ("hf.co/library/r", "hf.co/library/r:latest", "hf.co/library/r:latest"),
        ("localhost:5000/ns/m", "localhost:5000/ns/m:latest", "localhost:5000/ns/m:latest"),
    ],
)
def test_display_and_full(text: str, display: str, full: str) -> None:
    name = ModelName.parse(text)
    assert name.display == display
    assert str(name) == display
    assert name.full == full
    assert ModelName.parse(display).key == name.key


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("m", "registry.ollama.ai/library/m/latest"),
        ("u/m:t", "registry.ollama.ai/u/m/t"),
        ("hf.co/u/r:Q4_K_M", "hf.co/u/r/Q4_K_M"),
        ("localhost:5000/ns/m", "localhost:5000/ns/m/latest"),
    ],
)
def test_manifest_path_is_four_plain_parts(text: str, path: str) -> None:
    name = ModelName.parse(text)
    assert name.manifest_path == PurePosixPath(path)
    assert len(name.manifest_path.parts) == 4
    assert not name.manifest_path.is_absolute()
    assert ".." not in name.manifest_path.parts


def test_repository() -> None:
    assert ModelName.parse("hf.co/u/r:Q4_K_M").repository == "u/r"
    assert ModelName.parse("m").repository == "library/m"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("tiny", "TINY:LATEST"),
        ("User/NS:V1", "user/ns:v1"),
        ("HF.CO/U/R:q4_k_m", "hf.co/u/r:Q4_K_M"),
        ("library/m", "Registry.Ollama.AI/LIBRARY/M:Latest"),
    ],
)
def test_key_is_case_insensitive(a: str, b: str) -> None:
    first, second = ModelName.parse(a), ModelName.parse(b)
    assert first.key == second.key
    assert first != second or a == b  # the spelling itself is kept


@pytest.mark.parametrize(("a", "b"), [("m:1", "m:2"), ("u/m", "v/m"), ("h.io/u/m", "g.io/u/m"), ("m", "mm")])
def test_different_names_have_different_keys(a: str, b: str) -> None:
    assert ModelName.parse(a).key != ModelName.parse(b).key


def test_parse_keeps_the_given_casing() -> None:
    name = ModelName.parse("User/Model:Tag")
    assert (name.namespace, name.model, name.tag) == ("User", "Model", "Tag")
    assert name.display == "User/Model:Tag"
