"""Snapshots: everything a server holds, exported as a stream and imported all-or-nothing.

Export walks the stores and yields the lines of ``protocol/snapshot.py``; blob bytes are read in
1 MiB chunks, so a mailbox of any size streams in bounded memory. Import first copies the stream
to a temporary file while checking every line, the count and the SHA-256 of the end line: a
truncated, corrupt or newer file is refused with nothing changed. Only then are the stores
emptied and filled from the file, again line by line. The tenant id and signing key of the
importing server stay its own; ids of users, folders, items and attachments are kept.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import IO, Any

from graphattach.domain.models import Attachment, Folder, FolderKind, Item, UploadSession
from graphattach.protocol import snapshot as fmt
from graphattach.services.context import Context

_FAR_FUTURE = datetime(9999, 12, 31, tzinfo=UTC)
_FOLDER_KINDS: tuple[FolderKind, ...] = ("mail", "calendarGroup", "calendar")


def _parents_first(folders: list[Folder]) -> list[Folder]:
    by_id = {f.id: f for f in folders}
    ordered: list[Folder] = []
    placed: set[str] = set()

    def place(folder: Folder) -> None:
        if folder.id in placed:
            return
        if folder.parent_id in by_id:
            place(by_id[folder.parent_id])
        placed.add(folder.id)
        ordered.append(folder)

    for folder in folders:
        place(folder)
    return ordered


async def export(ctx: Context) -> AsyncIterator[bytes]:
    """The snapshot's lines."""
    digest = hashlib.sha256()
    count = 0

    def emit(line: bytes) -> bytes:
        nonlocal count
        digest.update(line)
        count += 1
        return line

    yield emit(fmt.header(ctx.clock.now(), ctx.tenant_id))
    users = await ctx.metadata.list_users()
    for user in users:
        yield emit(fmt.record_line("user", user))
    items: list[Item] = []
    for user in users:
        folders: list[Folder] = []
        for kind in _FOLDER_KINDS:
            folders += await ctx.metadata.list_folders(user.id, kind, None, any_parent=True)
        for folder in _parents_first(folders):
            yield emit(fmt.record_line("folder", folder))
        for item_kind in ("message", "event"):
            found, _ = await ctx.metadata.list_items(user.id, item_kind, None)
            items += found
    for item in items:
        yield emit(fmt.record_line("item", item))
    written: set[str] = set()
    for item in items:
        for attachment in await ctx.metadata.list_attachments(item.user_id, item.id):
            if attachment.blob_key and attachment.blob_key not in written:
                written.add(attachment.blob_key)
                async for line in _blob(ctx, attachment.blob_key):
                    yield emit(line)
            yield emit(fmt.record_line("attachment", attachment))
    for session in await ctx.metadata.list_sessions_expiring_before(_FAR_FUTURE, limit=1 << 30):
        if session.blob_key not in written and await ctx.blobs.size(session.blob_key) is not None:
            written.add(session.blob_key)
            # The acknowledged bytes only: past them a session's blob holds its range records.
            async for line in _blob(ctx, session.blob_key, session.received):
                yield emit(line)
        yield emit(fmt.record_line("session", session))
    yield fmt.end_line(count, digest.hexdigest())


async def _blob(ctx: Context, key: str, length: int | None = None) -> AsyncIterator[bytes]:
    size = await ctx.blobs.size(key) or 0
    if length is not None:
        size = min(size, length)
    yield fmt.blob_line(key, size)
    async for chunk in ctx.blobs.read(key, end=size, chunk_size=fmt.CHUNK):
        yield fmt.chunk_line(bytes(chunk))


# import ------------------------------------------------------------------------------------------


class _Checker:
    """Checks lines as they arrive; ``finish`` demands the end line."""

    def __init__(self) -> None:
        self.digest = hashlib.sha256()
        self.number = 0
        self.ended = False
        self.blob_left: int | None = None

    def line(self, raw: bytes) -> None:
        self.number += 1
        if self.ended:
            raise fmt.SnapshotError(f"line {self.number}: data after the end line")
        value = fmt.parse_line(raw, self.number)
        if self.number == 1:
            fmt.check_header(value)
        else:
            kind = value.get("type")
            if kind == "end":
                if value.get("records") != self.number - 1 or value.get("sha256") != self.digest.hexdigest():
                    raise fmt.SnapshotError(
                        f"line {self.number}: the count or checksum does not match (a corrupt snapshot)"
                    )
                if self.blob_left:
                    raise fmt.SnapshotError(f"line {self.number}: a blob ends early")
                self.ended = True
                return
            if kind == "chunk":
                if not self.blob_left:
                    raise fmt.SnapshotError(f"line {self.number}: a chunk outside a blob")
                self.blob_left -= len(fmt.decode_chunk(value, self.number))
                if self.blob_left < 0:
                    raise fmt.SnapshotError(f"line {self.number}: more bytes than the blob's size")
            else:
                if self.blob_left:
                    raise fmt.SnapshotError(f"line {self.number}: a blob ends early")
                if kind == "blob":
                    size = value.get("size")
                    if not isinstance(value.get("key"), str) or not isinstance(size, int) or size < 0:
                        raise fmt.SnapshotError(f"line {self.number}: a blob without its key and size")
                    self.blob_left = size
                elif kind in fmt.RECORD_TYPES:
                    fmt.decode_record(value, self.number)
                else:
                    raise fmt.SnapshotError(f"line {self.number}: unknown record type {kind!r}")
        self.digest.update(raw)

    def finish(self) -> None:
        if self.number == 0:
            raise fmt.SnapshotError("the snapshot is empty")
        if not self.ended:
            raise fmt.SnapshotError(f"the snapshot ends at line {self.number} without its end line (truncated)")


async def receive(chunks: AsyncIterator[bytes]) -> IO[bytes]:
    """Copy a snapshot stream to a temporary file, checking it; the file is positioned at its start."""
    spool = tempfile.TemporaryFile(prefix="graphattach-snapshot-")
    checker = _Checker()
    pending = b""
    try:
        async for chunk in chunks:
            spool.write(chunk)
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                checker.line(raw + b"\n")
            if len(pending) > 4 * fmt.CHUNK:
                raise fmt.SnapshotError(f"line {checker.number + 1}: longer than any snapshot line")
        if pending:
            checker.line(pending)
        checker.finish()
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool


def _lines(spool: IO[bytes]) -> Iterator[dict[str, Any]]:
    for number, raw in enumerate(spool, start=1):
        yield fmt.parse_line(raw, number) | {"_line": number}


async def restore(ctx: Context, spool: IO[bytes]) -> dict[str, int]:
    """Replace everything the stores hold with a checked snapshot (see ``receive``)."""
    counts = {"users": 0, "folders": 0, "items": 0, "attachments": 0, "sessions": 0, "blobs": 0}
    async with ctx.reset_lock:
        await ctx.metadata.reset()
        await ctx.blobs.reset()
        ctx.journal.clear()
        lines = _lines(spool)
        next(lines)  # the header
        for value in lines:
            kind = value["type"]
            if kind == "end":
                break
            if kind == "blob":
                key, size = value["key"], value["size"]

                async def chunks(size: int = size) -> AsyncIterator[bytes]:
                    left = size
                    while left > 0:
                        chunk = next(lines)
                        data = fmt.decode_chunk(chunk, chunk["_line"])
                        left -= len(data)
                        yield data

                await ctx.blobs.write(key, chunks())
                counts["blobs"] += 1
                continue
            value.pop("_line")
            record = fmt.decode_record(value, 0)
            if isinstance(record, Folder):
                await ctx.metadata.add_folder(record)
                counts["folders"] += 1
            elif isinstance(record, Item):
                await ctx.metadata.add_item(record)
                counts["items"] += 1
            elif isinstance(record, Attachment):
                await ctx.metadata.add_attachment(record)
                counts["attachments"] += 1
            elif isinstance(record, UploadSession):
                await ctx.metadata.add_session(record)
                counts["sessions"] += 1
            else:
                await ctx.metadata.add_user(record)
                counts["users"] += 1
        await ctx.metadata.set_setting_if_absent("demo_tenant_done", "1")
    return counts


def spool_size(spool: IO[bytes]) -> int:
    return os.fstat(spool.fileno()).st_size
