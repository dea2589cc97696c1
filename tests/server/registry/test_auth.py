"""Authentication: challenge parsing, Docker config credentials, and pulls and pushes against a real
registry behind htpasswd and behind the tests' own token service."""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from server.registry.auth import Challenge, Credentials, CredentialStore
from server.registry.errors import RegistryError, Unauthorized
from server.registry.local import LocalRegistry
from server.registry.pull import pull_model
from server.registry.push import push_model
from server.settings import Settings
from server.store.names import ModelName
from server.store.store import Store
from tests.server.conftest import LiveServer, free_port

from .conftest import PASSWORD, USER, options
from .token_server import TokenServer


@pytest.mark.parametrize(
    ("header", "scheme", "params"),
    [
        (
            'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"',
            "bearer",
            {"realm": "https://auth.example/token", "service": "registry.example", "scope": "repository:a/b:pull,push"},
        ),
        ('Basic realm="corral test"', "basic", {"realm": "corral test"}),
        ("Bearer realm=https://auth/token, service=reg", "bearer", {"realm": "https://auth/token", "service": "reg"}),
        ('Bearer realm="a\\"b",error="invalid_token"', "bearer", {"realm": 'a"b', "error": "invalid_token"}),
        ("Basic", "basic", {}),
    ],
    ids=["bearer-with-scope", "basic", "unquoted", "escaped-quote", "no-params"],
)
def test_challenge_parse(header: str, scheme: str, params: dict[str, str]) -> None:
    challenge = Challenge.parse(header)
    assert challenge is not None
    assert (challenge.scheme, dict(challenge.params)) == (scheme, params)


def test_challenge_scopes_split_on_spaces() -> None:
    challenge = Challenge.parse('Bearer realm="r",scope="repository:a:pull repository:b:pull,push"')
    assert challenge is not None and challenge.scopes == ["repository:a:pull", "repository:b:pull,push"]


def test_docker_config_credentials(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    encoded = base64.b64encode(b"alice:pa:ss").decode()
    config.write_text(
        json.dumps(
            {
                "auths": {
                    "https://registry.example:5000/v1/": {"auth": encoded},
                    "other.example": {"username": "bob", "password": "pw"},
                },
                "credsStore": "desktop",
            }
        )
    )
    store = CredentialStore(docker_config=config)
    assert store.for_host("registry.example:5000") == Credentials("alice", "pa:ss")
    assert store.for_host("OTHER.example") == Credentials("bob", "pw")
    assert store.for_host("unknown.example") is None
    assert CredentialStore(docker_config=tmp_path / "absent.json").for_host("x") is None
    explicit = Credentials("env", "pw")
    assert CredentialStore(explicit, config).for_host("registry.example:5000") == explicit
    config.write_text("{not json")
    with pytest.raises(RegistryError, match="cannot read registry credentials"):
        store.for_host("registry.example:5000")


def _round_trip(registry: LocalRegistry, seeded: Callable[..., Store], repository: str, tmp_path: Path) -> None:
    name = ModelName.parse(f"{registry.host}/{repository}:135m")
    source = seeded(name.display)
    credentials = Credentials(USER, PASSWORD)
    pushed = push_model(source, name, options(credentials=credentials), lambda _: None)
    target = Store(tmp_path / "target")
    pulled = pull_model(target, name, options(credentials=credentials), lambda _: None)
    assert pushed.digest == f"sha256:{pulled.digest}"
    stored = target.get(name)
    assert stored is not None and all(target.blobs.verify(d) for d in stored.manifest.digests())


@pytest.mark.slow
def test_basic_auth_push_and_pull(basic_registry: LocalRegistry, seeded, repo_name: str, tmp_path: Path) -> None:
    _round_trip(basic_registry, seeded, repo_name, tmp_path)


@pytest.mark.slow
def test_basic_auth_wrong_or_missing_password_is_unauthorized(basic_registry: LocalRegistry, tmp_path: Path) -> None:
    name = ModelName.parse(f"{basic_registry.host}/library/anything:1")
    for credentials in (Credentials(USER, "wrong"), None):
        with pytest.raises(Unauthorized) as caught:
            pull_model(Store(tmp_path / "s"), name, options(credentials=credentials), lambda _: None)
        assert str(caught.value) == "pull model manifest: unauthorized: access denied"


@pytest.mark.slow
def test_token_auth_push_and_pull(
    token_registry: LocalRegistry, token_service: TokenServer, seeded, repo_name: str, tmp_path: Path
) -> None:
    token_service.requests.clear()
    _round_trip(token_registry, seeded, repo_name, tmp_path)
    scopes = [scope for request in token_service.requests for scope in request["query"].get("scope", [])]
    assert f"repository:{repo_name}:pull,push" in scopes
    assert all(request["user"] == USER for request in token_service.requests)
    # One token per transfer (the push asked for pull,push up front), not one per request.
    assert len(token_service.requests) <= 4, token_service.requests


@pytest.mark.slow
def test_token_auth_wrong_password_surfaces_the_token_service_401(
    token_registry: LocalRegistry, tmp_path: Path
) -> None:
    name = ModelName.parse(f"{token_registry.host}/library/anything:1")
    with pytest.raises(RegistryError) as caught:
        pull_model(Store(tmp_path / "s"), name, options(credentials=Credentials(USER, "wrong")), lambda _: None)
    assert str(caught.value).startswith("pull model manifest: 401: ")
    assert "invalid credentials" in str(caught.value)


@pytest.mark.slow
def test_token_auth_anonymous_is_unauthorized(token_registry: LocalRegistry, tmp_path: Path) -> None:
    name = ModelName.parse(f"{token_registry.host}/library/anything:1")
    with pytest.raises(Unauthorized, match=r"^pull model manifest: unauthorized: access denied$"):
        pull_model(Store(tmp_path / "s"), name, options(), lambda _: None)


@pytest.mark.slow
def test_api_pull_and_push_take_credentials_from_settings(
    basic_registry: LocalRegistry, seeded, repo_name: str, tmp_path: Path
) -> None:
    model = f"{basic_registry.host}/{repo_name}:135m"
    source = seeded(model)
    docker = tmp_path / "docker"
    docker.mkdir()
    encoded = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    (docker / "config.json").write_text(json.dumps({"auths": {basic_registry.host: {"auth": encoded}}}))
    nowhere = str(tmp_path / "no-docker-config")
    body = {"model": model, "insecure": True, "stream": False}

    with _server(source.root, DOCKER_CONFIG=str(docker)) as http:
        assert http.post("/api/push", json=body).json() == {"status": "success"}
    with _server(tmp_path / "anonymous", DOCKER_CONFIG=nowhere) as http:
        refused = http.post("/api/pull", json=body)
        assert refused.status_code == 500
        assert refused.json() == {"error": "pull model manifest: unauthorized: access denied"}
    env = {"DOCKER_CONFIG": nowhere, "CORRAL_REGISTRY_USERNAME": USER, "CORRAL_REGISTRY_PASSWORD": PASSWORD}
    with _server(tmp_path / "from-env", **env) as http:
        assert http.post("/api/pull", json=body).json() == {"status": "success"}


@contextlib.contextmanager
def _server(models: Path, **env: str) -> Iterator[httpx.Client]:
    settings = Settings.from_env({"OLLAMA_HOST": f"127.0.0.1:{free_port()}", "OLLAMA_MODELS": str(models), **env})
    server = LiveServer(settings)
    server.start()
    try:
        with server.client() as http:
            yield http
    finally:
        server.stop()
