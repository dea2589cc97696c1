"""The registry's HTTP API (OCI distribution v2) as Corral uses it, on one ``httpx.Client`` per transfer.

Every method maps the answer the way Ollama's ``makeRequestWithRetry`` does: 404 is ``file does not exist``,
a 401 that survives authentication is ``unauthorized: access denied``, any other status from 400 up is
``<status>: <body>``; a network failure names the request. Redirects are followed (a registry may send blob
GETs to object storage); httpx drops the ``Authorization`` header when a redirect leaves the registry's
origin, so credentials never reach the storage host.
"""

from __future__ import annotations

import ipaddress
import ssl
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from server import __version__
from server.registry.auth import Credentials, CredentialStore, RegistryAuth
from server.registry.errors import RegistryError, RegistryNotFound, RetryableStatus, TransportFailure, Unauthorized
from server.registry.reference import Reference
from server.registry.transport import LazyTlsTransport, TlsContext
from server.settings import Settings
from server.store.blobs import Digest
from server.store.manifest import MANIFEST_MEDIA_TYPE

USER_AGENT = f"corral/{__version__} (python httpx/{httpx.__version__})"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DEFAULT_PARALLEL = 4
MANIFEST_ACCEPT = f"{MANIFEST_MEDIA_TYPE}, {OCI_MANIFEST}"


@dataclass(frozen=True)
class RegistryOptions:
    """How a transfer talks to registries. The defaults are what a pull or push from the API uses.

    ``parallel`` ranged requests download one blob. Left at None, a blob served from a loopback address
    (a local registry or mirror) comes over one connection, since one stream there already delivers bytes
    faster than sha256 can hash them and more streams only compete with the hash for the CPU (and arrive out
    of order, to be read back for it); a blob from anywhere else comes in ``DEFAULT_PARALLEL`` parts, to fill
    the links that one TCP stream does not. A part is retried ``retries`` times (with backoff from
    ``backoff`` seconds, doubling, at most 8 s) and the count starts again whenever bytes arrive; a
    connection that delivers nothing for ``read_timeout`` seconds counts as a failed attempt. Setting
    ``cancel`` stops a transfer at the next chunk; a download keeps its partial file for the next pull.
    ``zero_copy`` lets the kernel move plain-HTTP blob bodies from the socket into the file (see ``ranged``);
    off, every byte passes through Python's buffers as over TLS.
    """

    insecure: bool = False
    credentials: CredentialStore = field(default_factory=CredentialStore)
    parallel: int | None = None
    retries: int = 6
    backoff: float = 0.5
    connect_timeout: float = 30.0
    read_timeout: float = 30.0
    cancel: threading.Event | None = None
    zero_copy: bool = True


def registry_options(settings: Settings, *, insecure: bool, cancel: threading.Event | None = None) -> RegistryOptions:
    """The options of a pull or push: credentials from the settings, ``insecure`` from the request."""
    explicit = None
    if settings.registry_username:
        explicit = Credentials(settings.registry_username, settings.registry_password)
    credentials = CredentialStore(explicit, settings.docker_config / "config.json")
    return RegistryOptions(insecure=insecure, credentials=credentials, cancel=cancel)


@dataclass(frozen=True)
class BlobLocation:
    """A blob's direct URL, the headers its ranged GETs carry and the TLS context they use (see ``ranged``)."""

    url: str
    headers: dict[str, str]
    tls: Callable[[], ssl.SSLContext]

    @property
    def loopback(self) -> bool:
        """Whether the URL's host is this machine: ``localhost`` or a loopback address (127/8, ::1)."""
        host = (httpx.URL(self.url).host or "").lower()
        if host == "localhost" or host.endswith(".localhost"):
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False


class RegistryClient:
    """One repository on one registry; close it (or use ``with``) to release its connections."""

    def __init__(self, reference: Reference, options: RegistryOptions, *, scopes: tuple[str, ...]) -> None:
        self.reference = reference
        self.options = options
        timeout = httpx.Timeout(options.read_timeout, connect=options.connect_timeout)
        connections = (options.parallel or DEFAULT_PARALLEL) + 4
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        headers = {"User-Agent": USER_AGENT}
        self.tls = TlsContext()
        self._token_client = httpx.Client(
            timeout=timeout, headers=headers, follow_redirects=True, transport=LazyTlsTransport(self.tls, limits)
        )
        self.auth = RegistryAuth(
            options.credentials.for_host(reference.host), scopes=scopes, token_client=self._token_client
        )
        self._http = httpx.Client(
            timeout=timeout,
            headers=headers,
            follow_redirects=True,
            auth=self.auth,
            transport=LazyTlsTransport(self.tls, limits),
        )

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()
        self._token_client.close()

    # -- manifests ---------------------------------------------------------------------------------------

    def get_manifest(self) -> bytes:
        """The manifest bytes exactly as the registry serves them."""
        response = self._request("GET", self.reference.manifest_url(), headers={"Accept": MANIFEST_ACCEPT})
        return response.content

    def put_manifest(self, data: bytes, media_type: str) -> str:
        """Upload a manifest under the reference's tag; returns the digest the registry reports (or computes
        it when the registry does not say)."""
        response = self._request(
            "PUT", self.reference.manifest_url(), content=data, headers={"Content-Type": media_type}
        )
        return response.headers.get("Docker-Content-Digest") or str(Digest.from_bytes(data))

    # -- blobs -------------------------------------------------------------------------------------------

    def blob_exists(self, digest: Digest) -> bool:
        response = self._request("HEAD", self.reference.blob_url(digest), allow=(404,))
        return response.status_code == 200

    def get_blob(self, digest: Digest) -> bytes:
        """A whole (small) blob in memory, e.g. the config or a template layer."""
        return self._request("GET", self.reference.blob_url(digest)).content

    def locate_blob(self, digest: Digest) -> BlobLocation:
        """Where the blob's bytes are served: the URL after the registry's redirects (object storage, a CDN)
        and the ``Authorization`` to send there (none once a redirect left the registry's origin). Found with
        a one-byte ranged GET, as Ollama finds its direct URL before fetching the parts."""
        request = self._http.build_request("GET", self.reference.blob_url(digest), headers={"Range": "bytes=0-0"})
        response = self._send(request, stream=True)
        try:
            _raise_for_status(response, allow=())
            final = response.request
        finally:
            response.close()
        headers = {"User-Agent": USER_AGENT}
        if "Authorization" in final.headers:
            headers["Authorization"] = final.headers["Authorization"]
        return BlobLocation(url=str(final.url), headers=headers, tls=self.tls.get)

    def start_upload(self, mount: tuple[Digest, str] | None = None) -> tuple[bool, str]:
        """Open an upload session: ``(False, location)``. With ``mount=(digest, repository)`` the registry may
        link the blob from that repository instead: ``(True, location)``."""
        params = {"mount": str(mount[0]), "from": mount[1]} if mount else None
        response = self._request("POST", self.reference.uploads_url(), params=params)
        location = self._location(response)
        return response.status_code == 201, location

    def patch_upload(self, location: str, body: Iterable[bytes], start: int, length: int) -> str:
        """Send one chunk of a chunked upload (chunks in order); returns the location for the next one."""
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Range": f"{start}-{start + length - 1}",
            "Content-Length": str(length),
        }
        response = self._request("PATCH", location, content=body, headers=headers)
        return self._location(response)

    def finish_upload(self, location: str, digest: Digest, body: Iterable[bytes] | bytes, length: int) -> None:
        """Close an upload session with its last bytes (all of them for a monolithic upload)."""
        url = httpx.URL(location).copy_merge_params({"digest": str(digest)})
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(length)}
        response = self._request("PUT", str(url), content=body, headers=headers)
        reported = response.headers.get("Docker-Content-Digest")
        if reported and reported != str(digest):
            raise RegistryError(f"the registry stored {reported} for blob {digest}")

    # -- plumbing ----------------------------------------------------------------------------------------

    def _location(self, response: httpx.Response) -> str:
        location = response.headers.get("Docker-Upload-Location") or response.headers.get("Location")
        if not location:
            raise RegistryError(f"{response.request.method} {response.request.url}: the registry sent no Location")
        return str(response.request.url.join(location))

    def _request(self, method: str, url: str, *, allow: tuple[int, ...] = (), **kwargs: Any) -> httpx.Response:
        request = self._http.build_request(method, url, **kwargs)
        response = self._send(request, stream=False)
        _raise_for_status(response, allow=allow)
        return response

    def _send(self, request: httpx.Request, *, stream: bool) -> httpx.Response:
        try:
            return self._http.send(request, stream=stream)
        except httpx.HTTPError as exc:
            raise TransportFailure(f'{request.method} "{request.url}": {exc or type(exc).__name__}') from exc


def _raise_for_status(response: httpx.Response, *, allow: tuple[int, ...]) -> None:
    status = response.status_code
    if status < 400 or status in allow:
        return
    if status == 404:
        response.close()
        raise RegistryNotFound()
    if status == 401:
        response.close()
        raise Unauthorized()
    body = response.read().decode("utf-8", errors="replace").strip()
    message = f"{status}: {body}" if body else str(status)
    if status >= 500 or status == 429:
        raise RetryableStatus(message)
    raise RegistryError(message)
