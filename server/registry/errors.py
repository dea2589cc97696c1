"""Errors of the registry client, with Ollama's texts.

Ollama reports every registry failure as a 500 whose text names what failed (``pull model manifest: file does
not exist``, ``unauthorized: access denied``, ``<status>: <body>``), so these are ``InternalError``\\ s; the
message is the wire text, prefixed by the operation where Ollama prefixes it.
"""

from __future__ import annotations

from server.errors import BadRequest, InternalError


class RegistryError(InternalError):
    """A registry request failed: refused, unreachable, or answered with an error status."""


class TransportFailure(RegistryError):
    """The registry could not be reached, or the connection broke: worth another attempt."""


class RetryableStatus(RegistryError):
    """A 5xx or 429 answer: the registry (or a proxy before it) is struggling; worth another attempt."""


class LocationExpired(RetryableStatus):
    """A blob's direct URL answered 401 or 403: a token or a signed storage URL ran out during a long pull.
    The blob is located again (a fresh token, a fresh signature) and the part retried."""


class RegistryNotFound(RegistryError):
    """The registry has no such manifest or blob (Ollama's ``os.ErrNotExist``)."""

    def __init__(self, message: str = "file does not exist") -> None:
        super().__init__(message)


class Unauthorized(RegistryError):
    """The registry still answers 401 after the credentials (or token) were tried."""

    def __init__(self, message: str = "unauthorized: access denied") -> None:
        super().__init__(message)


class BlobDigestMismatch(RegistryError):
    """Downloaded bytes do not hash to the digest the manifest names; the download was removed."""

    def __init__(self, expected: str, got: str) -> None:
        super().__init__(f"digest mismatch, file must be downloaded again: want {expected}, got {got}")
        self.expected = expected
        self.got = got


class InsecureProtocol(RegistryError):
    """An ``http://`` name without ``insecure: true``."""

    def __init__(self) -> None:
        super().__init__("insecure protocol http")


class PinMismatch(BadRequest):
    """A pull whose manifest digest differs from the digest it was pinned to."""


class TransferCanceled(RegistryError):
    """The client went away; the partial download stays for the next pull to resume."""

    def __init__(self) -> None:
        super().__init__("pull canceled")
