"""Pushes against a real registry: blobs it has are skipped, blobs another repository of it has are
mounted, the rest uploaded (monolithic and chunked); a re-pull of a changed tag removes replaced layers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from server.registry.local import LocalRegistry
from server.registry.progress import Progress
from server.registry.pull import pull_model
from server.registry.push import push_model
from server.registry.upload import CHUNKED_ABOVE, Outcome
from server.store.create import CreateSpec, create_model
from server.store.manifest import MediaType
from server.store.names import ModelName
from server.store.store import Store

from .conftest import options

pytestmark = pytest.mark.slow


def test_push_uploads_then_skips_then_mounts(
    open_registry: LocalRegistry, seeded: Callable[..., Store], repo_name: str, tmp_path: Path
) -> None:
    first = ModelName.parse(f"{open_registry.host}/{repo_name}:135m")
    source = seeded(first.display)
    stored = source.get(first)
    assert stored is not None
    weights = stored.manifest.find(MediaType.MODEL)
    assert weights is not None and weights.size > CHUNKED_ABOVE  # the chunked path is exercised

    pushed = push_model(source, first, options(), lambda _: None)
    assert set(pushed.blobs.values()) == {Outcome.UPLOADED}
    again = push_model(source, first, options(), lambda _: None)
    assert set(again.blobs.values()) == {Outcome.EXISTS}

    # A store that pulled the model from this registry knows where its blobs live: pushing it to another
    # repository there mounts every blob instead of sending it.
    mirror = Store(tmp_path / "mirror")
    pull_model(mirror, first, options(), lambda _: None)
    second = ModelName.parse(f"{open_registry.host}/{repo_name}-copy:135m")
    events: list[Progress] = []
    mounted = push_model(mirror, first, options(), events.append, remote_name=second)
    assert set(mounted.blobs.values()) == {Outcome.MOUNTED}
    assert mounted.digest == pushed.digest
    layer_lines = [e for e in events if e.digest]
    assert len(layer_lines) == len(mounted.blobs) and all(e.completed == e.total for e in layer_lines)


def test_repull_of_a_changed_tag_removes_replaced_layers(
    open_registry: LocalRegistry, seeded: Callable[..., Store], repo_name: str, tmp_path: Path
) -> None:
    name = ModelName.parse(f"{open_registry.host}/{repo_name}:135m")
    source = seeded(name.display)
    push_model(source, name, options(), lambda _: None)
    target = Store(tmp_path / "target")
    pull_model(target, name, options(), lambda _: None)
    old = target.get(name)
    assert old is not None

    create_model(source, CreateSpec(name=name, from_=name.display, system="You answer in French."), lambda _: None)
    push_model(source, name, options(), lambda _: None)
    events: list[Progress] = []
    pull_model(target, name, options(), events.append)
    new = target.get(name)
    assert new is not None and new.digest != old.digest
    statuses = [e.status for e in events if not e.digest]
    assert statuses[-2:] == ["removing unused layers", "success"]
    replaced = old.manifest.digests() - new.manifest.digests()
    assert replaced and not any(target.blobs.exists(d) for d in replaced)
    assert all(target.blobs.exists(d) for d in new.manifest.digests())


def test_a_failed_upload_starts_over_and_completes(
    open_registry: LocalRegistry, seeded: Callable[..., Store], repo_name: str, proxy_to
) -> None:
    proxy = proxy_to(open_registry)
    name = ModelName.parse(f"{proxy.host}/{repo_name}:135m")
    source = seeded(name.display)
    proxy.fail_method, proxy.failures = "PATCH", 2
    pushed = push_model(source, name, options(backoff=0.01), lambda _: None)
    assert proxy.failures == 0 and set(pushed.blobs.values()) == {Outcome.UPLOADED}
    target = Store(source.root.parent / "target")
    pull_model(target, name, options(), lambda _: None)
    stored = target.get(name)
    assert stored is not None and all(target.blobs.verify(d) for d in stored.manifest.digests())
