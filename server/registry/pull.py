"""Pull a model from a registry into the store, with Ollama's progress lines and order of work.

``pulling manifest`` -> per blob (layers, then config) ``pulling <12 hex>`` with ``total``/``completed`` ->
``verifying sha256 digest`` -> ``writing manifest`` -> (``removing unused layers``) -> ``success``.

Blobs already in the store are not fetched; each new one is verified before it is renamed into ``blobs/`` (see
``download``). The small blobs (config, template, license, params: up to 1 MiB each) are fetched into memory
on a thread pool from the start, beside the large ones, so their round trips do not add to the pull's time;
their progress lines still come in the manifest's order, and they are written (together, so their fsyncs
overlap) only once every large blob is in place. The manifest is written last, byte for byte as the registry
served it, as Ollama's pull writes it (the body it read, nothing added or removed: a manifest Ollama pushed
has no trailing newline, so its pulled copy has none either, while one Ollama created locally ends in one); so
the model's digest is the registry's. It is written only when every blob it names is in place: a pull that
fails or dies leaves no manifest and no unverified blob, only partial files for the next pull to resume.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from server.registry.client import RegistryClient, RegistryOptions
from server.registry.download import SMALL_BLOB, BlobDownload
from server.registry.errors import PinMismatch, RegistryError
from server.registry.progress import LayerProgress, Progress, Report
from server.registry.reference import Reference
from server.store.blobs import Digest
from server.store.manifest import Layer, Manifest
from server.store.names import ModelName
from server.store.store import Store


@dataclass(frozen=True)
class Pulled:
    """What a pull did: the manifest digest (hex) and the blobs it downloaded."""

    digest: str
    downloaded: tuple[Digest, ...]


def pull_model(
    store: Store,
    name: ModelName,
    options: RegistryOptions,
    report: Report,
    *,
    local_name: ModelName | None = None,
    expected_digest: str | None = None,
) -> Pulled:
    """Pull ``name`` and store it as ``local_name`` (default: ``name``).

    ``expected_digest`` (manifest digest, hex) pins the pull: a registry serving any other manifest raises
    ``PinMismatch`` before a byte of a blob is fetched. Registry failures raise ``RegistryError``s with
    Ollama's texts (``pull model manifest: file does not exist`` for a missing tag).
    """
    reference = Reference.of(name, insecure=options.insecure)
    target = local_name or name
    report(Progress("pulling manifest"))
    with RegistryClient(reference, options, scopes=(reference.scope("pull"),)) as client:
        data, manifest = _fetch_manifest(client)
        digest = Digest.from_bytes(data).hex
        if expected_digest is not None and digest != expected_digest:
            raise PinMismatch(
                f"{reference} has manifest digest {digest}, but {expected_digest} was pinned; "
                "update the pin or push the pinned model to the registry"
            )
        with store.lock(exclusive=False):
            previous = store.get(target)
            downloaded = _pull_blobs(client, store, _blobs(manifest), report)
            report(Progress("verifying sha256 digest"))
            report(Progress("writing manifest"))
            store.write_manifest_bytes(target, data)
    if previous is not None:
        replaced = previous.manifest.digests() - manifest.digests()
        if replaced and not store.noprune:
            report(Progress("removing unused layers"))
            store.remove_unreferenced(replaced)
    report(Progress("success"))
    return Pulled(digest=digest, downloaded=tuple(downloaded))


def _fetch_manifest(client: RegistryClient) -> tuple[bytes, Manifest]:
    try:
        data = client.get_manifest()
        return data, Manifest.decode(data)
    except RegistryError as exc:
        raise _prefixed(exc) from None
    except ValueError as exc:
        raise RegistryError(f"pull model manifest: {exc}") from exc


def _prefixed(exc: RegistryError) -> RegistryError:
    """Ollama prefixes every manifest failure; keep the error's class (so its status) and add the prefix."""
    exc.message = f"pull model manifest: {exc.message}"
    exc.args = (exc.message,)
    return exc


def _blobs(manifest: Manifest) -> list[Layer]:
    """Layers then config, each digest once (a config may repeat a layer's digest)."""
    seen: set[Digest] = set()
    out = []
    for layer in [*manifest.layers, manifest.config]:
        if layer.digest not in seen:
            seen.add(layer.digest)
            out.append(layer)
    return out


def _pull_blobs(client: RegistryClient, store: Store, layers: list[Layer], report: Report) -> list[Digest]:
    """Fetch every layer not in the store yet, reporting progress layer by layer in order; returns the
    digests downloaded. The small ones are fetched at once on a pool and written last, so a pull that fails
    writes none of them; a failure of one is raised when its turn comes."""
    small = [layer for layer in layers if layer.size <= SMALL_BLOB]
    with ThreadPoolExecutor(max_workers=max(len(small), 1), thread_name_prefix="pull-small") as pool:
        fetching = {layer.digest: pool.submit(_fetch_small, client, store, layer) for layer in small}
        downloaded: list[Digest] = []
        fetched: list[bytes] = []
        try:
            for layer in layers:
                progress = LayerProgress(report, "pulling", layer.digest, layer.size)
                future = fetching.get(layer.digest)
                if future is None and BlobDownload(client, store.blobs, layer.digest, layer.size, progress).run():
                    downloaded.append(layer.digest)
                elif future is not None and (data := future.result()) is not None:
                    downloaded.append(layer.digest)
                    fetched.append(data)
                progress.finish()
        finally:
            for future in fetching.values():
                future.cancel()
        list(pool.map(store.blobs.write_bytes, fetched))
    return downloaded


def _fetch_small(client: RegistryClient, store: Store, layer: Layer) -> bytes | None:
    """A small layer's verified bytes, or None when the store has it."""
    if store.blobs.exists(layer.digest):
        return None
    return BlobDownload(client, store.blobs, layer.digest, layer.size, lambda _: None).fetch_small()
