"""``OLLAMA_*`` parsing: defaults from the seed's table, Ollama's host/duration/bool rules, clear errors."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from server.errors import SettingsError
from server.settings import HostAddress, Settings, parse_bool, parse_duration, parse_host, parse_keep_alive


def test_defaults_match_the_seed_table() -> None:
    settings = Settings.from_env({})
    assert settings.host == HostAddress("http", "127.0.0.1", 11434)
    assert settings.host.url == "http://127.0.0.1:11434"
    assert settings.models == Path("~/.ollama/models").expanduser()
    assert settings.num_parallel == 1
    assert settings.max_loaded_models == 1
    assert settings.keep_alive == 300.0
    assert settings.max_queue == 512
    assert settings.flash_attention is None  # unset: llama.cpp decides
    assert settings.kv_cache_type == "f16"
    assert settings.gpu_overhead == 0
    assert settings.noprune is False
    assert settings.debug == 0
    assert settings.origins == ()


def test_describe_lists_every_variable_with_its_default() -> None:
    rows = {env: default for env, default, _ in Settings.describe()}
    assert rows["OLLAMA_HOST"] == "127.0.0.1:11434"
    assert rows["OLLAMA_NUM_PARALLEL"] == "1"
    assert rows["OLLAMA_MAX_LOADED_MODELS"] == "1"
    assert rows["OLLAMA_MAX_QUEUE"] == "512"
    assert rows["OLLAMA_FLASH_ATTENTION"] == ""  # unset: llama.cpp decides
    assert rows["OLLAMA_KV_CACHE_TYPE"] == "f16"
    assert rows["OLLAMA_NOPRUNE"] == "0"
    assert rows["OLLAMA_ORIGINS"] == ""


def test_empty_and_blank_values_take_the_default() -> None:
    settings = Settings.from_env({"OLLAMA_NUM_PARALLEL": "", "OLLAMA_HOST": "  ", "OLLAMA_KEEP_ALIVE": '""'})
    assert settings == Settings.from_env({})


def test_values_are_read_from_the_mapping() -> None:
    settings = Settings.from_env(
        {
            "OLLAMA_HOST": "0.0.0.0:11434",
            "OLLAMA_MODELS": "/data/models",
            "OLLAMA_NUM_PARALLEL": "4",
            "OLLAMA_MAX_LOADED_MODELS": "2",
            "OLLAMA_KEEP_ALIVE": "10m",
            "OLLAMA_MAX_QUEUE": "16",
            "OLLAMA_FLASH_ATTENTION": "1",
            "OLLAMA_KV_CACHE_TYPE": "Q8_0",
            "OLLAMA_GPU_OVERHEAD": "1073741824",
            "OLLAMA_NOPRUNE": "true",
            "OLLAMA_DEBUG": "2",
            "OLLAMA_ORIGINS": "http://a.example, https://b.example ,,",
        }
    )
    assert settings.host == HostAddress("http", "0.0.0.0", 11434)
    assert settings.models == Path("/data/models")
    assert (settings.num_parallel, settings.max_loaded_models, settings.max_queue) == (4, 2, 16)
    assert settings.keep_alive == 600.0
    assert settings.flash_attention is True
    assert settings.kv_cache_type == "q8_0"
    assert settings.gpu_overhead == 1 << 30
    assert settings.noprune is True
    assert settings.debug == 2
    assert settings.origins == ("http://a.example", "https://b.example")


def test_models_expands_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert Settings.from_env({"OLLAMA_MODELS": "~/m"}).models == tmp_path / "m"


def test_from_env_defaults_to_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_NUM_PARALLEL", "3")
    assert Settings.from_env().num_parallel == 3


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", ("http", "127.0.0.1", 11434)),
        ("0.0.0.0", ("http", "0.0.0.0", 11434)),
        ("0.0.0.0:11434", ("http", "0.0.0.0", 11434)),
        (":8080", ("http", "", 8080)),
        ("localhost", ("http", "localhost", 11434)),
        ("example.com:1234", ("http", "example.com", 1234)),
        ("http://host:9000", ("http", "host", 9000)),
        ("https://h", ("https", "h", 443)),
        ("http://h", ("http", "h", 80)),
        ("https://h:8443/some/path", ("https", "h", 8443)),
        ("http://", ("http", "127.0.0.1", 80)),
        ("ollama.com", ("https", "ollama.com", 443)),
        ("h:99999", ("http", "h", 11434)),
        ("h:-1", ("http", "h", 11434)),
        ("h:abc", ("http", "h", 11434)),
        ("h:", ("http", "h", 11434)),
        ("https://h:70000", ("https", "h", 443)),
        ("::1", ("http", "::1", 11434)),
        ("[::1]", ("http", "::1", 11434)),
        ("[::1]:8080", ("http", "::1", 8080)),
        ('"0.0.0.0:9000"', ("http", "0.0.0.0", 9000)),
        ("  '127.0.0.1:7000'  ", ("http", "127.0.0.1", 7000)),
        (' " http://h:1 " ', ("http", "h", 1)),
    ],
    ids=lambda v: repr(v) if isinstance(v, str) else None,
)
def test_parse_host(value: str, expected: tuple[str, str, int]) -> None:
    assert parse_host(value) == HostAddress(*expected)


@pytest.mark.parametrize(
    ("host", "url"),
    [
        (HostAddress("http", "", 8080), "http://127.0.0.1:8080"),
        (HostAddress("https", "h", 443), "https://h:443"),
        (HostAddress("http", "::1", 11434), "http://[::1]:11434"),
    ],
)
def test_host_url(host: HostAddress, url: str) -> None:
    assert host.url == url


def test_host_from_env_is_trimmed() -> None:
    assert Settings.from_env({"OLLAMA_HOST": ' "0.0.0.0:8080" '}).host == HostAddress("http", "0.0.0.0", 8080)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("300", 300.0),
        ("0", 0.0),
        ("300ms", 0.3),
        ("1.5h", 5400.0),
        ("-1", math.inf),
        ("-1m", math.inf),
        ("-5", math.inf),
    ],
)
def test_keep_alive(value: str, seconds: float) -> None:
    assert parse_keep_alive(value) == pytest.approx(seconds)
    assert Settings.from_env({"OLLAMA_KEEP_ALIVE": value}).keep_alive == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5m", 300.0), ("1h30m", 5400.0), ("1m30s", 90.0), ("300ms", 0.3), (".5s", 0.5), ("-1m", -60.0), ("0", 0.0)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("300", 'time: missing unit in duration "300"'),
        ("5x", 'time: invalid duration "5x"'),
        ("", 'time: invalid duration ""'),
        ("-", 'time: invalid duration "-"'),
    ],
)
def test_parse_duration_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration(text)
    assert str(info.value) == message


TRUE_VALUES = ["1", "t", "T", "TRUE", "true", "True", "yes", "on", "2", "anything"]
FALSE_VALUES = ["0", "f", "F", "FALSE", "false", "False"]


@pytest.mark.parametrize("value", TRUE_VALUES)
def test_bool_true(value: str) -> None:
    assert parse_bool(value) is True
    settings = Settings.from_env({"OLLAMA_FLASH_ATTENTION": value, "OLLAMA_NOPRUNE": value})
    assert settings.flash_attention is True
    assert settings.noprune is True


@pytest.mark.parametrize("value", FALSE_VALUES)
def test_bool_false(value: str) -> None:
    assert parse_bool(value) is False
    settings = Settings.from_env({"OLLAMA_FLASH_ATTENTION": value, "OLLAMA_NOPRUNE": value})
    assert settings.flash_attention is False
    assert settings.noprune is False


@pytest.mark.parametrize(
    ("value", "level"),
    [("1", 1), ("true", 1), ("T", 1), ("2", 2), ("0", 0), ("false", 0), ("info", 0), ("-1", -1)],
)
def test_debug_level(value: str, level: int) -> None:
    assert Settings.from_env({"OLLAMA_DEBUG": value}).debug == level


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OLLAMA_NUM_PARALLEL", "abc"),
        ("OLLAMA_NUM_PARALLEL", "-1"),
        ("OLLAMA_MAX_LOADED_MODELS", "1.5"),
        ("OLLAMA_MAX_QUEUE", "many"),
        ("OLLAMA_GPU_OVERHEAD", "1GB"),
        ("OLLAMA_KV_CACHE_TYPE", "q5"),
        ("OLLAMA_KV_CACHE_TYPE", "f32"),
        ("OLLAMA_KEEP_ALIVE", "forever"),
        ("OLLAMA_KEEP_ALIVE", "1.5"),
        ("OLLAMA_CONTEXT_LENGTH", "4k"),
    ],
)
def test_bad_values_raise_settings_error_naming_the_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({variable: value})
    assert variable in str(info.value)
    assert value in str(info.value)
