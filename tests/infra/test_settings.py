"""Stack settings: the stack files load, every field is documented, bad keys and values fail by name."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from infra.program import StackSettingsError, load_stack, settings_from_config
from infra.settings import StackSettings


def write_stack(folder: Path, body: str) -> Path:
    (folder / "Pulumi.x.yaml").write_text(body)
    return folder


def test_both_stacks_load() -> None:
    dev, gpu = load_stack("dev"), load_stack("gpu")
    assert dev.gpu.count == 0 and dev.replicas == 1 and not dev.gpu.targets_gpu_nodes
    assert gpu.gpu.count >= 1 and gpu.replicas > 1 and gpu.storage.access_mode == "ReadWriteMany"
    assert gpu.num_parallel > dev.num_parallel
    assert gpu.flash_attention is True and gpu.kv_cache_type == "q8_0" and gpu.context_length > 0


def _models(model: type[BaseModel]) -> list[type[BaseModel]]:
    found = [model]
    for field in model.model_fields.values():
        for candidate in getattr(field.annotation, "__args__", (field.annotation,)):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                found.extend(_models(candidate))
    return found


def test_every_setting_is_documented_and_forbids_unknown_keys() -> None:
    for model in _models(StackSettings):
        assert model.model_config.get("extra") == "forbid", model.__name__
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"


def test_unknown_key_fails_naming_it(tmp_path: Path) -> None:
    folder = write_stack(tmp_path, "config:\n  corral:image: a/b:1\n  corral:replica: 2\n")
    with pytest.raises(StackSettingsError, match=r"Pulumi\.x\.yaml: unknown setting corral:replica"):
        load_stack("x", folder)


def test_unknown_nested_key_fails_naming_its_path(tmp_path: Path) -> None:
    folder = write_stack(tmp_path, "config:\n  corral:image: a/b:1\n  corral:gpu:\n    cuont: 1\n")
    with pytest.raises(StackSettingsError, match=r"unknown setting corral:gpu\.cuont"):
        load_stack("x", folder)


def test_wrong_type_fails_naming_the_key(tmp_path: Path) -> None:
    folder = write_stack(tmp_path, "config:\n  corral:image: a/b:1\n  corral:num_parallel: many\n")
    with pytest.raises(StackSettingsError, match=r"corral:num_parallel: Input should be a valid integer"):
        load_stack("x", folder)


def test_missing_image_is_reported(tmp_path: Path) -> None:
    with pytest.raises(StackSettingsError, match=r"corral:image: Field required"):
        load_stack("x", write_stack(tmp_path, "config: {}\n"))


def test_missing_stack_file_says_which(tmp_path: Path) -> None:
    with pytest.raises(StackSettingsError, match=r"Pulumi\.nope\.yaml: cannot read stack file"):
        load_stack("nope", tmp_path)


def test_rwo_volume_refuses_several_replicas() -> None:
    with pytest.raises(StackSettingsError, match="ReadWriteOnce allows one pod"):
        settings_from_config({"corral:image": "a/b:1", "corral:replicas": 2}, "test")


def test_other_namespaces_and_secrets_are_not_settings() -> None:
    settings = settings_from_config(
        {
            "corral:image": "a/b:1",
            "kubernetes:context": "kind-dev",
            "corral:apiKey": {"secure": "v1:abc"},
        },
        "test",
    )
    assert settings.image == "a/b:1"


def test_engine_style_json_strings_decode() -> None:
    settings = settings_from_config(
        {"corral:image": "a/b:1", "corral:gpu": '{"count": 2, "memory_gib": 80}', "corral:replicas": "1"}, "test"
    )
    assert settings.gpu.count == 2 and settings.gpu.memory_gib == 80 and settings.replicas == 1
