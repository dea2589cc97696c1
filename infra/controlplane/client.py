"""A small JSON client for the test cluster's API server (a static bearer token over loopback TLS)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

T = TypeVar("T")


class KubeError(RuntimeError):
    """The API server answered with an error status; ``status`` is the HTTP code."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class KubeClient:
    """GET/POST/DELETE on API paths (``/api/v1/nodes``) as the cluster admin.

    The API server's serving certificate is self-signed and only ever reached on 127.0.0.1, so it is not verified.
    """

    def __init__(self, server: str, token: str, timeout: float = 30.0) -> None:
        self.server = server
        self._http = httpx.Client(
            base_url=server, headers={"Authorization": f"Bearer {token}"}, verify=False, timeout=timeout
        )

    def close(self) -> None:
        self._http.close()

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        if response.status_code >= 400:
            try:
                message = str(response.json().get("message", response.text))
            except ValueError:
                message = response.text
            raise KubeError(response.status_code, message)
        body: dict[str, Any] = response.json()
        return body

    def get(self, path: str, **params: str) -> dict[str, Any]:
        return self._json(self._http.get(path, params=params))

    def create(self, path: str, manifest: dict[str, Any]) -> dict[str, Any]:
        return self._json(self._http.post(path, json=manifest))

    def delete(self, path: str) -> None:
        response = self._http.delete(path)
        if response.status_code != 404:
            self._json(response)

    def items(self, path: str, **params: str) -> list[dict[str, Any]]:
        """The ``items`` of a list call (``/api/v1/namespaces/x/pods``)."""
        items: list[dict[str, Any]] = self.get(path, **params).get("items") or []
        return items

    def healthy(self, check: str = "/readyz") -> bool:
        try:
            return self._http.get(check).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_for(self, probe: Callable[[], T | None], timeout: float, what: str) -> T:
        """Call ``probe`` until it returns something other than ``None`` (or falsy); ``TimeoutError`` names
        ``what`` otherwise."""
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            try:
                result = probe()
                if result:
                    return result
            except (KubeError, httpx.HTTPError) as exc:
                last_error = exc
            time.sleep(0.5)
        suffix = f" (last error: {last_error})" if last_error else ""
        raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}{suffix}")
