"""Fixtures and options of the conformance suite.

Target: ``--url`` (or ``CONFORMANCE_URL``) names a running server; without it one Corral server is started per
session (``harness.ServerProcess``). ``--model`` (or ``CONFORMANCE_MODEL``, default ``smollm2:135m``) is the
model under test; ``--embed-model`` the one for embedding cases (default: the same). ``--api-key`` (or
``OLLAMA_API_KEY``) is sent as ``Authorization: Bearer`` by every client of the suite; a Corral server the suite
starts then runs with that key required (``CORRAL_API_KEYS``).

Markers: ``ref("1.2")`` names the reference section a case checks (every case has one); ``optional("why")``
marks behaviour that is newer or not needed for parity (its failures do not fail ``corral conformance``);
``versions(since=, until=, why=)`` limits a case to the Ollama releases whose behaviour it checks (see
``conformance.versions``; ``--ollama-version`` overrides the release read from ``/api/version``);
``needs("tools")`` skips unless the model has the capability, ``lacks("tools")`` skips when it has it.
Capabilities come from ``/api/show``; a server that does not report them gets them inferred from the template
as the reference describes (``.Tools`` -> tools, ``.Suffix`` -> insert).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conformance.areas import AREAS, area_of
from conformance.harness import DEFAULT_MODEL, EMBED_MODEL, ServerProcess, ServerStartError
from conformance.versions import EXPECTATION, Expectation, OllamaVersion, Range, VersionError, resolve

CASE_MARKERS = (
    "ref(section): the section of the Ollama API reference this case checks",
    "optional(why): newer or optional-for-parity behaviour; its failure does not fail the gate",
    "versions(since, until, why): the Ollama releases (since <= v < until) whose behaviour this case checks",
    "needs(capability): skip unless the model under test has this capability",
    "lacks(capability): skip when the model under test has this capability",
)
SCRATCH_PREFIX = "conformance-"
SELF_TESTS = Path(__file__).resolve().parent / "tests"
UNREACHABLE = 12  # pytest exit status when the target cannot be reached or started
STARTED_SERVER = pytest.StashKey[ServerProcess]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance", "Ollama API conformance")
    group.addoption("--url", default=None, help="server to check (env CONFORMANCE_URL); default: start Corral")
    group.addoption("--model", default=None, help=f"model under test (env CONFORMANCE_MODEL; default {DEFAULT_MODEL})")
    group.addoption("--embed-model", default=None, help="model for embedding cases (default: --model)")
    group.addoption("--parity-report", default=None, metavar="PATH", help="write the Markdown parity report here")
    group.addoption(
        "--only", action="append", default=[], metavar="AREA", help=f"run only these areas: {', '.join(AREAS)}"
    )
    group.addoption("--server-log", default=None, metavar="PATH", help="log file of the server the suite starts")
    group.addoption("--api-key", default=None, help="send this key as 'Authorization: Bearer' (env OLLAMA_API_KEY)")
    group.addoption(
        "--ollama-version",
        default=None,
        metavar="X.Y.Z",
        help="judge the target as this Ollama release, or 'latest' (env CONFORMANCE_OLLAMA_VERSION); "
        "default: the target's /api/version",
    )


def pytest_configure(config: pytest.Config) -> None:
    for line in CASE_MARKERS:
        config.addinivalue_line("markers", line)
    override = config.getoption("--ollama-version", default=None)
    if override:
        try:
            OllamaVersion.parse(override)
        except VersionError as exc:
            raise pytest.UsageError(f"--ollama-version: {exc}") from None
    report_path = config.getoption("--parity-report", default=None)
    if report_path and not config.pluginmanager.has_plugin("conformance-parity-report"):
        from conformance.report import ParityReport

        config.pluginmanager.register(ParityReport(Path(report_path)), "conformance-parity-report")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        try:
            version_range(item)
        except (VersionError, TypeError) as exc:
            raise pytest.UsageError(f"{item.nodeid}: bad @pytest.mark.versions: {exc}") from None
    only = set(config.getoption("--only", default=[]) or [])
    unknown = only - set(AREAS)
    if unknown:
        raise pytest.UsageError(f"--only: unknown area(s) {sorted(unknown)}; known: {', '.join(AREAS)}")
    if not only:
        return
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        (kept if area_of(item.path.stem) in only else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Leave the suite's own tests (``conformance/tests``) out of a conformance run unless asked for by path."""
    if collection_path != SELF_TESTS:
        return None
    asked = [Path(arg.split("::", 1)[0]).resolve() for arg in config.args]
    return not any(path == SELF_TESTS or SELF_TESTS in path.parents for path in asked)


def _setting(config: pytest.Config, option: str, env: str, default: str | None = None) -> str | None:
    value = config.getoption(option, default=None)
    return value or os.environ.get(env) or default


@pytest.fixture(scope="session")
def model(pytestconfig: pytest.Config) -> str:
    """The model under test (must be installed on the server)."""
    return _setting(pytestconfig, "--model", "CONFORMANCE_MODEL", DEFAULT_MODEL) or DEFAULT_MODEL


@pytest.fixture(scope="session")
def api_key(pytestconfig: pytest.Config) -> str:
    """The key every client sends ('' for none)."""
    return _setting(pytestconfig, "--api-key", "OLLAMA_API_KEY") or ""


@pytest.fixture(scope="session")
def auth_headers(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


@pytest.fixture(scope="session")
def base_url(pytestconfig: pytest.Config, model: str, api_key: str) -> Iterator[str]:
    """The server under test: ``--url``/``CONFORMANCE_URL``, else a Corral server started for the session."""
    url = _setting(pytestconfig, "--url", "CONFORMANCE_URL") or os.environ.get("CONFORMANCE_BASE_URL")
    if url:
        url = url.rstrip("/")
        try:
            httpx.get(url + "/", timeout=10)
        except httpx.HTTPError as exc:
            pytest.exit(f"conformance: cannot reach {url}: {exc}", returncode=UNREACHABLE)
        yield url
        return
    log = pytestconfig.getoption("--server-log", default=None)
    server = ServerProcess(
        model, log_path=Path(log) if log else None, env={"CORRAL_API_KEYS": api_key} if api_key else None
    )
    try:
        server.start()
    except ServerStartError as exc:
        pytest.exit(f"conformance: could not start a Corral server: {exc}", returncode=UNREACHABLE)
    pytestconfig.stash[STARTED_SERVER] = server
    try:
        yield server.url
    finally:
        del pytestconfig.stash[STARTED_SERVER]
        server.stop()


def version_range(item: pytest.Item) -> Range | None:
    """The ``versions`` marker of a case as a ``Range`` (None: the case applies to every release)."""
    marker = item.get_closest_marker("versions")
    return Range.from_marker(**marker.kwargs) if marker is not None else None


@pytest.fixture(scope="session")
def expectation(pytestconfig: pytest.Config, http: httpx.Client) -> Expectation:
    """The Ollama release whose behaviour the target is held to (``conformance.versions.resolve``)."""
    override = _setting(pytestconfig, "--ollama-version", "CONFORMANCE_OLLAMA_VERSION")
    started = STARTED_SERVER in pytestconfig.stash
    reported: object = None
    if not override and not started:
        resp = http.get("/api/version")
        try:
            body = resp.json() if resp.status_code == 200 else None
        except ValueError:
            body = None
        reported = body.get("version") if isinstance(body, dict) else f"status {resp.status_code}: {resp.text[:80]}"
    try:
        found = resolve(override, reported, started_corral=started)
    except VersionError as exc:
        pytest.exit(f"conformance: --ollama-version: {exc}", returncode=pytest.ExitCode.USAGE_ERROR)
    pytestconfig.stash[EXPECTATION] = found
    return found


@pytest.fixture(autouse=True)
def _version_gate(request: pytest.FixtureRequest) -> None:
    """Resolve the expectation once per run (the report names it) and skip a case whose ``versions`` range
    leaves out the release the target is held to. The suite's self-tests need no server and are left alone."""
    if SELF_TESTS in request.node.path.parents:
        return
    found: Expectation = request.getfixturevalue("expectation")
    span = version_range(request.node)
    if span is not None and not span.applies(found.version):
        why = f": {span.why}" if span.why else ""
        pytest.skip(f"checks {span.describe()}, the target is held to {found.version}{why}")


@pytest.fixture(autouse=True)
def _started_server_alive(request: pytest.FixtureRequest) -> None:
    """Stop the run with one clear message when the server this session started has died (instead of a
    connection error in every remaining case)."""
    server = request.config.stash.get(STARTED_SERVER, None)
    if server is not None and not server.alive():
        pytest.exit(
            f"conformance: the server under test exited during the run; log tail:\n{server.log_tail()}",
            returncode=UNREACHABLE,
        )


@pytest.fixture(scope="session")
def http(base_url: str, auth_headers: dict[str, str]) -> Iterator[httpx.Client]:
    """An httpx client on the server (generous read timeout: a cold model load may take a while)."""
    timeout = httpx.Timeout(180.0, connect=10.0)
    with httpx.Client(base_url=base_url, timeout=timeout, headers=auth_headers) as client:
        yield client


@pytest.fixture(scope="session")
def ollama_client(base_url: str, auth_headers: dict[str, str]) -> Iterator[Any]:
    """The official ``ollama`` Python client on the server."""
    import ollama

    client = ollama.Client(host=base_url, timeout=180, headers=auth_headers)
    yield client
    client.close()  # type: ignore[no-untyped-call]


@pytest.fixture(scope="session")
def openai_client(base_url: str, api_key: str) -> Iterator[Any]:
    """The official ``openai`` Python client on the server's ``/v1``."""
    import openai

    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key=api_key or "conformance", max_retries=0, timeout=180)
    yield client
    client.close()


@pytest.fixture(scope="session")
def show_info(http: httpx.Client, model: str) -> dict[str, Any]:
    """``/api/show`` of the model under test, or ``{}`` when the server cannot show it."""
    resp = http.post("/api/show", json={"model": model})
    if resp.status_code != 200:
        return {}
    body = resp.json()
    return body if isinstance(body, dict) else {}


@pytest.fixture(scope="session")
def capabilities(show_info: dict[str, Any]) -> frozenset[str]:
    """The model's capabilities: ``/api/show`` ``capabilities``, else inferred from its template."""
    reported = show_info.get("capabilities")
    if isinstance(reported, list) and reported:
        return frozenset(str(c) for c in reported)
    template = str(show_info.get("template") or "")
    inferred = {"completion"}
    if ".Tools" in template:
        inferred.add("tools")
    if ".Suffix" in template:
        inferred.add("insert")
    return frozenset(inferred)


@pytest.fixture(autouse=True)
def _capability_gate(request: pytest.FixtureRequest) -> None:
    """Apply ``needs``/``lacks`` markers (only touches the server when a case carries one)."""
    needs = [m.args[0] for m in request.node.iter_markers("needs")]
    lacks = [m.args[0] for m in request.node.iter_markers("lacks")]
    if not needs and not lacks:
        return
    caps: frozenset[str] = request.getfixturevalue("capabilities")
    name = request.getfixturevalue("model")
    for cap in needs:
        if cap not in caps:
            pytest.skip(f"model {name} lacks the {cap!r} capability (capabilities: {sorted(caps)})")
    for cap in lacks:
        if cap in caps:
            pytest.skip(f"model {name} has the {cap!r} capability; this case needs a model without it")


@pytest.fixture(scope="session")
def embed_model(pytestconfig: pytest.Config, http: httpx.Client, model: str) -> str:
    """A model that embeds: ``--embed-model``, else ``all-minilm:22m`` when the server has it (a real embedding
    model), else the model under test, when it reports the ``embedding`` capability or ``/api/embed`` answers
    for it; otherwise the embedding cases skip with the reason."""
    name = _setting(pytestconfig, "--embed-model", "CONFORMANCE_EMBED_MODEL") or _installed(http, EMBED_MODEL) or model
    shown = http.post("/api/show", json={"model": name})
    caps = shown.json().get("capabilities") or [] if shown.status_code == 200 else []
    if "embedding" in caps:
        return name
    probe = http.post("/api/embed", json={"model": name, "input": "probe"})
    vectors = probe.json().get("embeddings") if probe.status_code == 200 else None
    if isinstance(vectors, list) and vectors and vectors[0]:
        return name
    pytest.skip(
        f"model {name} lacks the 'embedding' capability (capabilities: {caps}) and /api/embed answered "
        f"{probe.status_code} {probe.text[:120]!r}; pass --embed-model"
    )


def _installed(http: httpx.Client, name: str) -> str | None:
    """``name`` when ``/api/tags`` lists it, else None."""
    resp = http.get("/api/tags")
    models = resp.json().get("models") or [] if resp.status_code == 200 else []
    return name if any(isinstance(m, dict) and m.get("name") == name for m in models) else None


@pytest.fixture(scope="session")
def embedding_length(http: httpx.Client, embed_model: str) -> int | None:
    """``<arch>.embedding_length`` from ``/api/show`` ``model_info`` of the embedding model, if reported."""
    info = http.post("/api/show", json={"model": embed_model}).json().get("model_info") or {}
    arch = info.get("general.architecture")
    value = info.get(f"{arch}.embedding_length")
    return int(value) if isinstance(value, int) else None


@pytest.fixture
def scratch(http: httpx.Client) -> Iterator[Callable[..., str]]:
    """A factory of fresh model names (``conformance-<hex>``); every name it gave is deleted afterwards."""
    made: list[str] = []

    def new_name(namespace: str = "") -> str:
        name = f"{namespace}{SCRATCH_PREFIX}{uuid.uuid4().hex[:12]}"
        made.append(name)
        return name

    yield new_name
    from conformance.calls import delete_quietly

    for name in made:
        delete_quietly(http, name)
