"""API keys: with ``CORRAL_API_KEYS`` or ``CORRAL_API_KEYS_FILE`` set, every request needs ``Authorization:
Bearer <key>``; a missing or wrong key gets 401 with ``WWW-Authenticate: Bearer``, in the dialect's error shape.

- The keys file has one key per line (blank lines and ``#`` comments ignored), so a Kubernetes Secret can be
  mounted as a volume. It is checked on every request (a ``stat``) and re-read when it changed: a rotated Secret
  takes effect without a restart. A file that cannot be read keeps the keys read last (and says so in the log);
  one missing at start is a settings error.
- Keys are compared in constant time, each against every configured key, so the answer's timing says nothing
  about which key was close. A key is never logged: logs and metrics see its id, the first 8 hex digits of its
  SHA-256.
- ``/``, ``/healthz``, ``/readyz`` (probes cannot send a Secret's key) and, unless ``CORRAL_METRICS_AUTH``,
  ``/metrics`` stay open, as do CORS preflights (browsers send them without credentials).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from server.errors import SettingsError, Unauthorized

log = logging.getLogger(__name__)

OPEN_PATHS = frozenset({"/", "/healthz", "/readyz"})


def key_id(key: str) -> str:
    """What logs and metrics show of a key."""
    return hashlib.sha256(key.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class _Key:
    digest: bytes
    id: str


def _entry(key: str) -> _Key:
    return _Key(hashlib.sha256(key.encode()).digest(), key_id(key))


class ApiKeys:
    """The configured keys: fixed ones plus those of a file that may change while the server runs."""

    def __init__(self, keys: Iterable[str] = (), file: Path | None = None) -> None:
        self._fixed = [_entry(key) for key in keys]
        self._file = file
        self._stamp: tuple[int, int, int] | None = None
        self._from_file: list[_Key] = []
        if file is not None:
            try:
                self._reload(file)
            except OSError as exc:
                raise SettingsError(f"CORRAL_API_KEYS_FILE={str(file)!r} cannot be read: {exc}") from exc

    @property
    def enabled(self) -> bool:
        """Whether requests need a key. A configured file turns keys on even while it is empty (fail closed)."""
        return bool(self._fixed) or self._file is not None

    def check(self, authorization: str | None) -> str:
        """The key id of a valid ``Authorization`` header value; raises Unauthorized otherwise."""
        if not authorization:
            raise Unauthorized("missing API key: send the header 'Authorization: Bearer <key>'")
        scheme, _, presented = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            raise Unauthorized("the Authorization header must be 'Bearer <key>'")
        digest = hashlib.sha256(presented.strip().encode()).digest()
        match = ""
        for key in self._keys():  # no early exit: every key is compared
            if hmac.compare_digest(digest, key.digest):
                match = key.id
        if not match:
            raise Unauthorized("invalid API key")
        return match

    def _keys(self) -> list[_Key]:
        if self._file is not None:
            try:
                self._reload(self._file)
            except OSError as exc:
                log.warning("cannot read the API keys file %s (%s); keeping the keys read before", self._file, exc)
        return [*self._fixed, *self._from_file]

    def _reload(self, file: Path) -> None:
        info = os.stat(file)
        stamp = (info.st_ino, info.st_mtime_ns, info.st_size)
        if stamp == self._stamp:
            return
        lines = file.read_text(encoding="utf-8").splitlines()
        self._from_file = [_entry(line.strip()) for line in lines if line.strip() and not line.lstrip().startswith("#")]
        self._stamp = stamp
        log.info("read %d API key(s) from %s", len(self._from_file), file)


def needs_key(method: str, path: str, *, metrics_open: bool) -> bool:
    """Whether a request to ``path`` must carry a key when keys are on."""
    if method == "OPTIONS" or path in OPEN_PATHS:
        return False
    return not (path == "/metrics" and metrics_open)
