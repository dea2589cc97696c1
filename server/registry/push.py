"""Push a model from the store to a registry, with Ollama's progress lines.

``retrieving manifest`` -> per blob (layers, then config) ``pushing <12 hex>`` with ``total``/``completed``
(one line with total == completed when the registry already had it or mounted it) -> ``pushing manifest`` ->
``success``.

The manifest sent is the JSON Ollama sends: its ``PushModel`` re-encodes the manifest with Go's
``json.Marshal`` (compact, fields in struct order, no trailing newline) rather than sending the file, which
``create`` wrote with a trailing newline. So a model pushed by Corral or by Ollama is the same manifest in the
registry, with the same digest. The price, Ollama's too: a model created locally and pulled back has that
digest, not the local one (the file differs by its last byte); a pulled model pushes back byte for byte.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from server.errors import ModelNotFound
from server.registry.client import RegistryClient, RegistryOptions
from server.registry.errors import RetryableStatus, TransportFailure
from server.registry.progress import LayerProgress, Progress, Report
from server.registry.reference import Reference
from server.registry.upload import Outcome, upload_blob
from server.store.blobs import Digest
from server.store.manifest import Manifest
from server.store.names import ModelName
from server.store.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pushed:
    """What a push did: the manifest digest the registry holds (``sha256:<hex>``) and each blob's fate."""

    digest: str
    blobs: dict[Digest, Outcome]


def wire_manifest(manifest: Manifest) -> bytes:
    """The manifest bytes Ollama's push sends: Go's ``json.Marshal`` of the manifest (no newline)."""
    return manifest.encode().rstrip(b"\n")


def push_model(
    store: Store,
    name: ModelName,
    options: RegistryOptions,
    report: Report,
    *,
    remote_name: ModelName | None = None,
) -> Pushed:
    """Push the stored model ``name`` to ``remote_name`` (default: ``name``, whose host is the registry).

    Raises ``ModelNotFound`` when the store has no such model, ``RegistryError``s with Ollama's texts when
    the registry refuses.
    """
    report(Progress("retrieving manifest"))
    target = remote_name or name
    reference = Reference.of(target, insecure=options.insecure)
    stored = store.get(name)
    if stored is None:
        report(Progress("couldn't retrieve manifest"))
        raise ModelNotFound(f"model '{name.display}' not found")
    manifest = stored.manifest
    mounts = _mount_sources(store, reference)
    outcomes: dict[Digest, Outcome] = {}
    with RegistryClient(reference, options, scopes=(reference.scope("pull,push"),)) as client:
        for layer in [*manifest.layers, manifest.config]:
            if layer.digest in outcomes:
                continue
            progress = LayerProgress(report, "pushing", layer.digest, layer.size)
            sources = mounts.get(layer.digest, [])
            outcomes[layer.digest] = _upload_retrying(client, store, layer.digest, progress, sources)
            progress.finish()
        report(Progress("pushing manifest"))
        digest = client.put_manifest(wire_manifest(manifest), manifest.media_type)
    report(Progress("success"))
    return Pushed(digest=digest, blobs=outcomes)


def _upload_retrying(
    client: RegistryClient, store: Store, digest: Digest, progress: LayerProgress, sources: list[str]
) -> Outcome:
    """``upload_blob``, started over in a new upload session when the connection fails or the registry
    answers 5xx (an interrupted session cannot be trusted to hold what was sent), ``retries`` times with
    doubling back-off."""
    options = client.options
    for attempt in range(options.retries + 1):
        try:
            return upload_blob(client, store.blobs, digest, progress, mount_from=sources)
        except (TransportFailure, RetryableStatus) as exc:
            if attempt == options.retries:
                raise
            log.info("uploading %s: %s; starting over", digest, exc)
            time.sleep(min(options.backoff * 2**attempt, 8.0))
    raise AssertionError("unreachable")


def _mount_sources(store: Store, reference: Reference) -> dict[Digest, list[str]]:
    """For each blob, the other repositories on the same registry that the store's models came from (and so
    hold it there): candidates for a cross-repository mount."""
    sources: dict[Digest, list[str]] = {}
    for stored in store.all():
        name = stored.name
        if name.host.lower() != reference.host.lower() or name.repository == reference.repository:
            continue
        for digest in stored.manifest.digests():
            repositories = sources.setdefault(digest, [])
            if name.repository not in repositories:
                repositories.append(name.repository)
    return sources
