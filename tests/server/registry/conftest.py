"""Real CNCF distribution registries on loopback, one per configuration and test session.

``open_registry`` has no auth, ``basic_registry`` uses htpasswd (bcrypt) with ``USER``/``PASSWORD``,
``token_registry`` trusts a token service of the tests' own (``token_server.py``) that knows the same user.
Tests that kill a registry get their own (``fresh_registry``). Without the ``docker-registry`` binary
(``apt-get install docker-registry``; ``make test`` installs it) every test here is skipped, saying so.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import bcrypt
import pytest

from server.registry.auth import Credentials, CredentialStore
from server.registry.client import RegistryOptions
from server.registry.local import LocalRegistry, find_binary
from server.store.names import ModelName
from server.store.store import Store
from tests.server.conftest import free_port, seed_store

from .token_server import TokenServer
from .wire_proxy import WireProxy

USER = "corral"
PASSWORD = "s3cret-pässword"


@pytest.fixture(scope="session")
def registry_binary() -> str:
    binary = find_binary()
    if binary is None:
        pytest.skip("docker-registry is not installed: apt-get install docker-registry (make test installs it)")
    return binary


def _started(root: Path, binary: str, auth: dict[str, object] | None = None) -> LocalRegistry:
    registry = LocalRegistry(root, free_port(), auth=auth, binary=binary)
    registry.start()
    return registry


@pytest.fixture(scope="session")
def open_registry(tmp_path_factory: pytest.TempPathFactory, registry_binary: str) -> Iterator[LocalRegistry]:
    registry = _started(tmp_path_factory.mktemp("open-registry"), registry_binary)
    yield registry
    registry.stop()


@pytest.fixture(scope="session")
def basic_registry(tmp_path_factory: pytest.TempPathFactory, registry_binary: str) -> Iterator[LocalRegistry]:
    root = tmp_path_factory.mktemp("basic-registry")
    htpasswd = root / "htpasswd"
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=5)).decode()
    htpasswd.write_text(f"{USER}:{hashed}\n")
    registry = _started(root, registry_binary, {"htpasswd": {"realm": "corral-test", "path": str(htpasswd)}})
    yield registry
    registry.stop()


@pytest.fixture(scope="session")
def token_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenServer]:
    server = TokenServer(tmp_path_factory.mktemp("token-service"), {USER: PASSWORD})
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def token_registry(
    tmp_path_factory: pytest.TempPathFactory, registry_binary: str, token_service: TokenServer
) -> Iterator[LocalRegistry]:
    registry = _started(tmp_path_factory.mktemp("token-registry"), registry_binary, token_service.registry_auth())
    yield registry
    registry.stop()


@pytest.fixture
def fresh_registry(tmp_path: Path, registry_binary: str) -> Iterator[LocalRegistry]:
    """A registry of this test alone (it may be killed and restarted)."""
    registry = _started(tmp_path / "registry", registry_binary)
    yield registry
    registry.stop()


@pytest.fixture
def proxy_to() -> Iterator[Callable[[LocalRegistry], WireProxy]]:
    proxies: list[WireProxy] = []

    def start(registry: LocalRegistry) -> WireProxy:
        proxy = WireProxy(registry.port)
        proxy.start()
        proxies.append(proxy)
        return proxy

    yield start
    for proxy in proxies:
        proxy.stop()


@pytest.fixture
def repo_name() -> str:
    """A repository name no other test uses, so session registries can be shared."""
    return f"test/smollm2-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def seeded(tmp_path: Path, smollm2_path: Path) -> Callable[[str], Store]:
    """``seeded(name)``: a store in this test's tmp folder holding smollm2 under ``name``."""

    def make(name: str, folder: str = "source-store") -> Store:
        root = tmp_path / folder
        seed_store(root, smollm2_path, name)
        return Store(root)

    return make


def name_on(host: str, repository: str, tag: str = "135m") -> ModelName:
    return ModelName.parse(f"{host}/{repository}:{tag}")


def options(*, credentials: Credentials | None = None, **kwargs: object) -> RegistryOptions:
    """Options for loopback registries: plain http, credentials given explicitly (never from ~/.docker)."""
    return RegistryOptions(insecure=True, credentials=CredentialStore(credentials), **kwargs)  # type: ignore[arg-type]


def store_files(root: Path) -> dict[str, str]:
    """Every file under ``manifests/`` and ``blobs/`` with the sha256 of its bytes (stores are compared so)."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.relative_to(root).parts[0] in ("manifests", "blobs")
    }
