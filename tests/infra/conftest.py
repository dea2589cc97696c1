"""Per-test Pulumi mocks (set_mocks at module level in several files would leave all but one recorder empty)."""

from __future__ import annotations

from collections.abc import Iterator

import pulumi
import pytest

from .graph import PROJECT, RecordingMocks


@pytest.fixture
def mocks() -> Iterator[RecordingMocks]:
    recorder = RecordingMocks()
    pulumi.runtime.set_mocks(recorder, project=PROJECT, stack="test", preview=False)
    pulumi.runtime.set_all_config({})
    yield recorder
    pulumi.runtime.set_all_config({})
