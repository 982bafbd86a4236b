"""``BlobStore`` with one file per key under a root directory.

Layout: ``root/<xx>/<name>`` where ``xx`` is the first two hex digits of the key's SHA-256 (at
most 256 directories) and ``name`` recovers the key: ``k`` + lower-case base32 of its UTF-8 bytes
(safe on case-insensitive file systems). Keys too long for a file name are stored as ``h`` + the
full SHA-256 with the key itself in a sidecar file ``h<sha256>.key``. Keys are never used as paths.
Temporary files start with a dot and are ignored by ``keys()``.

File system calls run in worker threads, except reads of bytes in the page cache: ``read``
takes those on the event loop with ``preadv(RWF_NOWAIT)``, which never waits for the disk (it
fails instead, and the rest of the stream is read in threads): a thread hop per 1.5 MiB piece
is measurable on ``$value``'s throughput (bench/README.md, A/B runs). A write
gathers its chunks up to ``BUFFER_SIZE`` before handing them to a thread (one ``writev``, no
copy), so memory stays bounded whatever the total size; opening the blob rides along with its
first write, and the ``fdatasync`` and the close with its last, so a small write costs one
thread hop. A write that is cancelled waits for its
thread before closing the file descriptor.

Upload sessions (``append``): the blob is its own journal, so that an acknowledged range costs
one ``fdatasync``. A session's blob holds its ``size`` bytes at their offsets and, past them, two
64-byte record slots; each range writes its bytes, then a record (its start, its end and the CRC-32
of its bytes) into the slot that does not hold the newest record, then syncs once. The newest
record whose bytes check out is how far the session durably got, whatever the metadata store
says (``progress``): a crash in the middle of a sync can tear the newest record or its bytes, but
never the one before it, whose bytes were synced before the new range began and which the new
range does not overwrite. The final range cuts the slots off (``ftruncate`` to ``size``), so the
attachment that takes the blob over reads a plain file.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ctypes
import errno
import hashlib
import os
import secrets
import shutil
import struct
import sys
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar, cast

from graphattach.storage._common import as_utc
from graphattach.storage.interfaces import BlobChunk, BlobProgress, RecordNotFound

__all__ = ["FileBlobStore"]

try:
    # The same CRC-32 as zlib's, about ten times faster here (0.08 vs 0.85 ms per 4 MiB range,
    # bench/README.md): every acknowledged range is checksummed whole.
    # https://github.com/pycompression/python-zlib-ng
    from zlib_ng.zlib_ng import crc32
except ImportError:  # pragma: no cover - a platform without a zlib-ng wheel
    from zlib import crc32

R = TypeVar("R")

#: Bytes gathered in memory before one write in a worker thread.
BUFFER_SIZE = 512 * 1024
#: Keys whose encoded name would be longer than this use a hashed name and a sidecar.
_MAX_NAME = 200
_SIDECAR = ".key"
_COPY_BLOCK = 1024 * 1024
_IOV_MAX = 1024
#: A range record: magic, start, end (exclusive), CRC-32 of the range's bytes; then the CRC-32 of those.
_RECORD = struct.Struct("<4sQQI")
_RECORD_MAGIC = b"GAr1"
#: Bytes per record slot; a session blob has two, right after its ``size`` bytes.
_RECORD_SLOT = 64
#: Locations of keys kept (a plain dict emptied when full: the keys in use are few).
_LOCATED_KEPT = 4096


async def _in_thread(fn: Callable[..., R], *args: Any, cleanup: Callable[[R], Any] | None = None) -> R:
    """Run ``fn`` in a thread; if we are cancelled meanwhile, wait for it before propagating.

    File descriptors must not be closed (and their numbers reused) while a thread still uses them.
    ``cleanup`` receives a result that arrives after we were cancelled (an fd to close...).
    """
    future = asyncio.get_running_loop().run_in_executor(None, fn, *args)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        if not future.done():
            await _wait_uncancellable(future)
        if cleanup is not None and not future.cancelled() and future.exception() is None:
            cleanup(future.result())
        raise


async def _settle(future: asyncio.Future[R]) -> R:
    """Await a thread's ``future``; if we are cancelled meanwhile, wait for the thread first."""
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        await _wait_uncancellable(future)
        raise


async def _wait_uncancellable(future: asyncio.Future[Any]) -> None:
    """Wait for ``future`` to finish, through further cancellations, without raising its error."""
    while not future.done():
        try:
            await asyncio.wait([future])
        except asyncio.CancelledError:
            continue


@dataclass(frozen=True, slots=True)
class _Location:
    directory: Path
    path: Path
    #: The file holding the key of a hashed name, else None.
    sidecar: Path | None


_Buffer = bytes | bytearray | memoryview
#: One write: a buffer, or several written with one ``writev`` (no copy into one buffer).
_Data = _Buffer | list[bytes]


def _write_all(fd: int, data: _Data) -> None:
    if isinstance(data, list):
        _writev_all(fd, data)
        return
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _writev_all(fd: int, pieces: list[bytes]) -> None:
    views = [memoryview(p) for p in pieces if p]
    while views:
        written = os.writev(fd, views[:_IOV_MAX])
        while views and written >= len(views[0]):
            written -= len(views[0])
            views.pop(0)
        if written:
            views[0] = views[0][written:]


class _Writer:
    """The file side of one ``FileBlobStore.write``; its methods run in worker threads, one at a
    time. The blob is opened (and truncated to ``offset``) by the first ``write``."""

    __slots__ = ("fd", "key", "location", "offset", "store")

    def __init__(self, store: FileBlobStore, location: _Location, key: str, offset: int) -> None:
        self.store = store
        self.location = location
        self.key = key
        self.offset = offset
        self.fd = -1

    def _open(self) -> int:
        if self.fd < 0:
            self.fd, _created = self.store._open_for_write(self.location, self.key, self.offset)
        return self.fd

    def write(self, units: list[_Data], last: bool) -> None:
        """Write ``units`` in order; the ``last`` write also makes the blob durable and closes it.
        Other writes start the write-back of their bytes, so that the final ``fdatasync`` finds
        little left to do."""
        fd = self._open()
        for data in units:
            _write_all(fd, data)
        durable = self.store.durable
        if not last and durable:
            _start_writeback(fd)
        if last:
            if durable:
                _datasync(fd)
            self.close()

    def discard(self) -> None:
        """Cut the blob back to ``offset``, durably (creating it when ``offset`` is 0, as a write
        that failed on a new blob leaves it empty)."""
        if self.fd < 0:
            try:
                self._open()
            except (RecordNotFound, ValueError):
                return  # the blob is absent or too short: nothing was written to it
        if self.store.durable:
            _truncate_and_sync(self.fd, self.offset)
        else:
            os.ftruncate(self.fd, self.offset)

    def close(self) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)


class _RangeWriter(_Writer):
    """The file side of one ``FileBlobStore.append``: the range's bytes go to ``offset`` without
    truncating anything, and the last write adds the range's record (or, for the ``final`` range,
    cuts the records off) before the one ``fdatasync``. See ``RANGE_RECORD``."""

    __slots__ = ("appended", "crc", "final", "length", "size", "slot")

    def __init__(
        self, store: FileBlobStore, location: _Location, key: str, offset: int, length: int, size: int, final: bool
    ) -> None:
        super().__init__(store, location, key, offset)
        self.length = length
        self.size = size
        self.final = final
        self.appended = 0
        self.crc = 0
        self.slot = 0

    def _open(self) -> int:
        if self.fd < 0:
            self.fd, self.slot = self.store._open_for_append(self.location, self.key, self.offset, self.size)
        return self.fd

    def write(self, units: list[_Data], last: bool) -> None:
        fd = self._open()
        for data in units:
            _write_all(fd, data)
            for piece in data if isinstance(data, list) else (data,):
                self.crc = crc32(piece, self.crc)
                self.appended += len(piece)
        if not last:
            if self.store.durable:
                _start_writeback(fd)
            return
        if self.appended == self.length:
            if self.final:
                os.ftruncate(fd, self.size)  # a plain blob of ``size`` bytes from now on
            else:
                record = _pack_record(self.offset, self.offset + self.length, self.crc)
                os.pwrite(fd, record, self.size + self.slot * _RECORD_SLOT)
            if self.store.durable:
                _datasync(fd)
        # else: a short body. No record names these bytes, so they count for nothing: the next
        # range at ``offset`` writes over them.
        self.close()

    def discard(self) -> None:
        """Nothing to cut: bytes past the newest record are not part of the blob's progress."""


def _pack_record(start: int, end: int, crc: int) -> bytes:
    body = _RECORD.pack(_RECORD_MAGIC, start, end, crc)
    return (body + crc32(body).to_bytes(4, "little")).ljust(_RECORD_SLOT, b"\0")


def _unpack_record(raw: bytes, size: int) -> tuple[int, int, int] | None:
    """``(start, end, crc)`` of a whole, well-formed record for a blob of ``size`` bytes, else None."""
    if len(raw) < _RECORD.size + 4:
        return None
    body, check = raw[: _RECORD.size], raw[_RECORD.size : _RECORD.size + 4]
    if crc32(body).to_bytes(4, "little") != check:
        return None
    magic, start, end, crc = _RECORD.unpack(body)
    if magic != _RECORD_MAGIC or not 0 <= start < end < size:
        return None
    return start, end, crc


def _crc_of(fd: int, start: int, end: int) -> int:
    crc = 0
    position = start
    while position < end:
        data = os.pread(fd, min(_COPY_BLOCK, end - position), position)
        if not data:
            break
        crc = crc32(data, crc)
        position += len(data)
    return crc if position == end else -1


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _load_sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """Linux's ``sync_file_range`` (not in the ``os`` module), or None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return cast(Callable[[int, int, int, int], int], function)


_sync_file_range = _load_sync_file_range()
_SYNC_FILE_RANGE_WRITE = 2


_RWF_NOWAIT: int | None = getattr(os, "RWF_NOWAIT", None)


def _pread_cached(fd: int, size: int, position: int) -> bytearray | None:
    """``size`` bytes at ``position`` when all of them are in the page cache, else None: with
    ``RWF_NOWAIT`` the read never waits for the disk (Linux 4.14+), so it may run on the event loop."""
    assert _RWF_NOWAIT is not None
    buffer = bytearray(size)
    try:
        got = os.preadv(fd, [buffer], position, _RWF_NOWAIT)
    except BlockingIOError:
        return None
    return buffer if got == size else None


def _start_writeback(fd: int) -> None:
    """Ask the kernel to start writing the file's dirty pages now, without waiting (a hint: the
    durability still comes from ``fdatasync``)."""
    if _sync_file_range is not None:
        _sync_file_range(fd, 0, 0, _SYNC_FILE_RANGE_WRITE)


def _datasync(fd: int) -> None:
    sync = getattr(os, "fdatasync", os.fsync)
    sync(fd)


class FileBlobStore:
    """``BlobStore`` under ``root`` (created by ``open``). With ``durable=False`` nothing is
    synced (a scratch store whose files need not survive a crash: the in-memory store's spill)."""

    def __init__(self, root: Path | str, *, durable: bool = True) -> None:
        self.root = Path(root)
        self.durable = durable
        #: Whether reads try the page cache on the event loop (off when the system says no).
        self._read_cached = _RWF_NOWAIT is not None
        self._located: dict[str, _Location] = {}

    # naming -------------------------------------------------------------------------------------

    def _locate(self, key: str) -> _Location:
        # An upload session's key is located once per range: hashing and encoding it each time
        # was measurable on 1 KiB ranges (bench/README.md).
        found = self._located.get(key)
        if found is None:
            if len(self._located) >= _LOCATED_KEPT:
                self._located.clear()
            found = self._located[key] = self._locate_uncached(key)
        return found

    def _locate_uncached(self, key: str) -> _Location:
        raw = key.encode("utf-8", "surrogatepass")
        digest = hashlib.sha256(raw).hexdigest()
        directory = self.root / digest[:2]
        encoded = base64.b32encode(raw).decode("ascii").rstrip("=").lower()
        if len(encoded) + 1 <= _MAX_NAME:
            return _Location(directory, directory / f"k{encoded}", None)
        name = f"h{digest}"
        return _Location(directory, directory / name, directory / f"{name}{_SIDECAR}")

    @staticmethod
    def _decode(directory: Path, name: str) -> str | None:
        """The key stored under ``name``, or None for temporary, sidecar and foreign files."""
        if name.startswith("k"):
            encoded = name[1:].upper()
            try:
                raw = base64.b32decode(encoded + "=" * (-len(encoded) % 8))
                return raw.decode("utf-8", "surrogatepass")
            except (binascii.Error, ValueError):
                return None
        if name.startswith("h") and not name.endswith(_SIDECAR):
            try:
                return (directory / f"{name}{_SIDECAR}").read_bytes().decode("utf-8", "surrogatepass")
            except (OSError, ValueError):
                return None
        return None

    # lifecycle ----------------------------------------------------------------------------------

    async def open(self) -> None:
        await _in_thread(lambda: self.root.mkdir(parents=True, exist_ok=True))

    async def close(self) -> None:
        return None

    async def reset(self) -> None:
        def run() -> None:
            if not self.root.exists():
                return
            for entry in os.scandir(self.root):
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)

        await _in_thread(run)

    # writing ------------------------------------------------------------------------------------

    def _open_for_write(self, location: _Location, key: str, offset: int, *, truncate: bool = True) -> tuple[int, bool]:
        """Open the blob at ``offset``, truncated there unless ``truncate`` is False (an upload
        range, whose records lie past its bytes); returns ``(fd, created)``."""
        created_dir = False
        if location.sidecar is not None and not location.sidecar.exists():
            if not location.directory.exists():
                location.directory.mkdir(parents=True, exist_ok=True)
                created_dir = True
            self._write_sidecar(location, key)
        flags = os.O_RDWR | os.O_CLOEXEC
        created = False
        try:
            fd = os.open(location.path, flags)
        except FileNotFoundError:
            if offset > 0:
                raise RecordNotFound(key) from None
            if not location.directory.exists():
                location.directory.mkdir(parents=True, exist_ok=True)
                created_dir = True
            fd = os.open(location.path, flags | os.O_CREAT | os.O_EXCL, 0o644)
            created = True
        try:
            stat = os.fstat(fd)
            if stat.st_size < offset:
                raise ValueError(f"blob {key!r} has {stat.st_size} bytes, fewer than offset {offset}")
            if stat.st_nlink > 1:
                # Shared with a copy (hard link): write a private file instead of changing both.
                shared, fd = fd, -1
                os.close(shared)
                fd = self._unshare(location, offset)
            elif truncate:
                os.ftruncate(fd, offset)
            os.lseek(fd, offset, os.SEEK_SET)
            if created_dir and self.durable:
                _fsync_dir(self.root)
            if created and self.durable:
                _fsync_dir(location.directory)
        except BaseException:
            if fd >= 0:
                os.close(fd)
            raise
        return fd, created

    def _open_for_append(self, location: _Location, key: str, offset: int, size: int) -> tuple[int, int]:
        """Open a session blob to write at ``offset`` (nothing is truncated); returns ``(fd, slot)``,
        the slot being the one that does not hold the newest record."""
        fd, _created = self._open_for_write(location, key, offset, truncate=False)
        try:
            slots = os.pread(fd, 2 * _RECORD_SLOT, size)
        except BaseException:
            os.close(fd)
            raise
        ends = [found[1] if (found := _unpack_record(slots[i * _RECORD_SLOT :], size)) else -1 for i in range(2)]
        return fd, 0 if ends[0] <= ends[1] else 1

    def _unshare(self, location: _Location, length: int) -> int:
        """Replace a hard-linked blob by a private copy of its first ``length`` bytes; return an fd."""
        temp = location.directory / f".tmp-{secrets.token_hex(8)}"
        fd = os.open(temp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            with open(location.path, "rb") as source:
                remaining = length
                while remaining:
                    block = source.read(min(_COPY_BLOCK, remaining))
                    if not block:
                        raise ValueError("blob shrank while being copied")
                    _write_all(fd, block)
                    remaining -= len(block)
            _datasync(fd)
            os.replace(temp, location.path)
            _fsync_dir(location.directory)
        except BaseException:
            os.close(fd)
            try:
                os.unlink(temp)
            except FileNotFoundError:
                pass
            raise
        return fd

    @staticmethod
    def _write_sidecar(location: _Location, key: str) -> None:
        assert location.sidecar is not None
        temp = location.directory / f".tmp-{secrets.token_hex(8)}"
        with open(temp, "wb") as handle:
            handle.write(key.encode("utf-8", "surrogatepass"))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, location.sidecar)
        _fsync_dir(location.directory)

    async def write(self, key: str, chunks: AsyncIterable[bytes], *, offset: int = 0, limit: int | None = None) -> int:
        if offset < 0:
            raise ValueError("offset must not be negative")
        return await self._stream(_Writer(self, self._locate(key), key, offset), chunks, offset, limit)

    async def _stream(self, writer: _Writer, chunks: AsyncIterable[bytes], offset: int, limit: int | None) -> int:
        """Feed ``chunks`` to ``writer`` in ``BUFFER_SIZE`` gathers; the new length of the blob."""
        length = offset
        received = 0
        # Chunks wait here (not copied) until BUFFER_SIZE bytes are gathered; the file is opened
        # in the same thread hop as the first write, so a small body costs one hop in all.
        pending: list[bytes] = []
        pending_size = 0
        # The first full gather is held until more comes: a body in one piece (a POST's decoded
        # bytes) then goes in the same hop as its sync, one hop instead of two and no write-back
        # of its own (bench/README.md, A/B table). Later gathers go as they fill.
        held: list[_Data] | None = None
        started = False
        # One write may run in its thread while the next chunks arrive (at most one: memory stays
        # bounded by about two BUFFER_SIZE per write, three while the held gather's write runs).
        inflight: asyncio.Future[None] | None = None
        loop = asyncio.get_running_loop()
        try:
            async for chunk in chunks:
                received += len(chunk)
                if limit is not None and received > limit:
                    raise ValueError(f"more than {limit} bytes")
                if pending_size + len(chunk) < BUFFER_SIZE:
                    if chunk:
                        pending.append(chunk)
                        pending_size += len(chunk)
                    continue
                units: list[_Data] = []
                if pending:
                    units.append(pending)
                    length += pending_size
                    pending, pending_size = [], 0
                if len(chunk) >= BUFFER_SIZE:
                    units.append(chunk)
                    length += len(chunk)
                else:
                    pending, pending_size = [chunk], len(chunk)
                if not started:
                    started = True
                    held = units
                    continue
                if held is not None:
                    units, held = [*held, *units], None
                if inflight is not None:
                    await _settle(inflight)
                inflight = loop.run_in_executor(None, writer.write, units, False)
            if inflight is not None:
                await _settle(inflight)
                inflight = None
            await _in_thread(writer.write, [*(held or []), *([pending] if pending else [])], True)
            length += pending_size
        except BaseException:
            try:
                if inflight is not None:
                    await _wait_uncancellable(inflight)
                await _in_thread(writer.discard)
            finally:
                writer.close()
            raise
        return length

    async def append(
        self, key: str, chunks: AsyncIterable[bytes], *, offset: int, length: int, size: int, final: bool = False
    ) -> int:
        if offset < 0 or length < 0 or offset + length > size or (final and offset + length != size):
            raise ValueError("the range must lie within the blob's size (and end at it when final)")
        writer = _RangeWriter(self, self._locate(key), key, offset, length, size, final)
        return await self._stream(writer, chunks, offset, length)

    async def progress(self, key: str, size: int, *, known: int = 0) -> BlobProgress | None:
        location = self._locate(key)

        def run() -> BlobProgress | None:
            try:
                fd = os.open(location.path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                return None
            try:
                if os.fstat(fd).st_size <= size:
                    return None
                slots = os.pread(fd, 2 * _RECORD_SLOT, size)
                found = [r for i in range(2) if (r := _unpack_record(slots[i * _RECORD_SLOT :], size))]
                for start, end, crc in sorted(found, key=lambda r: r[1], reverse=True):
                    # Bytes up to ``known`` were acknowledged already: only newer ones are checked.
                    if end <= known or _crc_of(fd, start, end) == crc:
                        return BlobProgress(end, (start, end - 1))
                return None
            finally:
                os.close(fd)

        return await _in_thread(run)

    # reading ------------------------------------------------------------------------------------

    async def read(
        self, key: str, *, start: int = 0, end: int | None = None, chunk_size: int = 1024 * 1024
    ) -> AsyncIterator[BlobChunk]:
        if start < 0 or chunk_size <= 0:
            raise ValueError("start must not be negative and chunk_size must be positive")
        location = self._locate(key)

        def open_() -> tuple[int, int]:
            try:
                fd = os.open(location.path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                raise RecordNotFound(key) from None
            return fd, os.fstat(fd).st_size

        fd, size = await _in_thread(open_, cleanup=lambda opened: os.close(opened[0]))
        loop = asyncio.get_running_loop()
        # The next block is read in its thread while the caller sends the current one.
        ahead: asyncio.Future[bytes] | None = None
        try:
            stop = size if end is None else min(end, size)
            position = start
            # Straight from the page cache while the bytes are there (no thread, no copy but the read).
            while self._read_cached and position < stop:
                try:
                    cached = _pread_cached(fd, min(chunk_size, stop - position), position)
                except OSError:  # this file system or kernel does not take RWF_NOWAIT
                    self._read_cached = False
                    break
                if cached is None:
                    break
                position += len(cached)
                yield cached
            # Read at least a few hundred KiB per thread hop even when chunk_size is tiny.
            block = max(chunk_size, 256 * 1024)
            if position < stop:
                ahead = loop.run_in_executor(None, os.pread, fd, min(block, stop - position), position)
            while ahead is not None:
                data = await _settle(ahead)
                ahead = None
                if not data:
                    break
                position += len(data)
                if position < stop:
                    ahead = loop.run_in_executor(None, os.pread, fd, min(block, stop - position), position)
                if len(data) <= chunk_size:
                    yield data  # no copy
                    continue
                view = memoryview(data)
                for i in range(0, len(data), chunk_size):
                    yield bytes(view[i : i + chunk_size])
        finally:
            if ahead is not None:
                await _wait_uncancellable(ahead)
            os.close(fd)

    async def size(self, key: str) -> int | None:
        path = self._locate(key).path

        def run() -> int | None:
            try:
                return os.stat(path).st_size
            except FileNotFoundError:
                return None

        return await _in_thread(run)

    # deleting and copying -----------------------------------------------------------------------

    async def delete(self, key: str) -> None:
        location = self._locate(key)

        def run() -> None:
            for path in (location.path, location.sidecar):
                if path is None:
                    continue
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass

        await _in_thread(run)

    async def copy(self, src: str, dst: str) -> None:
        if src == dst:
            if await self.size(src) is None:
                raise RecordNotFound(src)
            return
        source, target = self._locate(src), self._locate(dst)
        await _in_thread(self._copy, source, target, src, dst)

    def _copy(self, source: _Location, target: _Location, src: str, dst: str) -> None:
        if not source.path.exists():
            raise RecordNotFound(src)
        created_dir = False
        if not target.directory.exists():
            target.directory.mkdir(parents=True, exist_ok=True)
            created_dir = True
        if target.sidecar is not None and not target.sidecar.exists():
            self._write_sidecar(target, dst)
        temp = target.directory / f".tmp-{secrets.token_hex(8)}"
        try:
            try:
                # Blobs are immutable once referenced, and write() unshares a linked file first.
                os.link(source.path, temp)
                # A copy is new: orphan reclamation by age must not see the source's mtime.
                os.utime(temp)
            except FileNotFoundError:
                raise RecordNotFound(src) from None
            except OSError as exc:
                if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP):
                    raise
                _stream_copy(source.path, temp, src)
            os.replace(temp, target.path)
        except BaseException:
            try:
                os.unlink(temp)
            except FileNotFoundError:
                pass
            raise
        _fsync_dir(target.directory)
        if created_dir:
            _fsync_dir(self.root)

    # listing ------------------------------------------------------------------------------------

    async def keys(self, older_than: datetime | None = None) -> AsyncIterator[str]:
        cutoff = as_utc(older_than).timestamp() if older_than is not None else None

        def shards() -> list[str]:
            try:
                return sorted(e.name for e in os.scandir(self.root) if e.is_dir(follow_symlinks=False))
            except FileNotFoundError:
                return []

        def listing(name: str) -> list[str]:
            directory = self.root / name
            found: list[str] = []
            try:
                entries = list(os.scandir(directory))
            except FileNotFoundError:
                return found
            for entry in entries:
                if entry.name.startswith(".") or entry.name.endswith(_SIDECAR):
                    continue
                try:
                    if not entry.is_file(follow_symlinks=False):
                        continue
                    if cutoff is not None and entry.stat(follow_symlinks=False).st_mtime >= cutoff:
                        continue
                except FileNotFoundError:
                    continue
                key = self._decode(directory, entry.name)
                if key is not None:
                    found.append(key)
            return found

        for shard in await _in_thread(shards):
            for key in await _in_thread(listing, shard):
                yield key


def _truncate_and_sync(fd: int, length: int) -> None:
    os.ftruncate(fd, length)
    _datasync(fd)


def _stream_copy(source: Path, target: Path, src: str) -> None:
    try:
        reader = open(source, "rb")
    except FileNotFoundError:
        raise RecordNotFound(src) from None
    with reader, open(target, "xb") as writer:
        shutil.copyfileobj(reader, writer, _COPY_BLOCK)
        writer.flush()
        os.fsync(writer.fileno())
