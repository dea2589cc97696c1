"""Model names to registry references: URLs, repository, scope, and the insecure-protocol rule."""

from __future__ import annotations

import pytest

from server.registry.errors import InsecureProtocol
from server.registry.reference import Reference
from server.store.blobs import Digest
from server.store.names import ModelName

DIGEST = Digest("ab" * 32)


@pytest.mark.parametrize(
    ("name", "insecure", "manifest_url"),
    [
        ("smollm2:135m", False, "https://registry.ollama.ai/v2/library/smollm2/manifests/135m"),
        ("team/m", False, "https://registry.ollama.ai/v2/team/m/manifests/latest"),
        ("reg.internal:5000/a/b:1", True, "http://reg.internal:5000/v2/a/b/manifests/1"),
        ("http://reg.internal:5000/a/b:1", True, "http://reg.internal:5000/v2/a/b/manifests/1"),
        ("https://reg.internal/a/b:1", False, "https://reg.internal/v2/a/b/manifests/1"),
    ],
    ids=["default-host", "namespace", "insecure", "http-scheme-with-insecure", "https-scheme"],
)
def test_reference_urls(name: str, insecure: bool, manifest_url: str) -> None:
    reference = Reference.of(ModelName.parse(name), insecure=insecure)
    assert reference.manifest_url() == manifest_url
    base = manifest_url.split("/manifests/")[0]
    assert reference.blob_url(DIGEST) == f"{base}/blobs/sha256:{'ab' * 32}"
    assert reference.uploads_url() == f"{base}/blobs/uploads/"


def test_scope_names_the_repository() -> None:
    reference = Reference.of(ModelName.parse("reg:5000/team/m:1"), insecure=True)
    assert reference.scope("pull,push") == "repository:team/m:pull,push"
    assert str(reference) == "reg:5000/team/m:1"


def test_http_name_without_insecure_is_refused() -> None:
    with pytest.raises(InsecureProtocol, match=r"^insecure protocol http$"):
        Reference.of(ModelName.parse("http://reg:5000/a/b:1"), insecure=False)
