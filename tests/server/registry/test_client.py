"""What the registry client decides from a blob's location: whether it is served from this machine."""

from __future__ import annotations

import pytest

from server.registry.client import BlobLocation
from server.registry.transport import TlsContext


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:5000/v2/library/m/blobs/sha256:ab", True),
        ("http://127.8.9.10/v2/x", True),
        ("http://[::1]:5000/v2/x", True),
        ("http://localhost:5000/v2/x", True),
        ("http://LOCALHOST/v2/x", True),
        ("http://registry.localhost/v2/x", True),
        ("https://registry.ollama.ai/v2/library/m/blobs/sha256:ab", False),
        ("https://10.0.0.5:5000/v2/x", False),
        ("http://[2001:db8::1]/v2/x", False),
        ("https://storage.example/blob?X-Amz-Signature=1", False),
    ],
)
def test_loopback_locations_are_recognised(url: str, loopback: bool) -> None:
    assert BlobLocation(url=url, headers={}, tls=TlsContext().get).loopback is loopback
