"""Where a model lives in a registry: base URL, repository and tag, derived from an Ollama model name.

``registry.internal:5000/team/smollm2:135m`` is the repository ``team/smollm2`` with the tag ``135m`` on the
registry ``registry.internal:5000``; a name without a host is on ``registry.ollama.ai`` in the namespace
``library``. The scheme is https unless the name says ``http://`` or the request sets ``insecure``, exactly as
Ollama decides it; an ``http://`` name without ``insecure`` is refused (``insecure protocol http``).
"""

from __future__ import annotations

from dataclasses import dataclass

from server.registry.errors import InsecureProtocol
from server.store.blobs import Digest
from server.store.names import ModelName


@dataclass(frozen=True)
class Reference:
    """A tag in a registry repository. ``name`` is the model name it came from (its scheme is ignored here:
    ``scheme`` is the one the request resolved to)."""

    name: ModelName
    scheme: str

    @classmethod
    def of(cls, name: ModelName, *, insecure: bool) -> Reference:
        """The reference for ``name``; ``insecure`` switches to plain http, as Ollama's ``insecure`` does."""
        if name.scheme == "http" and not insecure:
            raise InsecureProtocol()
        return cls(name=name, scheme="http" if insecure else name.scheme)

    @property
    def host(self) -> str:
        return self.name.host

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.name.host}"

    @property
    def repository(self) -> str:
        """``namespace/model``: the repository path in ``/v2/<repository>/...``."""
        return self.name.repository

    @property
    def tag(self) -> str:
        return self.name.tag

    def manifest_url(self) -> str:
        return f"{self.base_url}/v2/{self.repository}/manifests/{self.tag}"

    def blob_url(self, digest: Digest) -> str:
        return f"{self.base_url}/v2/{self.repository}/blobs/{digest}"

    def uploads_url(self) -> str:
        return f"{self.base_url}/v2/{self.repository}/blobs/uploads/"

    def scope(self, actions: str) -> str:
        """A token scope for this repository, e.g. ``repository:library/smollm2:pull,push``."""
        return f"repository:{self.repository}:{actions}"

    def __str__(self) -> str:
        return f"{self.host}/{self.repository}:{self.tag}"
