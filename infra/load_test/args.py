"""``LoadTestArgs``: what the LoadTest component needs, resolved from the stack (target, image, locustfile)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from infra.model_server.network import service_url
from infra.settings import LoadTestSettings, StackSettings

# The repository's locustfile: the ConfigMap carries it verbatim; the perf package it imports is in the image.
REPO_LOCUSTFILE = Path(__file__).resolve().parents[2] / "perf" / "locustfile.py"


@dataclass(frozen=True)
class LoadTestArgs:
    """``server_name`` prefixes every object name; ``target`` is the base URL the users load; ``api_key`` the
    server's API keys Secret (name, key) when the stack turns keys on: the users send it as ``OLLAMA_API_KEY``."""

    settings: LoadTestSettings
    server_name: str
    namespace: str
    image: str
    image_pull_policy: str
    target: str
    locustfile: str
    api_key: tuple[str, str] | None = None

    @classmethod
    def from_stack(cls, stack: StackSettings, locustfile: Path = REPO_LOCUSTFILE) -> LoadTestArgs:
        """The stack's ``load_test`` section, aimed at the stack's own server Service unless it names a target.
        Raises ValueError when the stack has no ``load_test`` section."""
        if stack.load_test is None:
            raise ValueError("the stack has no load_test section")
        test = stack.load_test
        return cls(
            settings=test,
            server_name=stack.name,
            namespace=stack.namespace,
            image=test.image or stack.image,
            image_pull_policy=stack.image_pull_policy,
            target=(test.target or service_url(stack.name, stack.namespace)).rstrip("/"),
            locustfile=locustfile.read_text(encoding="utf-8"),
            api_key=(stack.api_key.secret_name, stack.api_key.secret_key) if stack.api_key else None,
        )

    def run_record(self) -> str:
        """``run.json``: what this run was asked to do (copied next to its results)."""
        record = {
            "run_id": self.settings.run_id,
            "target": self.target,
            "image": self.image,
            "load_test": self.settings.model_dump(mode="json"),
        }
        return json.dumps(record, indent=2, sort_keys=True) + "\n"
