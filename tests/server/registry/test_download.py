"""Downloads under faults, against a real registry: the registry killed mid-pull, the puller killed
mid-pull, a byte flipped on the wire, a redirect to another origin; and the part plan."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from server.registry.errors import BlobDigestMismatch
from server.registry.local import LocalRegistry
from server.registry.parts import MIN_PART, plan_parts
from server.registry.progress import Progress
from server.registry.pull import pull_model
from server.registry.push import push_model
from server.store.blobs import Digest
from server.store.manifest import MediaType
from server.store.names import ModelName
from server.store.store import Store

from .conftest import options, store_files
from .wire_proxy import WireProxy

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    ("total", "parallel", "sizes"),
    [
        (0, 4, [0]),
        (10, 4, [10]),
        (MIN_PART * 2, 4, [MIN_PART, MIN_PART]),
        (MIN_PART * 8 + 1, 4, [MIN_PART * 2 + 1] * 3 + [MIN_PART * 2 - 2]),
        (MIN_PART * 3, 1, [MIN_PART * 3]),
    ],
    ids=["empty", "tiny", "two-min-parts", "uneven", "one-connection"],
)
def test_plan_parts_covers_the_blob(total: int, parallel: int, sizes: list[int]) -> None:
    parts = plan_parts(total, parallel)
    assert [p.size for p in parts] == sizes
    assert [p.offset for p in parts] == [sum(sizes[:i]) for i in range(len(sizes))]


def _pushed(registry: LocalRegistry, seeded: Callable[..., Store], repository: str) -> tuple[ModelName, Store]:
    name = ModelName.parse(f"{registry.host}/{repository}:135m")
    source = seeded(name.display)
    push_model(source, name, options(), lambda _: None)
    return name, source


def _model_digest(store: Store, name: ModelName) -> tuple[Digest, int]:
    stored = store.get(name)
    assert stored is not None
    layer = stored.manifest.find(MediaType.MODEL)
    assert layer is not None
    return layer.digest, layer.size


def _via(proxy: WireProxy, name: ModelName) -> ModelName:
    return ModelName.parse(f"{proxy.host}/{name.repository}:{name.tag}")


# Both data paths (see ``server.registry.ranged``): the kernel splicing the body into the file, and Python's
# buffers (what TLS takes).
PATHS = pytest.mark.parametrize("zero_copy", [True, False], ids=["spliced", "buffered"])


@pytest.mark.slow
@PATHS
def test_registry_killed_mid_pull_resumes_from_the_partial_file(
    fresh_registry: LocalRegistry, seeded, proxy_to, repo_name: str, tmp_path: Path, zero_copy: bool
) -> None:
    name, source = _pushed(fresh_registry, seeded, repo_name)
    digest, size = _model_digest(source, name)
    proxy = proxy_to(fresh_registry)
    proxy.rate = 5e6
    target = Store(tmp_path / "target")
    halfway = threading.Event()
    states: list[str] = []

    def report(event: Progress) -> None:
        if event.digest == str(digest) and (event.completed or 0) >= size * 0.4 and not halfway.is_set():
            states.extend(sorted(p.name for p in target.blobs.root.glob(f"{digest.filename}-partial-?")))
            halfway.set()

    result: list[object] = []
    pull = _via(proxy, name)
    puller = threading.Thread(target=lambda: result.append(_attempt(target, pull, report, zero_copy)), daemon=True)
    puller.start()
    assert halfway.wait(120), "the pull never got to 40%"
    fresh_registry.kill()
    proxy.rate = None  # the slow start only made sure the kill came mid-pull
    fresh_registry.start()
    puller.join(180)
    assert not puller.is_alive()
    assert result and not isinstance(result[0], BaseException), result
    assert target.blobs.verify(digest)
    # A registry on loopback is read over one connection: one part, resumed where it stopped.
    assert states == [f"{digest.filename}-partial-0"]
    # Resumed, not restarted: the proxy relayed the model about once (a restart would add >= 40%).
    assert proxy.relayed < size * 1.25, (proxy.relayed, size)
    assert not list(target.blobs.root.glob("*-partial*"))


@pytest.mark.slow
def test_puller_killed_mid_pull_then_a_new_pull_resumes(
    fresh_registry: LocalRegistry, seeded, proxy_to, repo_name: str, tmp_path: Path
) -> None:
    name, source = _pushed(fresh_registry, seeded, repo_name)
    digest, size = _model_digest(source, name)
    proxy = proxy_to(fresh_registry)
    proxy.rate = 5e6
    target = Store(tmp_path / "target")
    script = (
        "import sys\n"
        "from server.registry.pull import pull_model\n"
        "from server.store.names import ModelName\n"
        "from server.store.store import Store\n"
        "from server.registry.client import RegistryOptions\n"
        "def report(event):\n"
        "    print(event.digest, event.completed, flush=True)\n"
        "store = Store(__import__('pathlib').Path(sys.argv[1]))\n"
        "pull_model(store, ModelName.parse(sys.argv[2]), RegistryOptions(insecure=True, parallel=4), report)\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", script, str(target.root), _via(proxy, name).display],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdout is not None
        for line in child.stdout:
            event_digest, completed = line.split()
            if event_digest == str(digest) and completed != "None" and int(completed) >= size * 0.4:
                break
        os.kill(child.pid, signal.SIGKILL)
        child.wait(60)
    assert child.returncode == -signal.SIGKILL
    assert target.get(name) is None and not target.blobs.exists(digest)
    assert (target.blobs.root / f"{digest.filename}-partial").is_file()
    # Four parts on four connections, each resumed from its own state.
    assert len(list(target.blobs.root.glob(f"{digest.filename}-partial-?"))) == 4

    proxy.rate = None
    before = proxy.relayed
    pull_model(target, _via(proxy, name), options(), lambda _: None)
    assert target.blobs.verify(digest)
    assert proxy.relayed - before < size * 0.7, (proxy.relayed - before, size)


@pytest.mark.slow
@PATHS
def test_a_flipped_byte_fails_the_pull_and_writes_nothing(
    open_registry: LocalRegistry, seeded, proxy_to, repo_name: str, tmp_path: Path, zero_copy: bool
) -> None:
    name, source = _pushed(open_registry, seeded, repo_name)
    digest, _ = _model_digest(source, name)
    proxy = proxy_to(open_registry)
    proxy.flip = str(digest)
    target = Store(tmp_path / "target")
    with pytest.raises(BlobDigestMismatch) as caught:
        pull_model(target, _via(proxy, name), options(zero_copy=zero_copy), lambda _: None)
    assert str(caught.value).startswith(f"digest mismatch, file must be downloaded again: want {digest}, got sha256:")
    assert store_files(target.root) == {}
    assert not list(target.root.rglob("*partial*"))


@pytest.mark.slow
def test_redirects_to_another_origin_are_followed(
    open_registry: LocalRegistry, seeded, proxy_to, repo_name: str, tmp_path: Path
) -> None:
    name, _ = _pushed(open_registry, seeded, repo_name)
    proxy = proxy_to(open_registry)
    proxy.redirect = True
    target = Store(tmp_path / "target")
    pulled = pull_model(target, _via(proxy, name), options(), lambda _: None)
    assert proxy.redirected >= len(pulled.downloaded) > 0
    assert {d: target.blobs.verify(d) for d in pulled.downloaded} == dict.fromkeys(pulled.downloaded, True)


@pytest.mark.slow
def test_blobs_in_the_store_are_not_fetched_again(
    open_registry: LocalRegistry, seeded, proxy_to, repo_name: str
) -> None:
    name, source = _pushed(open_registry, seeded, repo_name)
    proxy = proxy_to(open_registry)
    events: list[Progress] = []
    pulled = pull_model(source, _via(proxy, name), options(), events.append)
    assert pulled.downloaded == () and proxy.relayed == 0
    layer_lines = [e for e in events if e.digest]
    assert layer_lines and all(e.completed == e.total for e in layer_lines)


def _attempt(store: Store, name: ModelName, report: Callable[[Progress], None], zero_copy: bool = True) -> object:
    try:
        return pull_model(store, name, options(zero_copy=zero_copy), report)
    except BaseException as exc:  # handed to the test thread
        return exc


@pytest.mark.slow
def test_concurrent_pulls_of_one_model_share_the_download(
    open_registry: LocalRegistry, seeded, proxy_to, repo_name: str, tmp_path: Path
) -> None:
    name, source = _pushed(open_registry, seeded, repo_name)
    digest, size = _model_digest(source, name)
    proxy = proxy_to(open_registry)
    proxy.rate = 10e6
    target = Store(tmp_path / "target")
    results: list[object] = []
    pullers = [
        threading.Thread(target=lambda: results.append(_attempt(target, _via(proxy, name), lambda _: None)))
        for _ in range(2)
    ]
    for puller in pullers:
        puller.start()
    for puller in pullers:
        puller.join(180)
    assert len(results) == 2 and not any(isinstance(r, BaseException) for r in results), results
    assert target.blobs.verify(digest)
    assert proxy.relayed < size * 1.2, (proxy.relayed, size)


@pytest.mark.parametrize("status", [401, 403, 503])
@pytest.mark.slow
def test_a_part_refused_mid_pull_is_retried_after_locating_the_blob_again(
    open_registry: LocalRegistry, seeded, proxy_to, repo_name: str, tmp_path: Path, status: int
) -> None:
    name, source = _pushed(open_registry, seeded, repo_name)
    digest, _ = _model_digest(source, name)
    proxy = proxy_to(open_registry)
    proxy.fail_method, proxy.fail_ranged, proxy.fail_status, proxy.failures = "GET", True, status, 2
    target = Store(tmp_path / "target")
    pull_model(target, _via(proxy, name), options(backoff=0.01), lambda _: None)
    assert proxy.failures == 0 and target.blobs.verify(digest)


@pytest.mark.slow
def test_the_manifest_is_stored_exactly_as_served(
    open_registry: LocalRegistry, seeded, repo_name: str, tmp_path: Path
) -> None:
    name, _ = _pushed(open_registry, seeded, repo_name)
    manifests = f"{open_registry.url}/v2/{name.repository}/manifests"
    accept = {"Accept": "application/vnd.docker.distribution.manifest.v2+json"}
    served = httpx.get(f"{manifests}/{name.tag}", headers=accept).content
    assert not served.endswith(b"\n")  # what Ollama's push sends: json.Marshal, no newline
    # The same manifest as another client might push it: indented, with a trailing newline.
    spaced = json.dumps(json.loads(served), indent=3).encode() + b"\n"
    put = httpx.put(f"{manifests}/spaced", content=spaced, headers={"Content-Type": accept["Accept"]})
    assert put.status_code == 201, put.text
    target = Store(tmp_path / "target")
    for tag, expected in ((name.tag, served), ("spaced", spaced)):
        tagged = ModelName.parse(f"{name.host}/{name.repository}:{tag}")
        pulled = pull_model(target, tagged, options(), lambda _: None)
        assert (target.manifests / tagged.manifest_path).read_bytes() == expected
        assert pulled.digest == hashlib.sha256(expected).hexdigest()
