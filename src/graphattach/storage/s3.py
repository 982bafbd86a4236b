"""``BlobStore`` on S3 or any S3-compatible object store (MinIO, Ceph RGW, R2, moto...).

Only the S3 protocol is used (PutObject, GetObject with ``Range``, ListObjectsV2, CopyObject,
DeleteObjects, HeadBucket, CreateBucket), through ``aiobotocore``.

Design
------
S3 objects are immutable and a multipart upload's parts must be at least 5 MiB (but the last),
while an upload session acknowledges ranges as small as the client likes and must be able to
resume, retry or cut back at any acknowledged offset. So a blob is not one object: **each write
becomes its own immutable part objects**, named by the offset of their first byte, each stored
with a single PutObject (durable once S3 answers 200). A blob's bytes are its parts in offset
order.

Bucket layout, for the URL ``s3://bucket/prefix``::

    prefix/k<base64url(key)>/p/00000000000000000000    bytes [0, n0)        (one object per part)
    prefix/k<base64url(key)>/p/00000000000004194304    bytes [4194304, ...)
    prefix/h<sha256(key)>/key                          the key, for keys too long to spell out
    prefix/h<sha256(key)>/p/...

- The blob's directory name recovers its key: ``k`` + unpadded URL-safe base64 of the key's UTF-8
  bytes, or, when that would be longer than ``MAX_NAME`` characters, ``h`` + the SHA-256 of the
  key with the key itself in a ``key`` object (read back only by ``keys()``). Keys are opaque:
  never parts of a path.
- ``write(key, chunks, offset)`` lists the blob's parts, deletes those that start at or past
  ``offset`` (highest first, so that an interruption leaves a prefix), rewrites a part that
  straddles ``offset`` as its own prefix, then cuts the incoming bytes into parts of at most
  ``part_size`` bytes (``GRAPHATTACH_S3_PART_SIZE``, default 8 MiB; an upload-session PUT of 4 MiB
  is one part) and puts them in order, one at a time. Memory is one part per write in flight.
- A blob exists while it has a part: an empty blob is an empty part at offset 0. A write that
  fails or is cancelled deletes the parts it made past ``offset`` (and leaves an empty blob at
  offset 0), waiting for a PutObject in flight to finish first so that none lands afterwards.
- ``read`` lists the parts and streams the ones that overlap the range with ranged GETs, re-cut
  into ``chunk_size`` chunks: memory is one chunk, whatever the blob's size. ``size`` sums the
  part sizes the listing reports.
- ``copy`` copies every part server-side (CopyObject) and deletes the destination's other parts.
- ``keys(older_than)`` lists the prefix once; a blob's age is its newest object's LastModified.
- ``delete`` removes every object of the blob with DeleteObjects; ``reset`` every object of ours
  under the prefix.

Consistency caveats
-------------------
- It relies on strong read-after-write and list-after-write consistency (AWS S3 since December
  2020, MinIO, Ceph RGW and moto have it). A store with eventually consistent listings could show
  a stale set of parts to the next write.
- One writer per blob at a time: the upload endpoint writes a session's blob under
  ``MetadataStore.lock_session``, and other blobs are written once. Concurrent writers of one key
  would interleave parts.
- A process that dies in the middle of a write leaves the bytes before ``offset`` intact and some
  of the new parts (or the old ones it had not yet deleted) after it. The metadata store, not the
  blob, says how many bytes were acknowledged; the next write at that offset removes the rest.
  Parts after a gap in the offsets (never produced, as parts are written in order) are ignored by
  reads and removed by the next write.
- A blob's parts are not deleted atomically: a crash in ``delete`` can leave some of them, and
  orphan reclamation (``keys(older_than)`` against the metadata store's references) removes them
  later.

Configuration (besides the URL): the usual AWS environment and files for credentials and region
(``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_PROFILE``,
``AWS_REGION`` / ``AWS_DEFAULT_REGION``), the endpoint of an S3-compatible store in
``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL`` (``graphattach serve --s3-endpoint`` sets it),
``GRAPHATTACH_S3_ADDRESSING_STYLE`` (``path``, the default with a custom endpoint, or
``virtual``), ``GRAPHATTACH_S3_PART_SIZE`` and ``GRAPHATTACH_S3_MAX_CONNECTIONS`` (default 64).
A missing bucket is created by ``open()``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import os
from collections.abc import AsyncIterable, AsyncIterator, Awaitable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlparse

from graphattach.storage._common import as_utc
from graphattach.storage.errors import RecordNotFound
from graphattach.storage.interfaces import BlobProgress

__all__ = ["S3BlobStore", "parse_s3_url"]

T = TypeVar("T")

MiB = 1024 * 1024
#: The largest part a write puts (bytes); smaller for upload-session ranges that are smaller.
DEFAULT_PART_SIZE = 8 * MiB
#: Blob directory names longer than this become ``h<sha256>`` (S3 keys are at most 1024 bytes).
MAX_NAME = 512
_PART_DIGITS = 20
_DELETE_BATCH = 1000


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> ``("bucket", "some/prefix/")`` (the prefix may be empty)."""
    parsed = urlparse(url)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"not an S3 URL (s3://bucket/prefix): {url!r}")
    prefix = parsed.path.strip("/")
    return parsed.netloc, f"{prefix}/" if prefix else ""


@dataclass(frozen=True, slots=True)
class _Part:
    offset: int
    size: int
    key: str


async def _finish(awaitable: Awaitable[T]) -> T:
    """Await ``awaitable`` to its end even if we are cancelled meanwhile (then re-raise the
    cancellation): a PutObject must not land after the cleanup that follows a cancelled write."""
    task = asyncio.ensure_future(awaitable)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():
                raise
            cancelled = True
            continue
        if cancelled:
            raise asyncio.CancelledError
        return result


class S3BlobStore:
    """``BlobStore`` under ``s3://bucket/prefix``."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.bucket, self.prefix = parse_s3_url(url)
        self.part_size = int(os.environ.get("GRAPHATTACH_S3_PART_SIZE") or DEFAULT_PART_SIZE)
        if self.part_size <= 0:
            raise ValueError("GRAPHATTACH_S3_PART_SIZE must be positive")
        self.endpoint_url = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None
        self._stack: AsyncExitStack | None = None
        self._client: Any = None

    # naming -------------------------------------------------------------------------------------

    def _name(self, key: str) -> str:
        raw = key.encode("utf-8", "surrogatepass")
        encoded = "k" + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")
        if len(encoded) <= MAX_NAME:
            return encoded
        return "h" + hashlib.sha256(raw).hexdigest()

    def _dir(self, name: str) -> str:
        return f"{self.prefix}{name}/"

    def _part_key(self, name: str, offset: int) -> str:
        return f"{self.prefix}{name}/p/{offset:0{_PART_DIGITS}d}"

    @staticmethod
    def _decode(name: str) -> str | None:
        if not name.startswith("k"):
            return None
        encoded = name[1:]
        try:
            raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
            return raw.decode("utf-8", "surrogatepass")
        except (binascii.Error, ValueError):
            return None

    # lifecycle ----------------------------------------------------------------------------------

    @property
    def client(self) -> Any:
        if self._client is None:
            raise RuntimeError("the store is not open")
        return self._client

    async def open(self) -> None:
        if self._client is not None:
            return
        from aiobotocore.config import AioConfig
        from aiobotocore.session import get_session

        style = os.environ.get("GRAPHATTACH_S3_ADDRESSING_STYLE") or ("path" if self.endpoint_url else "auto")
        config = AioConfig(
            s3={"addressing_style": style},
            retries={"max_attempts": 5, "mode": "standard"},
            max_pool_connections=int(os.environ.get("GRAPHATTACH_S3_MAX_CONNECTIONS") or 64),
            connect_timeout=10,
            read_timeout=120,
        )
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        stack = AsyncExitStack()
        try:
            client = await stack.enter_async_context(
                get_session().create_client("s3", endpoint_url=self.endpoint_url, region_name=region, config=config)
            )
            await self._ensure_bucket(client, region)
        except BaseException:
            await stack.aclose()
            raise
        self._stack, self._client = stack, client

    async def _ensure_bucket(self, client: Any, region: str | None) -> None:
        from botocore.exceptions import ClientError

        try:
            await client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as exc:
            if _error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                raise
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        if region and region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            await client.create_bucket(**kwargs)
        except ClientError as exc:
            if _error_code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise

    async def close(self) -> None:
        stack = self._stack
        self._stack = self._client = None
        if stack is not None:
            await stack.aclose()

    async def reset(self) -> None:
        doomed = [obj["Key"] async for obj in self._list(self.prefix) if self._owner(obj["Key"]) is not None]
        await self._delete_keys(doomed)

    # listing helpers ----------------------------------------------------------------------------

    async def _list(self, prefix: str) -> AsyncIterator[dict[str, Any]]:
        paginator = self.client.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", ()):
                yield obj

    def _owner(self, object_key: str) -> str | None:
        """The blob directory name an object of ours belongs to, or None for a foreign object."""
        if not object_key.startswith(self.prefix):
            return None
        name, sep, rest = object_key[len(self.prefix) :].partition("/")
        if not sep or not name or name[0] not in "kh":
            return None
        if rest == "key" and name[0] == "h":
            return name
        if rest.startswith("p/") and len(rest) == 2 + _PART_DIGITS and rest[2:].isdigit():
            return name
        return None

    async def _parts(self, name: str) -> list[_Part]:
        """Every part of the blob, in offset order."""
        base = f"{self._dir(name)}p/"
        parts = [
            _Part(int(obj["Key"][len(base) :]), int(obj["Size"]), obj["Key"])
            async for obj in self._list(base)
            if len(obj["Key"]) == len(base) + _PART_DIGITS and obj["Key"][len(base) :].isdigit()
        ]
        parts.sort(key=lambda p: p.offset)
        return parts

    @staticmethod
    def _contiguous(parts: list[_Part]) -> tuple[list[_Part], int]:
        """The parts that make up the blob (those from 0 up to the first gap) and its length."""
        kept: list[_Part] = []
        position = 0
        for part in parts:
            if part.offset != position:
                break
            kept.append(part)
            position += part.size
        return kept, position

    # object helpers -----------------------------------------------------------------------------

    async def _put(self, object_key: str, body: bytes) -> None:
        await _finish(self.client.put_object(Bucket=self.bucket, Key=object_key, Body=body))

    async def _delete_keys(self, keys: list[str]) -> None:
        for start in range(0, len(keys), _DELETE_BATCH):
            batch = keys[start : start + _DELETE_BATCH]
            response = await self.client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
            )
            errors = response.get("Errors") or []
            if errors:
                raise OSError(f"S3 could not delete {len(errors)} objects: {errors[:3]}")

    async def _ensure_sidecar(self, key: str, name: str) -> None:
        if name.startswith("h"):
            await self._put(f"{self._dir(name)}key", key.encode("utf-8", "surrogatepass"))

    async def _cut(self, name: str, offset: int, parts: list[_Part] | None = None) -> None:
        """Make the blob exactly its first ``offset`` bytes (it exists afterwards)."""
        if parts is None:
            parts = await self._parts(name)
        doomed = [p.key for p in reversed(parts) if p.offset >= offset and p.offset > 0]
        # highest first: an interruption leaves a prefix of the blob, never a hole
        for start in range(0, len(doomed), _DELETE_BATCH):
            await self._delete_keys(doomed[start : start + _DELETE_BATCH])
        for part in parts:
            if part.offset < offset < part.offset + part.size:
                await self._put(part.key, await self._get_range(part.key, 0, offset - part.offset))
            elif part.offset == 0 and offset == 0 and part.size > 0:
                await self._put(part.key, b"")
        if not parts:
            await self._put(self._part_key(name, 0), b"")

    async def _get_range(self, object_key: str, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of one object."""
        if end <= start:
            return b""
        response = await self.client.get_object(Bucket=self.bucket, Key=object_key, Range=f"bytes={start}-{end - 1}")
        async with response["Body"] as body:
            data: bytes = await body.read()
        return data

    # writing ------------------------------------------------------------------------------------

    async def write(self, key: str, chunks: AsyncIterable[bytes], *, offset: int = 0, limit: int | None = None) -> int:
        if offset < 0:
            raise ValueError("offset must not be negative")
        name = self._name(key)
        parts = await self._parts(name)
        kept, length = self._contiguous(parts)
        if not parts and offset > 0:
            raise RecordNotFound(key)
        if length < offset:
            raise ValueError(f"blob {key!r} has {length} bytes, fewer than offset {offset}")
        if not parts:
            await self._ensure_sidecar(key, name)
        # Truncate to offset. At offset 0 the first new part replaces part 0 (or the empty part
        # put at the end does), so that the blob never stops existing.
        doomed = [p.key for p in reversed(parts) if p.offset >= offset and p.offset > 0]
        if doomed:
            await self._delete_keys(doomed)
        for part in kept:
            if part.offset < offset < part.offset + part.size:
                await self._put(part.key, await self._get_range(part.key, 0, offset - part.offset))
        try:
            position, _received = await self._put_parts(name, chunks, offset, limit, [], empty_part=offset == 0)
        except BaseException:
            await _finish(self._cut(name, offset))
            raise
        return position

    async def _put_parts(
        self,
        name: str,
        chunks: AsyncIterable[bytes],
        offset: int,
        limit: int | None,
        made: list[str],
        *,
        empty_part: bool = False,
        whole: int | None = None,
    ) -> tuple[int, int]:
        """Cut ``chunks`` into parts of at most ``part_size`` bytes from ``offset`` on and put them
        in order, adding each key to ``made``; returns ``(position after the last part, bytes
        received)``. ``ValueError`` past ``limit`` bytes. The last, partial part is put only when
        ``whole`` bytes came (if given); ``empty_part`` puts an empty part when nothing came."""
        position = offset
        received = 0
        buffer = bytearray()
        async for chunk in chunks:
            received += len(chunk)
            if limit is not None and received > limit:
                raise ValueError(f"more than {limit} bytes")
            view = memoryview(chunk)
            while view:
                room = self.part_size - len(buffer)
                buffer += view[:room]
                view = view[room:]
                if len(buffer) >= self.part_size:
                    made.append(self._part_key(name, position))
                    await self._put(made[-1], bytes(buffer))
                    position += len(buffer)
                    buffer.clear()
        if (buffer and (whole is None or received == whole)) or (empty_part and position == offset):
            made.append(self._part_key(name, position))
            await self._put(made[-1], bytes(buffer))
            position += len(buffer)
        return position, received

    async def append(
        self, key: str, chunks: AsyncIterable[bytes], *, offset: int, length: int, size: int, final: bool = False
    ) -> int:
        """One upload-session range as parts from ``offset`` on, with no listing: the session's
        progress says nothing durable lies past ``offset`` but leftovers of a range that was never
        acknowledged, which the new parts replace (same offsets) or the chain from 0 never reaches.
        The ``final`` range lists the blob once and deletes what is not part of its ``size`` bytes."""
        if offset < 0 or length < 0 or offset + length > size or (final and offset + length != size):
            raise ValueError("the range must lie within the blob's size (and end at it when final)")
        name = self._name(key)
        if offset == 0:
            await self._ensure_sidecar(key, name)
        made: list[str] = []
        try:
            position, received = await self._put_parts(name, chunks, offset, length, made, whole=length)
        except BaseException:
            await _finish(self._delete_keys(list(reversed(made))))
            raise
        if received != length:
            await self._delete_keys(list(reversed(made)))  # a short body: the range never happened
            return offset + received
        if final:
            parts = await self._parts(name)
            kept, total = self._contiguous(parts)
            if total < size:
                raise OSError(f"the parts of blob {key!r} hold {total} of its {size} bytes")
            chain = {p.key for p in kept if p.offset < size}
            await self._delete_keys(sorted((p.key for p in parts if p.key not in chain), reverse=True))
        return position

    async def progress(self, key: str, size: int, *, known: int = 0) -> BlobProgress | None:
        """The parts from 0 up to the first gap (each is one whole PutObject, so each holds the
        bytes a client sent for its offsets): a listing, made only when a crash may have left the
        metadata store behind."""
        kept, _ = self._contiguous(await self._parts(self._name(key)))
        end, last = 0, None
        for part in kept:
            if part.offset + part.size > size or part.size == 0:
                break
            end, last = part.offset + part.size, part
        if last is None or end == size:
            return None  # nothing, or every byte: a completed blob records no progress
        return BlobProgress(end, (last.offset, end - 1))

    # reading ------------------------------------------------------------------------------------

    async def read(
        self, key: str, *, start: int = 0, end: int | None = None, chunk_size: int = 1024 * 1024
    ) -> AsyncIterator[bytes]:
        if start < 0 or chunk_size <= 0:
            raise ValueError("start must not be negative and chunk_size must be positive")
        parts = await self._parts(self._name(key))
        if not parts:
            raise RecordNotFound(key)
        kept, length = self._contiguous(parts)
        stop = length if end is None else min(end, length)
        pending = bytearray()
        for part in kept:
            first, last = max(start, part.offset), min(stop, part.offset + part.size)
            if first >= last:
                continue
            response = await self.client.get_object(
                Bucket=self.bucket,
                Key=part.key,
                Range=f"bytes={first - part.offset}-{last - part.offset - 1}",
            )
            async with response["Body"] as body:
                while True:
                    data = await body.read(max(chunk_size - len(pending), 64 * 1024))
                    if not data:
                        break
                    pending += data
                    while len(pending) >= chunk_size:
                        yield bytes(pending[:chunk_size])
                        del pending[:chunk_size]
        if pending:
            yield bytes(pending)

    async def size(self, key: str) -> int | None:
        parts = await self._parts(self._name(key))
        if not parts:
            return None
        return self._contiguous(parts)[1]

    # deleting and copying -----------------------------------------------------------------------

    async def delete(self, key: str) -> None:
        name = self._name(key)
        doomed = [obj["Key"] async for obj in self._list(self._dir(name)) if self._owner(obj["Key"]) == name]
        # parts highest first, the key object last
        doomed.sort(reverse=True)
        await self._delete_keys(doomed)

    async def copy(self, src: str, dst: str) -> None:
        source, target = self._name(src), self._name(dst)
        parts, _ = self._contiguous(await self._parts(source))
        if not parts:
            raise RecordNotFound(src)
        if source == target:
            return
        await self._ensure_sidecar(dst, target)
        wanted = {p.offset for p in parts}
        stale = [p.key for p in reversed(await self._parts(target)) if p.offset not in wanted]
        if stale:
            await self._delete_keys(stale)
        for part in parts:
            await _finish(
                self.client.copy_object(
                    Bucket=self.bucket,
                    Key=self._part_key(target, part.offset),
                    CopySource={"Bucket": self.bucket, "Key": part.key},
                )
            )

    # listing ------------------------------------------------------------------------------------

    async def keys(self, older_than: datetime | None = None) -> AsyncIterator[str]:
        cutoff = as_utc(older_than) if older_than is not None else None
        current: str | None = None
        newest: datetime | None = None

        async def emit(name: str, newest: datetime | None) -> str | None:
            if cutoff is not None and (newest is None or as_utc(newest) >= cutoff):
                return None
            if name.startswith("k"):
                return self._decode(name)
            try:
                raw = await self._get_range(f"{self._dir(name)}key", 0, 1 << 20)
            except Exception:  # a hashed blob whose key object is gone: not ours to name
                return None
            return raw.decode("utf-8", "surrogatepass")

        # A blob's objects share the prefix "name/", so they are adjacent in the listing.
        async for obj in self._list(self.prefix):
            name = self._owner(obj["Key"])
            if name is None:
                continue
            if name != current:
                if current is not None and (found := await emit(current, newest)) is not None:
                    yield found
                current, newest = name, None
            modified = obj.get("LastModified")
            if modified is not None and (newest is None or modified > newest):
                newest = modified
        if current is not None and (found := await emit(current, newest)) is not None:
            yield found


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))
