"""The Pulumi program: stack settings in, a ModelServer out.

``load_stack`` reads ``stacks/Pulumi.<name>.yaml`` into typed settings without the Pulumi CLI; ``program`` builds
the resources and exports the outputs. ``program`` works as an Automation API inline program
(``lambda: program(load_stack("gpu"))``) and under the CLI, where ``infra/__main__.py`` reads the same settings
from the stack's config.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pydantic import ValidationError

from .load_test import LoadTest, LoadTestArgs
from .model_server import ModelServer, ModelServerArgs
from .settings import StackSettings
from .sizing import read_catalog

PROJECT = "corral"
REPO_ROOT = Path(__file__).resolve().parent.parent
STACKS_DIR = REPO_ROOT / "stacks"


class StackSettingsError(ValueError):
    """A stack file that is missing, not YAML, or whose settings do not validate (the message names the key)."""


def load_stack(name: str, stacks_dir: Path | None = None) -> StackSettings:
    """Settings of stack ``name`` from ``<stacks_dir>/Pulumi.<name>.yaml`` (default: the repository's stacks/)."""
    path = (stacks_dir or STACKS_DIR) / f"Pulumi.{name}.yaml"
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise StackSettingsError(f"{path}: cannot read stack file: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise StackSettingsError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("config", {}), dict):
        raise StackSettingsError(f"{path}: expected a mapping with a 'config' mapping")
    return settings_from_config(raw.get("config") or {}, str(path))


def settings_from_config(config: Mapping[str, Any], source: str) -> StackSettings:
    """Settings from Pulumi config keys (``corral:key`` or a bare ``key``; other namespaces and secure values are
    skipped). String values that hold JSON objects or lists (as the engine passes them) are decoded."""
    values: dict[str, Any] = {}
    for key, value in config.items():
        namespace, _, bare = key.rpartition(":")
        if namespace not in ("", PROJECT) or (isinstance(value, dict) and "secure" in value):
            continue
        if isinstance(value, str) and value[:1] in "{[":
            value = json.loads(value)
        values[bare] = value
    try:
        return StackSettings.model_validate(values)
    except ValidationError as exc:
        raise StackSettingsError(f"{source}: {_describe(exc)}") from exc


def runtime_config() -> dict[str, Any]:
    """The running stack's config as the engine handed it to this process, secret keys left out."""
    from pulumi.runtime.config import CONFIG, get_config_env, get_config_secret_keys_env

    secret = set(get_config_secret_keys_env())
    merged = {**get_config_env(), **CONFIG.get()}
    return {key: value for key, value in merged.items() if key not in secret}


def _describe(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"])
        if error["type"] == "extra_forbidden":
            lines.append(f"unknown setting {PROJECT}:{key}")
        elif key:
            lines.append(f"{PROJECT}:{key}: {error['msg'].removeprefix('Value error, ')}")
        else:
            lines.append(error["msg"].removeprefix("Value error, "))
    return "; ".join(lines)


def program(settings: StackSettings) -> None:
    """Create the stack's resources and export ``service_url``, ``namespace``, ``pvc_name`` and ``replicas``;
    with a ``load_test`` section also the LoadTest and its ``load_test_*`` outputs."""
    catalog_path = Path(settings.catalog)
    if not catalog_path.is_absolute():
        catalog_path = REPO_ROOT / catalog_path
    api_key = None
    if settings.api_key is not None and settings.api_key.create:
        api_key = pulumi.Config(PROJECT).require_secret("apiKey")
    server = ModelServer(
        settings.name, ModelServerArgs(settings=settings, catalog=read_catalog(catalog_path), api_key=api_key)
    )
    pulumi.export("service_url", server.service_url)
    pulumi.export("namespace", server.namespace)
    pulumi.export("pvc_name", server.pvc_name)
    pulumi.export("replicas", server.replicas)
    if settings.load_test is not None:
        load_test = LoadTest(
            f"{settings.name}-load-test", LoadTestArgs.from_stack(settings), pulumi.ResourceOptions(depends_on=[server])
        )
        pulumi.export("load_test_master_job", load_test.master_job)
        pulumi.export("load_test_results_claim", load_test.results_claim)
        pulumi.export("load_test_results_path", load_test.results_path)
        pulumi.export("load_test_results_deployment", load_test.results_deployment)
