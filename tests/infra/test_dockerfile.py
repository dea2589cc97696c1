"""The Dockerfile, checked statically (no container engine runs here): pins equal pyproject's and the Makefile's,
the image runs as the user the Deployment declares, on its port, with `corral` as entry point."""

from __future__ import annotations

import re
import tomllib

from infra.model_server.layout import PORT, USER_ID
from infra.program import REPO_ROOT

DOCKERFILE = (REPO_ROOT / "Dockerfile").read_text()
PIN = re.compile(r"([A-Za-z0-9_.-]+)==([0-9][A-Za-z0-9_.+-]*)")


def pins(text: str) -> dict[str, str]:
    return {name.lower().replace("_", "-"): version for name, version in PIN.findall(text)}


def test_python_pins_match_pyproject_and_makefile() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    expected = pins("\n".join(project["dependencies"])) | pins((REPO_ROOT / "Makefile").read_text())
    in_image = pins(DOCKERFILE)
    assert in_image, "the Dockerfile pins nothing"
    for name, version in in_image.items():
        assert expected.get(name) == version, f"Dockerfile pins {name}=={version}, the project {expected.get(name)}"
    assert in_image["llama-cpp-python"] == expected["llama-cpp-python"]


def test_base_images_are_pinned() -> None:
    images = re.findall(r"^ARG \w+_IMAGE=(\S+)$", DOCKERFILE, re.M)
    assert len(images) == 2
    for image in images:
        name, _, tag = image.rpartition(":")
        assert name and tag and tag != "latest", image
        assert re.search(r"\d+\.\d+", tag), f"{image}: pin a version, not a moving tag"


def test_runs_as_the_deployments_user_port_and_entry_point() -> None:
    assert re.search(rf"^USER {USER_ID}:{USER_ID}$", DOCKERFILE, re.M)
    assert re.search(rf"^EXPOSE {PORT}$", DOCKERFILE, re.M)
    assert '\nENTRYPOINT ["corral"]\n' in DOCKERFILE
    assert '\nCMD ["serve"]\n' in DOCKERFILE


def test_variant_picks_the_llama_cpp_build() -> None:
    assert re.search(r"^ARG VARIANT=cpu$", DOCKERFILE, re.M)
    assert re.search(r"^\s+cpu\) export CMAKE_ARGS=", DOCKERFILE, re.M)
    assert re.search(r"^\s+cuda\) export CMAKE_ARGS=\"-DGGML_CUDA=on", DOCKERFILE, re.M)
    # Stages are never chosen through a variable: buildah/podman do not resolve that.
    assert not re.search(r"^FROM \S*\$\{VARIANT\}", DOCKERFILE, re.M)


def test_copied_paths_exist_and_the_context_leaves_out_local_state() -> None:
    for source in re.findall(r"^COPY (?!--from)(?:--chown=\S+ )?(.+) \S+$", DOCKERFILE, re.M):
        for path in source.split():
            matches = list(REPO_ROOT.glob(path))
            assert matches, f"COPY {path}: nothing in the repository matches"
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".git", "modelfiles/weights"} <= set(ignored)
