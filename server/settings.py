"""Server settings: the only module that reads the environment.

Every setting comes from an ``OLLAMA_*`` variable (Ollama's names and parsing, defaults from the seed's
environment table) or a ``CORRAL_*`` variable for what Ollama does not have. ``Settings.from_env()`` is called
once at start; from there values are passed explicitly. A value that cannot be used raises ``SettingsError``
naming the variable, so a misconfigured pod fails at start instead of misbehaving later.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from server.errors import SettingsError

T = TypeVar("T")

DEFAULT_PORT = 11434
FOREVER_SECONDS = math.inf

_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_SCHEME_PORTS = {"http": 80, "https": 443}
_INTEGER = re.compile(r"[+-]?[0-9]+")
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


@dataclass(frozen=True)
class HostAddress:
    """Where the server listens or where the CLI connects: ``scheme://host:port``."""

    scheme: str
    host: str
    port: int

    @property
    def url(self) -> str:
        host = self.host or "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"{self.scheme}://{host}:{self.port}"


def parse_host(value: str) -> HostAddress:
    """Parse ``OLLAMA_HOST`` as Ollama does.

    ``[scheme://]host[:port][/path]``; no scheme means http; with an explicit ``http://`` the default port is
    80 and with ``https://`` 443, otherwise 11434; a bare ``ollama.com`` means ``https://ollama.com:443``;
    ``:8080`` means all interfaces; a bare IP (``::1``, ``[::1]``) or host name keeps the default port; an
    unparsable or out-of-range port falls back to the default. An empty value is ``127.0.0.1:11434``.
    """
    raw = _clean(value)
    scheme, sep, hostport = raw.partition("://")
    default_port = DEFAULT_PORT
    if not sep:
        scheme, hostport = "http", raw
        if raw == "ollama.com":
            scheme, hostport = "https", "ollama.com:443"
    elif scheme in _SCHEME_PORTS:
        default_port = _SCHEME_PORTS[scheme]
    hostport = hostport.split("/", 1)[0]
    split = _split_host_port(hostport)
    if split is None:
        port_text = ""
        try:
            host = str(ipaddress.ip_address(hostport.strip("[]")))
        except ValueError:
            host = hostport or "127.0.0.1"
    else:
        host, port_text = split
    port = int(port_text) if _INTEGER.fullmatch(port_text) else -1
    if not 0 <= port <= 65535:
        port = default_port
    return HostAddress(scheme, host, port)


def _split_host_port(hostport: str) -> tuple[str, str] | None:
    """Go's ``net.SplitHostPort``: ``host:port`` or ``[ipv6]:port``; None when there is no port separator or
    the host has unbracketed colons."""
    host, sep, port = hostport.rpartition(":")
    if not sep:
        return None
    if host.startswith("["):
        if not host.endswith("]"):
            return None
        host = host[1:-1]
    elif ":" in host or "]" in host:
        return None
    return host, port


def parse_duration(value: str) -> float:
    """Parse a Go duration (``5m``, ``1h30m``, ``300ms``, ``-1m``, ``0``) into seconds.

    Raises ``ValueError`` with Go's message for a string without units, e.g. ``time: missing unit in duration
    "300"``. Negative durations are returned as they are; callers decide that negative means forever.
    """
    text = value.strip()
    sign = 1.0
    body = text
    if body[:1] in "+-" and body:
        sign = -1.0 if body[0] == "-" else 1.0
        body = body[1:]
    if body == "0":
        return 0.0
    if not body:
        raise ValueError(f'time: invalid duration "{value}"')
    pos = 0
    total = 0.0
    while pos < len(body):
        match = _DURATION_PART.match(body, pos)
        if match is None:
            if re.fullmatch(r"[0-9.]+", body[pos:]):
                raise ValueError(f'time: missing unit in duration "{value}"')
            raise ValueError(f'time: invalid duration "{value}"')
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    return sign * total


def parse_keep_alive(value: str) -> float:
    """``OLLAMA_KEEP_ALIVE``: a Go duration, else integer seconds; negative means forever (``inf``)."""
    try:
        seconds = parse_duration(value)
    except ValueError:
        seconds = float(int(value))
    return FOREVER_SECONDS if seconds < 0 else seconds


def parse_bool(value: str) -> bool:
    """Ollama's boolean variables: Go ParseBool, and an unparsable non-empty value counts as true."""
    return value not in {"0", "f", "F", "FALSE", "false", "False"}


def _clean(value: str) -> str:
    return value.strip().strip("\"'").strip()


def _debug_level(value: str) -> int:
    # Ollama: a true ParseBool value is debug, else an integer is the level (2 = trace), anything else info.
    if value in {"1", "t", "T", "TRUE", "true", "True"}:
        return 1
    return int(value) if _INTEGER.fullmatch(value) else 0


def _non_negative_int(value: str) -> int:
    number = int(value)
    if number < 0:
        raise ValueError("must not be negative")
    return number


def _kv_cache_type(value: str) -> str:
    kind = value.lower()
    if kind not in {"f16", "q8_0", "q4_0"}:
        raise ValueError("must be one of f16, q8_0, q4_0")
    return kind


def _origins(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


def _dirs(value: str) -> tuple[Path, ...]:
    return tuple(Path(item.strip()).expanduser().resolve() for item in value.split(",") if item.strip())


def _models_dir(value: str) -> Path:
    return Path(value).expanduser()


def _keys(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


def _seconds(value: str) -> float:
    """A Go duration (``30s``, ``2m``) or a number of seconds; never negative."""
    try:
        seconds = parse_duration(value)
    except ValueError:
        seconds = float(value)
    if seconds < 0 or not math.isfinite(seconds):
        raise ValueError("must be a non-negative duration such as 30s")
    return seconds


def _log_format(value: str) -> str:
    kind = value.lower()
    if kind not in {"text", "json"}:
        raise ValueError("must be text or json")
    return kind


@dataclass(frozen=True)
class _Var:
    env: str
    parse: Callable[[str], Any]
    description: str


def _var(env: str, parse: Callable[[str], Any], default: Any, description: str) -> Any:
    return field(default=default, metadata={"var": _Var(env, parse, description)})


@dataclass(frozen=True)
class Settings:
    """Every setting of the server and CLI, with its environment variable and meaning (``describe()``)."""

    host: HostAddress = _var(
        "OLLAMA_HOST", parse_host, HostAddress("http", "127.0.0.1", DEFAULT_PORT), "Bind address and port"
    )
    models: Path = _var("OLLAMA_MODELS", _models_dir, Path("~/.ollama/models").expanduser(), "Model store directory")
    num_parallel: int = _var("OLLAMA_NUM_PARALLEL", _non_negative_int, 1, "Concurrent request slots per model")
    max_loaded_models: int = _var(
        "OLLAMA_MAX_LOADED_MODELS", _non_negative_int, 1, "Maximum models loaded at once (0 = 3 on CPU)"
    )
    keep_alive: float = _var("OLLAMA_KEEP_ALIVE", parse_keep_alive, 300.0, "Default keep-alive (seconds)")
    max_queue: int = _var("OLLAMA_MAX_QUEUE", _non_negative_int, 512, "Maximum queued requests per model")
    context_length: int = _var(
        "OLLAMA_CONTEXT_LENGTH", _non_negative_int, 0, "Default num_ctx (0 = the PARAMETER default)"
    )
    flash_attention: bool | None = _var(
        "OLLAMA_FLASH_ATTENTION", parse_bool, None, "Flash attention: 1 on, 0 off; unset lets llama.cpp decide"
    )
    kv_cache_type: str = _var("OLLAMA_KV_CACHE_TYPE", _kv_cache_type, "f16", "KV cache type: f16, q8_0, q4_0")
    gpu_overhead: int = _var("OLLAMA_GPU_OVERHEAD", _non_negative_int, 0, "GPU memory (bytes) kept free")
    noprune: bool = _var("OLLAMA_NOPRUNE", parse_bool, False, "Do not prune unused blobs")
    debug: int = _var("OLLAMA_DEBUG", _debug_level, 0, "Debug logging (1 = debug, 2 = trace)")
    origins: tuple[str, ...] = _var("OLLAMA_ORIGINS", _origins, (), "Extra allowed CORS origins (comma list)")
    catalog: Path | None = _var(
        "CORRAL_CATALOG", _models_dir, None, "Catalog whose preload models load at start and num_parallel applies"
    )
    registry_username: str = _var(
        "CORRAL_REGISTRY_USERNAME", str, "", "Username for every registry (pull/push); else the Docker config's"
    )
    registry_password: str = field(
        default="",
        repr=False,
        metadata={"var": _Var("CORRAL_REGISTRY_PASSWORD", str, "Password for CORRAL_REGISTRY_USERNAME")},
    )
    docker_config: Path = _var(
        "DOCKER_CONFIG",
        _models_dir,
        Path("~/.docker").expanduser(),
        "Folder of the Docker config.json (registry logins)",
    )
    load_timeout: float = _var(
        "OLLAMA_LOAD_TIMEOUT", parse_keep_alive, 300.0, "How long a model load may take (seconds; <=0 = forever)"
    )
    import_dirs: tuple[Path, ...] = _var(
        "CORRAL_IMPORT_DIRS",
        _dirs,
        (),
        "Server directories a client's legacy Modelfile may name in FROM/ADAPTER (comma list; default none)",
    )

    api_keys: tuple[str, ...] = field(
        default=(),
        repr=False,
        metadata={
            "var": _Var(
                "CORRAL_API_KEYS", _keys, "API keys (comma list): every request then needs Authorization: Bearer <key>"
            )
        },
    )
    api_keys_file: Path | None = _var(
        "CORRAL_API_KEYS_FILE", _models_dir, None, "File of API keys, one per line (re-read when it changes)"
    )
    metrics: bool = _var("CORRAL_METRICS", parse_bool, True, "Serve Prometheus metrics on /metrics")
    metrics_auth: bool = _var("CORRAL_METRICS_AUTH", parse_bool, False, "With API keys on, /metrics needs a key too")
    drain_timeout: float = _var(
        "CORRAL_DRAIN_TIMEOUT", _seconds, 30.0, "On SIGTERM, how long running requests may finish (seconds)"
    )
    step_timeout: float = _var(
        "CORRAL_STEP_TIMEOUT", _seconds, 120.0, "A compute step running longer fails /healthz (seconds)"
    )
    max_request_bytes: int = _var(
        "CORRAL_MAX_REQUEST_BYTES",
        _non_negative_int,
        64 * 2**20,
        "Largest JSON request body in bytes (blob uploads stream and are not limited; 0 = no limit)",
    )
    log_format: str = _var("CORRAL_LOG_FORMAT", _log_format, "text", "Request log lines: text or json")
    api_key: str = field(
        default="",
        repr=False,
        metadata={"var": _Var("OLLAMA_API_KEY", str, "Key the corral CLI sends (Authorization: Bearer)")},
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read every variable from ``environ`` (default: the process environment).

        Unset and empty variables take the default. Raises ``SettingsError`` naming the variable and the value.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            var: _Var = f.metadata["var"]
            raw = env.get(var.env)
            if raw is None or not _clean(raw):
                continue
            try:
                values[f.name] = var.parse(_clean(raw))
            except (ValueError, OverflowError) as exc:
                raise SettingsError(f"{var.env}={raw!r} is not valid: {exc}") from exc
        return cls(**values)

    @classmethod
    def describe(cls) -> list[tuple[str, str, str]]:
        """``(variable, default, meaning)`` for every setting, for ``corral serve --help`` and the README."""
        rows = []
        for f in fields(cls):
            var: _Var = f.metadata["var"]
            rows.append((var.env, _show_default(f.default), var.description))
        return rows


def _show_default(value: Any) -> str:
    if isinstance(value, HostAddress):
        return f"{value.host}:{value.port}"
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, tuple):
        return ",".join(str(item) for item in value)
    return str(value)
