from __future__ import annotations

import asyncio
import mmap
import os
import pickle
import platform
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from graphattach.storage import memory as _memory
from graphattach.storage.conformance import BlobStoreConformance, MetadataStoreConformance
from graphattach.storage.errors import StorageFull
from graphattach.storage.memory import (
    SPILL_PREFIX,
    MemoryBlobStore,
    MemoryMetadataStore,
    _populate,
    _Reserved,
    remove_stale_spill_dirs,
)


class TestMemoryMetadataStore(MetadataStoreConformance):
    @pytest.fixture
    async def metadata_store(self) -> AsyncIterator[MemoryMetadataStore]:
        store = MemoryMetadataStore()
        await store.open()
        yield store
        await store.close()


class TestMemoryBlobStore(BlobStoreConformance):
    @pytest.fixture
    async def blob_store(self) -> AsyncIterator[MemoryBlobStore]:
        store = MemoryBlobStore()
        await store.open()
        yield store
        await store.close()


class TestCappedMemoryBlobStore(BlobStoreConformance):
    """The same contract with a limit so small that most writes move their blob to the spill
    directory mid-write, and some stay in memory."""

    @pytest.fixture
    async def blob_store(self, tmp_path: Path) -> AsyncIterator[MemoryBlobStore]:
        store = MemoryBlobStore(TINY_LIMIT, spill_parent=tmp_path)
        await store.open()
        yield store
        assert store.resident_bytes <= TINY_LIMIT
        await store.close()


TINY_LIMIT = 100


class TestReservingMemoryBlobStore(BlobStoreConformance):
    """The same contract with every upload session's blob in a mapping of its size (``_Reserved``)
    from its first range, as sessions of 1 MiB and more are, with a limit that some fit under."""

    @pytest.fixture
    async def blob_store(self, tmp_path: Path) -> AsyncIterator[MemoryBlobStore]:
        store = MemoryBlobStore(64 * 1024, spill_parent=tmp_path, reserve_min=1)
        await store.open()
        yield store
        assert store.resident_bytes <= 64 * 1024
        await store.close()


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def _read(store: MemoryBlobStore, key: str) -> bytes:
    return b"".join([chunk async for chunk in store.read(key)])


async def test_bytes_past_the_limit_go_to_the_spill_directory(tmp_path: Path) -> None:
    store = MemoryBlobStore(1000, spill_parent=tmp_path)
    await store.open()
    await store.write("small", _chunks(b"s" * 600))
    assert store.resident_bytes == 600 and store.spill_dir is None  # nothing spilled yet
    # grows past the limit in the middle of a write: the whole blob moves, the write goes on there
    assert await store.write("small", _chunks(b"t" * 300, b"u" * 300), offset=600) == 1200
    assert store.resident_bytes == 0
    assert store.spill_dir is not None and store.spill_dir.parent == tmp_path
    assert await _read(store, "small") == b"s" * 600 + b"t" * 300 + b"u" * 300
    await store.write("a", _chunks(b"a" * 900))  # fits again: in memory
    await store.write("b", _chunks(b"b" * 200))  # would not: straight to the spill directory
    assert store.resident_bytes == 900
    assert sorted(p.stat().st_size for p in (store.spill_dir / "blobs").rglob("k*")) == [200, 1200]
    await store.copy("a", "c")  # no room for a copy in memory either
    assert store.resident_bytes == 900 and await _read(store, "c") == b"a" * 900
    spill_dir = store.spill_dir
    await store.close()
    assert not spill_dir.exists()


async def test_a_blob_written_in_one_piece_keeps_it_without_a_copy(tmp_path: Path) -> None:
    store = MemoryBlobStore(1000, spill_parent=tmp_path)
    piece = bytes(range(200))
    assert await store.write("one", _chunks(piece)) == 200
    assert [chunk async for chunk in store.read("one")] == [piece]
    assert next(iter([chunk async for chunk in store.read("one")])) is piece  # the same object
    assert store.resident_bytes == 200
    # a bytearray may change after the write: it is copied
    mutable = bytearray(b"m" * 100)
    await store.write("mutable", _chunks(mutable))
    mutable[:] = b"!" * 100
    assert await _read(store, "mutable") == b"m" * 100
    # written again (at an offset, or over): the kept piece is copied first and left as it was
    assert await store.write("one", _chunks(b"tail"), offset=200) == 204
    assert await _read(store, "one") == piece + b"tail" and piece == bytes(range(200))
    assert await store.write("one", _chunks(b"new")) == 3
    assert await _read(store, "one") == b"new" and store.resident_bytes == 3 + 100
    # a first piece followed by more: one array of both
    assert await store.write("two", _chunks(b"a" * 50, b"b" * 50)) == 100
    assert await _read(store, "two") == b"a" * 50 + b"b" * 50 and store.resident_bytes == 203
    # a held first piece, then one past the limit: the whole blob moves to the spill directory
    assert await store.write("big", _chunks(b"c" * 500, b"d" * 500)) == 1000
    assert await _read(store, "big") == b"c" * 500 + b"d" * 500
    assert store.resident_bytes == 203 and store.spill_dir is not None
    await store.close()


async def test_a_write_that_fails_after_its_first_piece_leaves_nothing_counted(tmp_path: Path) -> None:
    store = MemoryBlobStore(1000, spill_parent=tmp_path)

    async def failing() -> AsyncIterator[bytes]:
        yield b"x" * 300
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await store.write("k", failing())
    assert store.resident_bytes == 0 and await _read(store, "k") == b""
    await store.close()


async def test_a_write_that_fails_after_moving_keeps_only_the_prefix(tmp_path: Path) -> None:
    store = MemoryBlobStore(1000, spill_parent=tmp_path)
    await store.write("k", _chunks(b"x" * 800))

    async def failing() -> AsyncIterator[bytes]:
        yield b"y" * 150
        yield b"z" * 150  # past the limit: the blob moves
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):  # the source's own error, not a full disk
        await store.write("k", failing(), offset=800)
    assert await _read(store, "k") == b"x" * 800
    assert store.resident_bytes == 0
    await store.close()


async def test_spill_failure_is_storage_full(tmp_path: Path) -> None:
    not_a_directory = tmp_path / "file"
    not_a_directory.write_bytes(b"")
    store = MemoryBlobStore(1000, spill_parent=not_a_directory)
    await store.write("k", _chunks(b"x" * 900))
    with pytest.raises(StorageFull, match="--memory-limit"):
        await store.write("k", _chunks(b"y" * 200), offset=900)
    assert await _read(store, "k") == b"x" * 900  # what was acknowledged stays, in memory
    with pytest.raises(StorageFull):
        await store.write("new", _chunks(b"n" * 200))
    assert await store.size("new") == 0  # a write that fails on a new blob leaves it empty
    assert store.resident_bytes == 900
    await store.close()


async def test_a_dead_process_spill_directory_is_removed_at_open(tmp_path: Path) -> None:
    live = MemoryBlobStore(0, spill_parent=tmp_path)
    await live.open()
    await live.write("k", _chunks(b"kept"))  # a limit of 0: every byte spills
    assert live.spill_dir is not None
    # A store whose process was killed: its directory is there, its lock is not held.
    dead = tmp_path / f"{SPILL_PREFIX}dead"
    (dead / "blobs").mkdir(parents=True)
    (dead / ".lock").write_bytes(b"")
    (dead / "blobs" / "leftover").write_bytes(b"x" * 10)
    other = MemoryBlobStore(0, spill_parent=tmp_path)
    await other.open()
    assert not dead.exists()
    assert live.spill_dir.exists() and await _read(live, "k") == b"kept"  # its lock is held
    await live.close()
    await other.close()
    assert list(tmp_path.iterdir()) == []


def test_a_killed_server_spill_directory_is_removed_by_the_next(tmp_path: Path) -> None:
    """A real process holds the directory's lock until it dies (SIGKILL: no clean-up runs)."""
    script = (
        "import asyncio, sys\n"
        "from graphattach.storage.memory import MemoryBlobStore\n"
        "async def main():\n"
        f"    store = MemoryBlobStore(0, spill_parent={str(tmp_path)!r})\n"
        "    async def one():\n"
        "        yield b'x'\n"
        "    await store.write('k', one())\n"
        "    print(store.spill_dir, flush=True)\n"
        "    await asyncio.sleep(60)\n"
        "asyncio.run(main())\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        spill_dir = Path(child.stdout.readline().strip())
        assert spill_dir.exists()
        assert remove_stale_spill_dirs(tmp_path) == []  # alive: kept
    finally:
        child.kill()
        child.wait()
    assert remove_stale_spill_dirs(tmp_path) == [spill_dir]
    assert not spill_dir.exists()


async def test_session_locks_are_forgotten_when_free() -> None:
    store = MemoryMetadataStore()
    async with store.lock_session("a"), store.lock_session("b"):
        assert len(store._locks) == 2
    assert len(store._locks) == 0


async def test_a_checkpoint_restore_drops_what_spilled_since(tmp_path: Path) -> None:
    """A reset of the test kit restores the seeded copy: blobs spilled after it go, with their
    directory, and the memory accounting matches what was restored."""
    store = MemoryBlobStore(1000, spill_parent=tmp_path)
    await store.open()
    await store.write("seeded", _chunks(b"s" * 400))
    saved = store.checkpoint()
    await store.write("later", _chunks(b"l" * 500))
    await store.write("big", _chunks(b"b" * 2000))  # past the limit: spilled
    spill_dir = store.spill_dir
    assert spill_dir is not None and spill_dir.exists()
    store.restore(saved)
    assert store.resident_bytes == 400 and not spill_dir.exists()
    assert await _read(store, "seeded") == b"s" * 400
    assert await store.size("big") is None and await store.size("later") is None
    await store.write("again", _chunks(b"a" * 2000))  # spills into a new directory
    assert await _read(store, "again") == b"a" * 2000
    await store.close()


async def test_no_checkpoint_while_blobs_are_spilled(tmp_path: Path) -> None:
    store = MemoryBlobStore(100, spill_parent=tmp_path)
    await store.open()
    await store.write("big", _chunks(b"b" * 500))
    with pytest.raises(ValueError):
        store.checkpoint()
    await store.close()


@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("extend"), st.binary(max_size=40)),
            st.tuples(st.just("cut"), st.integers(min_value=0, max_value=120)),
        ),
        max_size=30,
    ),
    st.integers(min_value=0, max_value=130),
    st.integers(min_value=0, max_value=130),
)
def test_a_reserved_blob_behaves_as_a_bytearray(ops: list[tuple[str, object]], start: int, stop: int) -> None:
    reserved, model = _Reserved(120), bytearray()
    for op, arg in ops:
        if op == "extend":
            assert isinstance(arg, bytes)
            if len(model) + len(arg) > 120:
                with pytest.raises(ValueError):
                    reserved.extend(arg)
                continue
            reserved.extend(arg)
            model.extend(arg)
        else:
            assert isinstance(arg, int)
            del reserved[arg:]
            del model[arg:]
        assert len(reserved) == len(model)
        assert reserved[start:stop] == bytes(model[start:stop])
    assert pickle.loads(pickle.dumps(reserved)) == model


async def test_an_upload_session_holds_its_size_from_its_first_range() -> None:
    store = MemoryBlobStore(reserve_min=1024)
    await store.open()
    body = os.urandom(3000)
    assert await store.append("s", _chunks(body[:1000]), offset=0, length=1000, size=3000) == 1000
    assert store.resident_bytes == 3000  # the mapping's whole size, counted once
    # a short range leaves the blob as it was
    assert await store.append("s", _chunks(body[1000:1500]), offset=1000, length=1000, size=3000) == 1500
    assert await store.size("s") == 1000
    assert await store.append("s", _chunks(body[1000:]), offset=1000, length=2000, size=3000, final=True) == 3000
    assert await _read(store, "s") == body
    assert store.resident_bytes == 3000
    await store.copy("s", "t")
    assert await _read(store, "t") == body and store.resident_bytes == 6000
    checkpoint = store.checkpoint()
    await store.delete("s")
    await store.delete("t")
    assert store.resident_bytes == 0
    store.restore(checkpoint)
    assert await _read(store, "s") == body and store.resident_bytes == 6000
    await store.close()


async def test_a_session_larger_than_the_room_left_grows_and_spills(tmp_path: Path) -> None:
    store = MemoryBlobStore(2000, spill_parent=tmp_path, reserve_min=1024)
    await store.open()
    body = os.urandom(3000)
    await store.append("s", _chunks(body[:1500]), offset=0, length=1500, size=3000)
    assert store.resident_bytes == 1500  # no mapping: it would not fit
    await store.append("s", _chunks(body[1500:]), offset=1500, length=1500, size=3000, final=True)
    assert store.spill_dir is not None and store.resident_bytes == 0
    assert await _read(store, "s") == body
    await store.close()


def test_the_helper_faults_a_mapping_in_without_touching_its_bytes() -> None:
    mapping = mmap.mmap(-1, 3 * 1024 * 1024)
    mapping[:5] = b"kept!"
    _populate(mapping, 0, len(mapping))  # returns at once where the kernel has no MADV_POPULATE_WRITE
    assert mapping[:5] == b"kept!" and mapping[-1:] == b"\0"
    mapping.close()  # no export is left on it


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt tunes glibc's allocator only")
def test_buffers_of_a_request_reuse_the_heap_instead_of_faulting_it_in_again() -> None:
    """A megabyte freed at the end of one request is there for the next without page faults
    (the trim threshold that ``_map_large_allocations`` raises along with the mmap threshold)."""
    script = """
import resource, sys
from graphattach.storage.memory import _map_large_allocations
_map_large_allocations()
keep = [bytes(1) for _ in range(1000)]  # heap in use below the buffers
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
bytes(2 << 20)
before = faults()
for _ in range(50):
    buffer = b"x" * (2 << 20)
    del buffer
print(faults() - before)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    # 50 buffers of 512 pages each: 25,600 faults when each is given back and faulted in again
    assert int(out) < 2000, out


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * mmap.PAGESIZE


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
async def test_an_abandoned_session_holds_what_was_uploaded_not_its_size() -> None:
    store = MemoryBlobStore(None)  # no limit: nothing else bounds a reservation
    await store.open()
    before = _rss()
    size = 256 * 1024 * 1024
    await store.append("s", _chunks(os.urandom(1024 * 1024)), offset=0, length=1024 * 1024, size=size)
    grown = 0
    for _ in range(50):  # until the helper threads are done
        time.sleep(0.02)
        grown, previous = _rss() - before, grown
        if grown == previous:
            break
    assert grown < 96 * 1024 * 1024, grown  # the range and at most the fault-ahead window (64 MiB)
    await store.delete("s")
    await store.close()


def test_the_fault_ahead_window_moves_with_the_writes() -> None:
    reserved = _Reserved(100 * 1024 * 1024)
    chunk = bytes(4 * 1024 * 1024)
    for _ in range(20):
        reserved.extend(chunk)
        ahead = reserved._faulted - len(reserved)
        if _memory._madvise is not None:
            assert 0 < ahead <= _memory._FAULT_AHEAD or reserved._faulted == reserved.capacity
    assert reserved[0:4] == b"\0\0\0\0" and len(reserved) == 80 * 1024 * 1024


# the pool of faulted-in mappings ----------------------------------------------------------------

MiB = 1024 * 1024


async def _session(store: MemoryBlobStore, key: str, body: bytes, size: int) -> None:
    """A session blob of ``size`` holding ``body``, its helper threads done with its mapping (a
    mapping they still fault in is not taken over: under load they may lag)."""
    assert await store.append(key, _chunks(body), offset=0, length=len(body), size=size) == len(body)
    reserved = store._blobs[key].data
    assert isinstance(reserved, _Reserved)
    for pending in reserved._pending:
        pending.result(timeout=30)


async def test_a_deleted_session_blob_gives_its_mapping_to_the_next_session() -> None:
    store = MemoryBlobStore(None)
    await store.open()
    first = os.urandom(8 * MiB)
    await _session(store, "a", first, 12 * MiB)
    mapping = store._blobs["a"].data._map  # type: ignore[union-attr]
    await store.delete("a")
    assert store._pool.kept_bytes >= 8 * MiB and store.resident_bytes == 0
    second = os.urandom(5 * MiB)
    await _session(store, "b", second[: 2 * MiB], 6 * MiB)  # a smaller session: the mapping shrinks to it
    reserved = store._blobs["b"].data
    assert isinstance(reserved, _Reserved) and reserved._map is mapping and reserved.capacity == 6 * MiB
    assert store._pool.kept_bytes == 0 and store.resident_bytes == 6 * MiB
    # the deleted blob's bytes past the new blob's own are never read
    assert await store.size("b") == 2 * MiB and await _read(store, "b") == second[: 2 * MiB]
    assert await store.append("b", _chunks(second[2 * MiB :]), offset=2 * MiB, length=3 * MiB, size=6 * MiB) == 5 * MiB
    assert await _read(store, "b") == second
    assert pickle.loads(pickle.dumps(reserved)) == second
    await store.close()


async def test_a_blob_being_read_keeps_its_mapping_until_the_reader_is_done() -> None:
    store = MemoryBlobStore(None)
    await store.open()
    first = os.urandom(8 * MiB)
    await _session(store, "a", first, 8 * MiB)
    reader = store.read("a", chunk_size=MiB)
    got = [await anext(reader)]
    await store.delete("a")  # deleted while a download is half way
    assert store._pool.kept_bytes == 0
    await _session(store, "b", os.urandom(8 * MiB), 8 * MiB)  # a fresh mapping, not the one being read
    got += [piece async for piece in reader]
    assert b"".join(got) == first
    del reader
    assert store._pool.kept_bytes >= 8 * MiB  # given back once the reader let go
    await store.close()
    assert store._pool.kept_bytes == 0


async def test_kept_mappings_go_before_any_blob_spills(tmp_path: Path) -> None:
    store = MemoryBlobStore(20 * MiB, spill_parent=tmp_path)
    await store.open()
    await _session(store, "a", os.urandom(8 * MiB), 8 * MiB)
    await store.delete("a")
    assert store._pool.kept_bytes >= 8 * MiB
    await store.write("big", _chunks(os.urandom(16 * MiB)))  # fits only without the kept mapping
    assert store.spill_dir is None and store._pool.kept_bytes == 0 and store.resident_bytes == 16 * MiB
    await store.close()


async def test_kept_mappings_stay_within_the_pool_limit_and_expire(monkeypatch: pytest.MonkeyPatch) -> None:
    store = MemoryBlobStore(None)
    await store.open()
    store._pool.limit = 20 * MiB
    for key in ("a", "b", "c"):
        await _session(store, key, os.urandom(8 * MiB), 8 * MiB)
    for key in ("a", "b", "c"):
        await store.delete(key)
    assert store._pool.kept_bytes == 16 * MiB  # the oldest went to make room
    monkeypatch.setattr(_memory, "POOL_IDLE", 0.0)
    await _session(store, "d", os.urandom(MiB), 8 * MiB)
    reserved = store._blobs["d"].data
    assert isinstance(reserved, _Reserved) and store._pool.kept_bytes == 0  # expired, none reused
    await store.close()


async def test_an_idle_pool_gives_its_mappings_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_memory, "POOL_IDLE", 0.05)
    store = MemoryBlobStore(None)
    await store.open()
    await _session(store, "a", os.urandom(8 * MiB), 8 * MiB)
    await store.delete("a")
    assert store._pool.kept_bytes >= 8 * MiB
    for _ in range(200):  # the pool's timer, with no other store call
        if store._pool.kept_bytes == 0:
            break
        await asyncio.sleep(0.05)
    assert store._pool.kept_bytes == 0
    await store.close()


async def test_sessions_reuse_the_kept_mappings_of_a_store_at_its_limit(tmp_path: Path) -> None:
    # A round of uploads filled the limit and was deleted: the next round takes every mapping over.
    store = MemoryBlobStore(24 * MiB, spill_parent=tmp_path)
    await store.open()
    for key in ("a", "b"):
        await _session(store, key, os.urandom(12 * MiB), 12 * MiB)
    old = {store._blobs[key].data._map for key in ("a", "b")}  # type: ignore[union-attr]
    for key in ("a", "b"):
        await store.delete(key)
    assert store._pool.kept_bytes == 24 * MiB
    bodies = {key: os.urandom(12 * MiB) for key in ("c", "d")}
    for key, body in bodies.items():
        await _session(store, key, body, 12 * MiB)
    assert {store._blobs[key].data._map for key in ("c", "d")} == old  # type: ignore[union-attr]
    assert store.spill_dir is None and store._pool.kept_bytes == 0 and store.resident_bytes == 24 * MiB
    for key, body in bodies.items():
        assert await _read(store, key) == body
    await store.close()
