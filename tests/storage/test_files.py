from __future__ import annotations

import os
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from graphattach.storage import files
from graphattach.storage.conformance import PersistentBlobStoreConformance
from graphattach.storage.files import FileBlobStore

Reopen = Callable[[FileBlobStore], Awaitable[FileBlobStore]]


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def _read(store: FileBlobStore, key: str) -> bytes:
    return b"".join([chunk async for chunk in store.read(key)])


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[FileBlobStore]:
    store = FileBlobStore(tmp_path / "blobs")
    await store.open()
    yield store
    await store.close()


class TestFileBlobStore(PersistentBlobStoreConformance):
    persistent = True

    @pytest.fixture
    async def blob_store(self, store: FileBlobStore) -> FileBlobStore:
        return store

    @pytest.fixture
    async def reopen_blob_store(self) -> AsyncIterator[Reopen]:
        opened: list[FileBlobStore] = []

        async def reopen(old: FileBlobStore) -> FileBlobStore:
            await old.close()
            fresh = FileBlobStore(old.root)
            await fresh.open()
            opened.append(fresh)
            return fresh

        yield reopen
        for fresh in opened:
            await fresh.close()


def _all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


async def test_keys_never_become_paths(store: FileBlobStore) -> None:
    await store.write("../../outside", _chunks(b"x"))
    await store.write("a/b/c", _chunks(b"y"))
    paths = _all_files(store.root)
    assert len(paths) == 2
    for path in paths:
        relative = path.relative_to(store.root)
        assert len(relative.parts) == 2 and len(relative.parts[0]) == 2
        assert all(c.isalnum() for c in relative.name)
    assert not (store.root.parent / "outside").exists()


async def test_long_keys_use_a_sidecar(store: FileBlobStore) -> None:
    key = "λ" * 300
    await store.write(key, _chunks(b"long"))
    names = sorted(p.name for p in _all_files(store.root))
    assert len(names) == 2 and names[1] == names[0] + ".key"
    assert [k async for k in store.keys()] == [key]
    await store.delete(key)
    assert _all_files(store.root) == []


async def test_small_chunks_are_buffered(store: FileBlobStore, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0
    real = files._write_all

    def counting(fd: int, data: bytes | bytearray | memoryview) -> None:
        nonlocal calls
        calls += 1
        real(fd, data)

    monkeypatch.setattr(files, "_write_all", counting)
    pieces = [b"p" * 1000] * 4000  # 4 MB in 1 kB chunks
    assert await store.write("k", _chunks(*pieces)) == 4_000_000
    assert calls <= 4_000_000 // files.BUFFER_SIZE + 1  # one write per BUFFER_SIZE, not per chunk
    big = b"B" * (3 * files.BUFFER_SIZE)
    calls = 0
    await store.write("k", _chunks(b"s", big, b"t"), offset=4_000_000)
    assert calls == 3  # the buffered byte, the big chunk as it is, the tail
    assert await store.size("k") == 4_000_000 + len(big) + 2


requires_nowait = pytest.mark.skipif(files._RWF_NOWAIT is None, reason="RWF_NOWAIT is Linux-only")


@requires_nowait
async def test_bytes_in_the_page_cache_are_read_on_the_event_loop(store: FileBlobStore) -> None:
    data = os.urandom(3 * 1024 * 1024 + 5)
    await store.write("k", _chunks(data))
    pieces = [piece async for piece in store.read("k", start=7, chunk_size=1024 * 1024)]
    assert b"".join(pieces) == data[7:]
    # just written, so cached: every piece came from preadv(RWF_NOWAIT), none from a thread
    assert [type(p) for p in pieces] == [bytearray] * 3
    assert [len(p) for p in pieces] == [1024 * 1024, 1024 * 1024, 1024 * 1024 - 2]


@requires_nowait
async def test_a_cache_miss_reads_the_rest_in_threads(store: FileBlobStore, monkeypatch: pytest.MonkeyPatch) -> None:
    data = os.urandom(2 * 1024 * 1024 + 1)
    await store.write("k", _chunks(data))
    real = files._pread_cached
    answers = iter([True, False])  # the first piece is cached, the second is not

    def first_only(fd: int, size: int, position: int) -> bytearray | None:
        return real(fd, size, position) if next(answers, False) else None

    monkeypatch.setattr(files, "_pread_cached", first_only)
    pieces = [piece async for piece in store.read("k", chunk_size=1024 * 1024)]
    assert b"".join(pieces) == data
    assert [type(p) for p in pieces] == [bytearray, bytes, bytes]
    assert store._read_cached  # a miss is not a refusal: the next read tries the cache again


async def test_a_system_without_rwf_nowait_reads_in_threads(
    store: FileBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(1024 * 1024 + 3)
    await store.write("k", _chunks(data))

    def unsupported(fd: int, size: int, position: int) -> bytearray | None:
        raise OSError(95, "Operation not supported")

    monkeypatch.setattr(files, "_pread_cached", unsupported)
    store._read_cached = True
    pieces = [piece async for piece in store.read("k", chunk_size=512 * 1024)]
    assert b"".join(pieces) == data
    assert all(type(p) is bytes for p in pieces)
    assert store._read_cached is False  # asked once, not on every read


async def test_copy_is_a_hard_link_that_a_write_unshares(store: FileBlobStore) -> None:
    await store.write("src", _chunks(b"immutable bytes"))
    await store.copy("src", "dst")
    src_path, dst_path = store._locate("src").path, store._locate("dst").path
    assert os.stat(src_path).st_ino == os.stat(dst_path).st_ino
    await store.write("dst", _chunks(b"!"), offset=9)
    assert os.stat(src_path).st_ino != os.stat(dst_path).st_ino
    assert await _read(store, "src") == b"immutable bytes"
    assert await _read(store, "dst") == b"immutable!"


async def test_copy_falls_back_to_streaming(store: FileBlobStore, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_links(*_: object) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(files.os, "link", no_links)
    await store.write("src", _chunks(b"x" * 3_000_000))
    await store.copy("src", "dst")
    assert await _read(store, "dst") == b"x" * 3_000_000
    assert os.stat(store._locate("src").path).st_ino != os.stat(store._locate("dst").path).st_ino


async def test_keys_ignore_temporary_and_foreign_files(store: FileBlobStore) -> None:
    await store.write("real", _chunks(b"1"))
    shard = store._locate("real").directory
    (shard / ".tmp-abandoned").write_bytes(b"junk")
    (shard / "README").write_bytes(b"junk")
    (store.root / "stray-file").write_bytes(b"junk")
    assert [k async for k in store.keys()] == ["real"]


async def test_keys_older_than_uses_mtime(store: FileBlobStore) -> None:
    from datetime import UTC, datetime, timedelta

    await store.write("old", _chunks(b"1"))
    await store.write("new", _chunks(b"2"))
    an_hour_ago = (datetime.now(UTC) - timedelta(hours=1)).timestamp()
    os.utime(store._locate("old").path, (an_hour_ago, an_hour_ago))
    cutoff = datetime.now(UTC) - timedelta(minutes=30)
    assert [k async for k in store.keys(cutoff)] == ["old"]
    await store.copy("old", "copied")  # a copy counts as written now
    assert [k async for k in store.keys(cutoff)] == []


async def test_missing_root_has_no_keys(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path / "never-opened")
    assert [k async for k in store.keys()] == []
    assert await store.size("k") is None


# the blob is the journal: torn records and torn ranges -----------------------------------------

SIZE = 4 * 1024 * 1024


async def _three_ranges(store: FileBlobStore) -> bytes:
    data = os.urandom(3_000_000)
    for start, end in ((0, 1_000_000), (1_000_000, 2_000_000), (2_000_000, 3_000_000)):
        await store.append("s", _chunks(data[start:end]), offset=start, length=end - start, size=SIZE)
    return data


def _poke(store: FileBlobStore, position: int, data: bytes) -> None:
    with open(store._locate("s").path, "r+b") as handle:
        handle.seek(position)
        handle.write(data)


async def test_a_session_blob_is_its_bytes_then_two_record_slots(store: FileBlobStore) -> None:
    await _three_ranges(store)
    assert os.path.getsize(store._locate("s").path) == SIZE + 2 * files._RECORD_SLOT


async def test_records_carry_zlibs_crc32_whichever_library_computes_it(store: FileBlobStore) -> None:
    # The on-disk format does not depend on the CRC library: a blob written with zlib's crc32 is
    # read back by zlib-ng's, and the other way round.
    data = await _three_ranges(store)
    with open(store._locate("s").path, "rb") as handle:
        handle.seek(SIZE)
        slots = handle.read(2 * files._RECORD_SLOT)
    records = [files._unpack_record(slots[i * files._RECORD_SLOT :], SIZE) for i in range(2)]
    assert (2_000_000, 3_000_000, zlib.crc32(data[2_000_000:])) in records
    assert (1_000_000, 2_000_000, zlib.crc32(data[1_000_000:2_000_000])) in records
    assert files.crc32(data, 7) == zlib.crc32(data, 7)


async def test_torn_newest_range_bytes_fall_back_to_the_range_before(store: FileBlobStore) -> None:
    await _three_ranges(store)
    _poke(store, 2_500_000, b"\0" * 4096)  # a sync cut short: the newest range's bytes did not all land
    found = await store.progress("s", SIZE)
    assert found is not None and (found.received, found.last_range) == (2_000_000, (1_000_000, 1_999_999))
    # what the metadata store already knew is taken as it is (those bytes were acknowledged)
    trusted = await store.progress("s", SIZE, known=3_000_000)
    assert trusted is not None and trusted.received == 3_000_000


async def test_torn_newest_record_falls_back_to_the_range_before(store: FileBlobStore) -> None:
    await _three_ranges(store)
    # the third range wrote slot 0 (the second range was in slot 1)
    _poke(store, SIZE + 10, b"\xff\xff")
    found = await store.progress("s", SIZE)
    assert found is not None and found.received == 2_000_000


async def test_a_range_after_a_torn_one_writes_over_it(store: FileBlobStore) -> None:
    data = await _three_ranges(store)
    _poke(store, SIZE, b"\0" * files._RECORD_SLOT)  # the newest record is gone: back to 2,000,000
    found = await store.progress("s", SIZE)
    assert found is not None and found.received == 2_000_000
    again = await store.append("s", _chunks(data[2_000_000:]), offset=2_000_000, length=1_000_000, size=SIZE)
    assert again == 3_000_000
    found = await store.progress("s", SIZE)
    assert found is not None and found.received == 3_000_000
    assert b"".join([c async for c in store.read("s", end=3_000_000)]) == data


async def test_no_record_means_no_progress(store: FileBlobStore) -> None:
    assert await store.progress("absent", SIZE) is None
    await store.write("s", _chunks(b"x" * 1000))  # a blob written whole, as a restore does
    assert await store.progress("s", SIZE) is None


async def test_append_past_the_end_of_a_session_blob_is_refused(store: FileBlobStore) -> None:
    with pytest.raises(files.RecordNotFound):
        await store.append("absent", _chunks(b"x"), offset=5, length=1, size=10)
    await store.append("s", _chunks(b"abc"), offset=0, length=3, size=SIZE)
    assert await store.append("s", _chunks(b"d"), offset=3, length=1, size=SIZE) == 4
