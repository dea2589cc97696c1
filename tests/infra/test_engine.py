"""The real Pulumi engine (CLI v3.274.1 + Kubernetes provider 4.25.0, built from the Go module proxy) driven
through the Automation API, offline, with the provider rendering manifests to a folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra import engine
from infra.validation import validate_manifests

pytestmark = pytest.mark.slow


def _tiny_program() -> None:
    import pulumi
    import pulumi_kubernetes as k8s

    labels = {"app": "tiny"}
    namespace = k8s.core.v1.Namespace("tiny", metadata={"name": "tiny"})
    k8s.apps.v1.Deployment(
        "tiny",
        metadata={"name": "tiny", "namespace": namespace.metadata["name"]},
        spec={
            "replicas": 2,
            "selector": {"match_labels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {"name": "c", "image": "registry.example/c:1.0", "ports": [{"container_port": 8080}]}
                    ]
                },
            },
        },
    )
    pulumi.export("answer", 42)


def _by_kind(manifests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {m["kind"]: m for m in manifests}


def test_render_runs_preview_and_up_and_returns_the_manifests(tmp_path: Path) -> None:
    rendered = engine.render("dev", program=_tiny_program, workdir=tmp_path)
    kinds = _by_kind(rendered.manifests)
    assert set(kinds) == {"Namespace", "Deployment"}
    deployment = kinds["Deployment"]
    assert deployment["metadata"]["namespace"] == "tiny"
    # The provider, not the SDK, wrote these: integers are integers and the field names are Kubernetes'.
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["template"]["spec"]["containers"][0]["ports"] == [{"containerPort": 8080}]
    assert rendered.outputs == {"answer": 42}
    assert rendered.planned.get("create", 0) >= 3  # the stack, the namespace, the deployment
    assert validate_manifests(rendered.manifests) == []
    # Everything stayed in the working folder: state, plugins, rendered files.
    assert (tmp_path / "pulumi-home" / "plugins").is_dir()
    assert any((tmp_path / "state").rglob("*.json"))


def test_a_failing_program_surfaces_the_engine_output(tmp_path: Path) -> None:
    def broken() -> None:
        raise ValueError("catalog entry smollm2 has no size")

    with pytest.raises(engine.EngineError, match="catalog entry smollm2 has no size"):
        engine.render("dev", program=broken, workdir=tmp_path)


def test_offline_environment_points_everything_at_the_working_folder(tmp_path: Path) -> None:
    env = engine.offline_environment(tmp_path)
    assert env["PULUMI_HOME"].startswith(str(tmp_path))
    assert env["PULUMI_BACKEND_URL"] == f"file://{tmp_path / 'state'}"
    assert env["PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION"] == "true"
    assert env["KUBECONFIG"].startswith(str(tmp_path))
