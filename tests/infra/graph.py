"""Pulumi mocks that record the resource graph, and helpers to read it as Kubernetes manifests."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pulumi

PROJECT = "corral"
_SECRET_SIG = "4dabf18193072939515e22adb298388d"


@dataclass
class Recorded:
    typ: str
    name: str
    inputs: dict[str, Any]
    parent: str | None
    custom: bool


@dataclass
class RecordingMocks(pulumi.runtime.Mocks):
    """Records every registered resource; echoes inputs as outputs (the provider's view of a create)."""

    resources: list[Recorded] = field(default_factory=list)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        parent = getattr(args, "parent", None)
        self.resources.append(Recorded(args.typ, args.name, dict(args.inputs), parent, args.custom))
        return f"{args.name}_id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None

    def of_type(self, typ: str) -> list[Recorded]:
        return [r for r in self.resources if r.typ == typ]

    def one(self, typ: str) -> Recorded:
        found = self.of_type(typ)
        assert len(found) == 1, f"expected one {typ}, found {[r.name for r in found]}"
        return found[0]

    def manifests(self) -> list[dict[str, Any]]:
        """Every Kubernetes object as the API server would receive it (secrets unwrapped, integral floats as int)."""
        return [
            normalise(r.inputs)
            for r in self.resources
            if r.custom and r.typ.startswith("kubernetes:") and "helm.sh" not in r.typ
        ]


def normalise(value: Any) -> Any:
    if isinstance(value, dict):
        if _SECRET_SIG in value:
            return normalise(value.get("value"))
        return {k: normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def config_of(settings: dict[str, Any]) -> dict[str, str]:
    """Stack settings as the engine passes config: ``corral:key`` -> string (objects as JSON)."""
    return {f"{PROJECT}:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in settings.items()}


def render(mocks: RecordingMocks, settings: Any) -> list[dict[str, Any]]:
    """Run the program for ``settings`` (a StackSettings) under ``mocks``; the manifests it created."""
    from infra.program import program

    @pulumi.runtime.test
    def body() -> pulumi.Output[int]:
        program(settings)
        return pulumi.Output.from_input(0)

    body()
    return mocks.manifests()
