"""API keys: fixed keys, a keys file that changes under the server, ids instead of keys, fail-closed defaults."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from server.auth import ApiKeys, key_id, needs_key
from server.errors import SettingsError, Unauthorized


def test_fixed_keys_accept_only_themselves() -> None:
    keys = ApiKeys(["alpha", "beta"])
    assert keys.enabled
    assert keys.check("Bearer alpha") == key_id("alpha")
    assert keys.check("bearer  beta ") == key_id("beta")
    for header in ["Bearer alphx", "Bearer ", "Basic YWxwaGE=", "alpha", "Bearer alpha2"]:
        with pytest.raises(Unauthorized) as caught:
            keys.check(header)
        assert "alpha" not in caught.value.message  # a key never appears in an error
    with pytest.raises(Unauthorized, match="missing API key"):
        keys.check(None)


def test_key_id_is_short_and_not_the_key() -> None:
    assert len(key_id("secret-key")) == 8
    assert key_id("secret-key") != key_id("secret-kez")
    assert "secret" not in key_id("secret-key")


def test_no_keys_means_open() -> None:
    assert not ApiKeys().enabled


def test_file_is_reread_when_it_changes(tmp_path: Path) -> None:
    file = tmp_path / "keys"
    file.write_text("# rotated by the Secret\none\n\n  two  \n")
    keys = ApiKeys(file=file)
    assert keys.check("Bearer one") == key_id("one")
    assert keys.check("Bearer two") == key_id("two")
    with pytest.raises(Unauthorized):
        keys.check("Bearer # rotated by the Secret")
    # A Secret volume swaps the file for a new one (new inode); an editor may rewrite it in place.
    replacement = tmp_path / "keys.new"
    replacement.write_text("three\n")
    os.replace(replacement, file)
    with pytest.raises(Unauthorized):
        keys.check("Bearer one")
    assert keys.check("Bearer three") == key_id("three")
    file.write_text("four-and-longer\n")
    assert keys.check("Bearer four-and-longer") == key_id("four-and-longer")


def test_empty_file_fails_closed_and_unreadable_file_keeps_the_last_keys(tmp_path: Path) -> None:
    file = tmp_path / "keys"
    file.write_text("")
    keys = ApiKeys(file=file)
    assert keys.enabled
    with pytest.raises(Unauthorized):
        keys.check("Bearer anything")
    file.write_text("kept\n")
    assert keys.check("Bearer kept")
    file.unlink()
    assert keys.check("Bearer kept") == key_id("kept")


def test_missing_file_at_start_is_a_settings_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="CORRAL_API_KEYS_FILE"):
        ApiKeys(file=tmp_path / "absent")


@pytest.mark.parametrize(
    ("method", "path", "metrics_open", "expected"),
    [
        ("GET", "/", True, False),
        ("HEAD", "/", True, False),
        ("GET", "/healthz", True, False),
        ("GET", "/readyz", True, False),
        ("GET", "/metrics", True, False),
        ("GET", "/metrics", False, True),
        ("OPTIONS", "/api/chat", True, False),
        ("POST", "/api/chat", True, True),
        ("GET", "/api/tags", True, True),
        ("GET", "/api/version", True, True),
        ("POST", "/v1/chat/completions", True, True),
        ("GET", "/anything/else", True, True),
    ],
)
def test_which_paths_need_a_key(method: str, path: str, metrics_open: bool, expected: bool) -> None:
    assert needs_key(method, path, metrics_open=metrics_open) is expected
