"""Registry authentication: anonymous, HTTP basic, and bearer tokens from a token service.

A request goes out without credentials (or with what the host asked for last time); a 401 carries a
``WWW-Authenticate`` challenge:

* ``Basic realm=...``: the request is repeated once with the host's username and password.
* ``Bearer realm=...,service=...,scope=...``: a token is fetched from ``realm`` with ``service`` and every
  ``scope`` (the challenge's, plus the ones the operation needs, so one token covers a whole push), sending
  the username and password as basic auth when there are some, anonymously otherwise; the JSON answer's
  ``token`` (or ``access_token``) is sent as ``Authorization: Bearer`` on the repeated request and on later
  requests to the same host.

A second 401 is ``unauthorized: access denied``, a token service answering an error status is
``<status>: <body>``: Ollama's texts. Credentials come from ``CORRAL_REGISTRY_USERNAME`` /
``CORRAL_REGISTRY_PASSWORD`` (every registry) or else from the ``auths`` section of a Docker config file
(``$DOCKER_CONFIG/config.json``, ``~/.docker/config.json`` by default: ``auth`` as base64 ``user:password``, or
``username`` and ``password``). Credential helpers (``credsStore``, ``credHelpers``) and identity tokens are
not run or used. Ollama's own scheme for registry.ollama.ai (a token request signed with the local ed25519 key
in ``~/.ollama/id_ed25519``) is not implemented: it cannot be tested without that registry, so public Ollama
models are pulled anonymously, which registry.ollama.ai allows for pulls.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from server.registry.errors import RegistryError, Unauthorized

log = logging.getLogger(__name__)

_PARAM = re.compile(r'\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')


@dataclass(frozen=True)
class Challenge:
    """One parsed ``WWW-Authenticate`` challenge: the scheme (lower case) and its parameters."""

    scheme: str
    params: Mapping[str, str]

    @classmethod
    def parse(cls, header: str) -> Challenge | None:
        """Parse ``Bearer realm="https://auth",service="reg",scope="repository:a/b:pull,push"``; quoted values
        may hold commas and backslash escapes. Returns None for an empty or unparsable header."""
        scheme, _, rest = header.strip().partition(" ")
        if not scheme:
            return None
        params: dict[str, str] = {}
        pos = 0
        while pos < len(rest):
            match = _PARAM.match(rest, pos)
            if match is None or match.end() == pos:
                break
            quoted, bare = match.group(2), match.group(3)
            value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare or ""
            params[match.group(1).lower()] = value
            pos = match.end()
        return cls(scheme=scheme.lower(), params=params)

    @property
    def scopes(self) -> list[str]:
        return [s for s in self.params.get("scope", "").split(" ") if s]


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def basic(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()


class CredentialStore:
    """Finds the credentials for a registry host: the explicit pair for every host, else the Docker config."""

    def __init__(self, explicit: Credentials | None = None, docker_config: Path | None = None) -> None:
        self.explicit = explicit
        self.docker_config = docker_config

    def for_host(self, host: str) -> Credentials | None:
        if self.explicit is not None:
            return self.explicit
        if self.docker_config is None:
            return None
        return _docker_config_entry(self.docker_config, host)


def _docker_config_entry(path: Path, host: str) -> Credentials | None:
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise RegistryError(f"cannot read registry credentials from {path}: {exc}") from exc
    auths = raw.get("auths") if isinstance(raw, dict) else None
    if not isinstance(auths, dict):
        return None
    for key, entry in auths.items():
        if _config_host(str(key)) != host.lower() or not isinstance(entry, dict):
            continue
        if entry.get("auth"):
            try:
                decoded = base64.b64decode(str(entry["auth"])).decode()
            except (ValueError, UnicodeDecodeError) as exc:
                raise RegistryError(f"{path}: the auth entry for {key} is not base64 'user:password'") from exc
            username, sep, password = decoded.partition(":")
            if sep:
                return Credentials(username, password)
        if entry.get("username") is not None:
            return Credentials(str(entry["username"]), str(entry.get("password", "")))
    return None


def _config_host(key: str) -> str:
    """``https://registry.example:5000/v1/`` -> ``registry.example:5000``, as Docker normalises keys."""
    host = key.split("://", 1)[-1]
    return host.split("/", 1)[0].lower()


class RegistryAuth(httpx.Auth):
    """httpx auth flow for one registry host, shared by the threads of one transfer.

    ``scopes`` are added to every token request (a push asks for ``pull,push`` up front, so the token fetched
    for its first HEAD also covers the uploads). Tokens and the basic scheme are remembered per instance, so
    each request after the first goes out already authorised.
    """

    def __init__(
        self, credentials: Credentials | None, *, scopes: tuple[str, ...] = (), token_client: httpx.Client
    ) -> None:
        self.credentials = credentials
        self.scopes = scopes
        self._token_client = token_client
        self._lock = threading.Lock()
        self._header: str | None = None
        self._generation = 0

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        with self._lock:
            header, generation = self._header, self._generation
        if header is not None:
            request.headers["Authorization"] = header
        response = yield request
        if response.status_code != 401:
            return
        challenge = Challenge.parse(response.headers.get("www-authenticate", ""))
        header = self._answer(challenge, generation)
        if header is None:
            return
        request.headers["Authorization"] = header
        response = yield request
        if response.status_code == 401:
            response.read()
            raise Unauthorized()

    def _answer(self, challenge: Challenge | None, seen: int) -> str | None:
        """The Authorization header for a challenge; None when there is nothing to answer with (the 401 then
        stands). Threads that hit the same 401 together fetch one token between them."""
        with self._lock:
            if self._generation != seen and self._header is not None:
                return self._header
            if challenge is None:
                return None
            if challenge.scheme == "basic":
                if self.credentials is None:
                    return None
                header = self.credentials.basic()
            elif challenge.scheme == "bearer":
                header = "Bearer " + self._token(challenge)
            else:
                return None
            self._header = header
            self._generation += 1
            return header

    def _token(self, challenge: Challenge) -> str:
        realm = challenge.params.get("realm", "")
        if not realm:
            raise RegistryError("the registry asked for a bearer token without naming a realm")
        scopes = list(dict.fromkeys([*challenge.scopes, *self.scopes]))
        params = httpx.QueryParams([("service", challenge.params.get("service", "")), *(("scope", s) for s in scopes)])
        headers = {"Authorization": self.credentials.basic()} if self.credentials else {}
        try:
            response = self._token_client.get(realm, params=params, headers=headers)
        except httpx.HTTPError as exc:
            raise RegistryError(f"token request to {realm} failed: {exc}") from exc
        if response.status_code >= 400:
            body = response.text.strip()
            raise RegistryError(f"{response.status_code}: {body}" if body else str(response.status_code))
        try:
            payload = response.json()
        except ValueError as exc:
            raise RegistryError(f"token service {realm} answered something that is not JSON") from exc
        token = payload.get("token") or payload.get("access_token") if isinstance(payload, dict) else None
        if not isinstance(token, str) or not token:
            raise RegistryError(f"token service {realm} answered without a token")
        log.debug("registry token for %s", scopes)
        return token
