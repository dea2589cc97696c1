"""Blobs: digest forms, atomic verified writes that leave nothing on failure, temp-file pruning."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from server.errors import DigestMismatch, InvalidDigest
from server.store import blobs as blobs_module
from server.store.blobs import TEMP_PREFIX, BlobStore, Digest, remove_if_unlocked

HEX = hashlib.sha256(b"hello").hexdigest()


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "blobs")


def names(store: BlobStore) -> list[str]:
    return sorted(p.name for p in store.root.iterdir()) if store.root.exists() else []


@pytest.mark.parametrize(
    "text",
    [f"sha256:{HEX}", f"sha256-{HEX}", f"sha256:{HEX.upper()}", f"sha256-{HEX.upper()}"],
    ids=["colon", "dash", "upper-colon", "upper-dash"],
)
def test_digest_parse_accepts_both_separators_and_any_case(text: str) -> None:
    digest = Digest.parse(text)
    assert digest.hex == HEX
    assert str(digest) == f"sha256:{HEX}"
    assert digest.filename == f"sha256-{HEX}"
    assert digest.short == HEX[:12]


@pytest.mark.parametrize(
    "text",
    [
        "",
        HEX,
        f"sha256{HEX}",
        f"sha256_{HEX}",
        f"sha512:{HEX}",
        f"SHA256:{HEX}",
        f"sha256:{HEX[:-1]}",
        f"sha256:{HEX}0",
        f"sha256:{HEX[:-1]}g",
        f" sha256:{HEX}",
        f"sha256:{HEX}\n",
        f"sha256:../{HEX[3:]}",
    ],
    ids=repr,
)
def test_digest_parse_rejects(text: str) -> None:
    with pytest.raises(InvalidDigest) as info:
        Digest.parse(text)
    assert str(info.value) == "invalid digest format"


def test_digest_from_bytes_and_ordering() -> None:
    assert Digest.from_bytes(b"hello") == Digest(HEX)
    assert sorted([Digest("b" * 64), Digest("a" * 64)]) == [Digest("a" * 64), Digest("b" * 64)]


def test_write_bytes(store: BlobStore) -> None:
    written = store.write_bytes(b"hello")
    assert (written.digest, written.size, written.created) == (Digest(HEX), 5, True)
    assert (store.root / f"sha256-{HEX}").read_bytes() == b"hello"
    assert names(store) == [f"sha256-{HEX}"]
    assert store.exists(written.digest) and store.size(written.digest) == 5
    assert store.read_bytes(written.digest) == b"hello"
    assert store.verify(written.digest)
    again = store.write_bytes(b"hello")
    assert again.created is False
    assert names(store) == [f"sha256-{HEX}"]


def test_blob_files_are_world_readable(store: BlobStore) -> None:
    written = store.write_bytes(b"perm")
    assert store.path(written.digest).stat().st_mode & 0o777 == 0o644


def test_import_file_reports_progress(store: BlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(blobs_module, "CHUNK", 1000)
    data = os.urandom(2500)
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    seen: list[int] = []
    written = store.import_file(source, seen.append)
    assert written.digest == Digest.from_bytes(data)
    assert store.path(written.digest).read_bytes() == data
    assert seen == [1000, 2000, 2500]
    assert names(store) == [written.digest.filename]


def test_write_stream(store: BlobStore) -> None:
    chunks = [b"he", b"", b"llo"]
    written = store.write_stream(iter(chunks), Digest(HEX))
    assert (written.digest, written.size, written.created) == (Digest(HEX), 5, True)
    assert store.read_bytes(Digest(HEX)) == b"hello"
    unverified = store.write_stream(iter([b"abc"]))
    assert unverified.digest == Digest.from_bytes(b"abc")


def test_write_stream_of_an_existing_blob_consumes_the_stream(store: BlobStore) -> None:
    store.write_bytes(b"hello")
    consumed: list[bytes] = []

    def chunks() -> Iterator[bytes]:
        for chunk in (b"he", b"llo"):
            consumed.append(chunk)
            yield chunk

    written = store.write_stream(chunks(), Digest(HEX))
    assert written.created is False
    assert consumed == [b"he", b"llo"]


def test_mismatch_raises_and_leaves_nothing(store: BlobStore) -> None:
    with pytest.raises(DigestMismatch) as info:
        store.write_stream(iter([b"not hello"]), Digest(HEX))
    got = hashlib.sha256(b"not hello").hexdigest()
    assert str(info.value) == f'digest mismatch, expected "sha256:{HEX}", got "sha256:{got}"'
    assert names(store) == []


def test_a_stream_that_fails_midway_leaves_nothing(store: BlobStore) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"partial data"
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        store.write_stream(chunks())
    assert names(store) == []


async def _body(parts: list[bytes], fail: bool = False) -> AsyncIterator[bytes]:
    for part in parts:
        await asyncio.sleep(0)
        yield part
    if fail:
        raise ConnectionResetError("truncated upload")


def test_async_stream(store: BlobStore) -> None:
    written = asyncio.run(store.write_async_stream(_body([b"hel", b"lo"]), Digest(HEX)))
    assert (written.digest, written.size, written.created) == (Digest(HEX), 5, True)
    assert store.read_bytes(Digest(HEX)) == b"hello"
    again = asyncio.run(store.write_async_stream(_body([b"hello"]), Digest(HEX)))
    assert again.created is False


def test_async_stream_mismatch_leaves_nothing(store: BlobStore) -> None:
    with pytest.raises(DigestMismatch):
        asyncio.run(store.write_async_stream(_body([b"hel"]), Digest(HEX)))
    assert names(store) == []


def test_truncated_async_upload_leaves_nothing(store: BlobStore) -> None:
    with pytest.raises(ConnectionResetError):
        asyncio.run(store.write_async_stream(_body([b"hel"], fail=True), Digest(HEX)))
    assert names(store) == []


def test_delete_and_all(store: BlobStore) -> None:
    assert store.all() == []
    a = store.write_bytes(b"a").digest
    b = store.write_bytes(b"b").digest
    (store.root / f"{TEMP_PREFIX}stray").write_bytes(b"x")
    assert sorted(store.all()) == sorted([a, b])
    store.delete(a)
    store.delete(a)  # deleting a missing blob is fine
    assert store.all() == [b]


def test_prune_temp_removes_stale_files_and_renames_legacy_names(store: BlobStore) -> None:
    kept = store.write_bytes(b"hello").digest
    store.root.joinpath(f"{TEMP_PREFIX}abc123").write_bytes(b"crashed write")
    store.root.joinpath("garbage").write_bytes(b"?")
    store.root.joinpath(f"sha256-{HEX}-partial").write_bytes(b"download")
    store.root.joinpath(f"sha256-{HEX}-partial-0").write_bytes(b"{}")
    store.root.joinpath("subdir").mkdir()
    legacy = hashlib.sha256(b"legacy").hexdigest()
    store.root.joinpath(f"sha256:{legacy}").write_bytes(b"legacy")
    removed = store.prune_temp()
    assert sorted(p.name for p in removed) == sorted([f"{TEMP_PREFIX}abc123", "garbage"])
    assert names(store) == sorted(
        [kept.filename, f"sha256-{legacy}", f"sha256-{HEX}-partial", f"sha256-{HEX}-partial-0", "subdir"]
    )
    assert store.read_bytes(Digest(legacy)) == b"legacy"


def test_prune_temp_on_a_missing_directory(tmp_path: Path) -> None:
    assert BlobStore(tmp_path / "none").prune_temp() == []


def test_prune_temp_spares_the_file_of_a_live_writer(store: BlobStore) -> None:
    opened = threading.Event()
    release = threading.Event()
    seen: dict[str, Path] = {}

    def writer() -> None:
        with store._temp() as (tmp, handle):
            handle.write(b"in progress")
            seen["tmp"] = tmp
            opened.set()
            assert release.wait(10)
            seen["after"] = Path(tmp) if tmp.exists() else Path("gone")

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert opened.wait(10)
        store.root.joinpath(f"{TEMP_PREFIX}dead").write_bytes(b"from a crashed writer")
        removed = store.prune_temp()
        assert [p.name for p in removed] == [f"{TEMP_PREFIX}dead"]
        assert seen["tmp"].exists()
    finally:
        release.set()
        thread.join(10)
    assert seen["after"] == seen["tmp"]
    assert not seen["tmp"].exists()  # the writer's own clean-up removed it
    assert names(store) == []


def test_remove_if_unlocked(tmp_path: Path) -> None:
    path = tmp_path / "f"
    assert remove_if_unlocked(path) is False
    path.write_bytes(b"x")
    assert remove_if_unlocked(path) is True
    assert not path.exists()


def test_a_temp_file_removed_before_its_lock_is_replaced(store: BlobStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """A prune that removes the new temp file between mkstemp and flock must not make the write fail."""
    real_mkstemp = blobs_module.tempfile.mkstemp
    calls = 0

    def racy_mkstemp(*args: object, **kwargs: object) -> tuple[int, str]:
        nonlocal calls
        calls += 1
        fd, name = real_mkstemp(*args, **kwargs)  # type: ignore[call-overload]
        if calls == 1:
            assert remove_if_unlocked(Path(name))  # the prune wins the race
        return fd, name

    monkeypatch.setattr(blobs_module.tempfile, "mkstemp", racy_mkstemp)
    written = store.write_bytes(b"hello")
    assert calls == 2
    assert store.read_bytes(written.digest) == b"hello"
    assert names(store) == [f"sha256-{HEX}"]
