"""``S3BlobStore`` against moto's S3 server: the conformance suite and the part layout."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from graphattach.storage.conformance import PersistentBlobStoreConformance
from graphattach.storage.s3 import S3BlobStore, parse_s3_url
from tests.engines import MotoServer

Reopen = Callable[[S3BlobStore], Awaitable[S3BlobStore]]


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        await asyncio.sleep(0)
        yield part


async def _read(store: S3BlobStore, key: str, **kwargs: Any) -> bytes:
    return b"".join([chunk async for chunk in store.read(key, **kwargs)])


async def _objects(store: S3BlobStore, prefix: str | None = None) -> dict[str, int]:
    """Every object under the store's prefix (or ``prefix``) with its size."""
    found: dict[str, int] = {}
    paginator = store.client.get_paginator("list_objects_v2")
    async for page in paginator.paginate(Bucket=store.bucket, Prefix=store.prefix if prefix is None else prefix):
        for obj in page.get("Contents", ()):
            found[obj["Key"]] = obj["Size"]
    return found


@pytest.fixture
async def store(s3_url: str) -> AsyncIterator[S3BlobStore]:
    store = S3BlobStore(s3_url)
    await store.open()
    yield store
    await store.close()


class TestS3BlobStore(PersistentBlobStoreConformance):
    persistent = True

    @pytest.fixture
    async def blob_store(self, store: S3BlobStore) -> S3BlobStore:
        return store

    @pytest.fixture
    async def reopen_blob_store(self) -> AsyncIterator[Reopen]:
        opened: list[S3BlobStore] = []

        async def reopen(old: S3BlobStore) -> S3BlobStore:
            await old.close()
            fresh = S3BlobStore(old.url)
            await fresh.open()
            opened.append(fresh)
            return fresh

        yield reopen
        for fresh in opened:
            await fresh.close()


def test_parse_s3_url() -> None:
    assert parse_s3_url("s3://bucket/some/prefix/") == ("bucket", "some/prefix/")
    assert parse_s3_url("s3://bucket") == ("bucket", "")
    assert parse_s3_url("s3://bucket/") == ("bucket", "")
    with pytest.raises(ValueError):
        parse_s3_url("s3:///prefix")
    with pytest.raises(ValueError):
        parse_s3_url("file:///tmp")


async def test_each_write_becomes_part_objects_named_by_offset(store: S3BlobStore) -> None:
    await store.write("blob", _chunks(b"a" * 10))
    await store.write("blob", _chunks(b"b" * 5), offset=10)
    await store.write("blob", _chunks(b"c" * 7), offset=15)
    objects = await _objects(store)
    name = store._name("blob")
    assert objects == {
        f"{store.prefix}{name}/p/{0:020d}": 10,
        f"{store.prefix}{name}/p/{10:020d}": 5,
        f"{store.prefix}{name}/p/{15:020d}": 7,
    }
    assert await store.size("blob") == 22
    # cutting back inside the second part: parts after it go, the straddling one is rewritten
    assert await store.write("blob", _chunks(), offset=12) == 12
    assert await _objects(store) == {f"{store.prefix}{name}/p/{0:020d}": 10, f"{store.prefix}{name}/p/{10:020d}": 2}
    assert await _read(store, "blob") == b"a" * 10 + b"bb"
    # a write at 0 replaces everything, leaving no stale part behind
    assert await store.write("blob", _chunks(b"new")) == 3
    assert await _objects(store) == {f"{store.prefix}{name}/p/{0:020d}": 3}


async def test_large_writes_are_cut_into_parts(s3_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRAPHATTACH_S3_PART_SIZE", "1000")
    store = S3BlobStore(s3_url)
    await store.open()
    try:
        data = bytes(range(256)) * 20  # 5120 bytes
        assert await store.write("k", _chunks(data[:300], data[300:2500], data[2500:])) == len(data)
        sizes = sorted((await _objects(store)).values())
        assert sizes == [120, 1000, 1000, 1000, 1000, 1000]
        assert await _read(store, "k") == data
        assert await _read(store, "k", start=999, end=2001) == data[999:2001]
        chunks = [c async for c in store.read("k", start=10, chunk_size=333)]
        assert all(len(c) == 333 for c in chunks[:-1]) and 0 < len(chunks[-1]) <= 333
        assert b"".join(chunks) == data[10:]
    finally:
        await store.close()


async def test_long_keys_use_a_hashed_name_and_a_key_object(store: S3BlobStore) -> None:
    key = "x" * 600
    await store.write(key, _chunks(b"long"))
    objects = await _objects(store)
    assert all(len(k) < 1024 for k in objects)
    names = {k[len(store.prefix) :].split("/")[0] for k in objects}
    assert len(names) == 1 and next(iter(names)).startswith("h")
    assert [k async for k in store.keys()] == [key]
    await store.copy(key, "y" * 700)
    assert await _read(store, "y" * 700) == b"long"
    await store.delete(key)
    await store.delete("y" * 700)
    assert await _objects(store) == {}


async def test_foreign_objects_under_the_prefix_are_left_alone(store: S3BlobStore) -> None:
    await store.client.put_object(Bucket=store.bucket, Key=f"{store.prefix}README.txt", Body=b"not a blob")
    await store.client.put_object(Bucket=store.bucket, Key=f"{store.prefix}kAA/other", Body=b"nor this")
    await store.write("mine", _chunks(b"1"))
    assert [k async for k in store.keys()] == ["mine"]
    await store.reset()
    assert set(await _objects(store)) == {f"{store.prefix}README.txt", f"{store.prefix}kAA/other"}


async def test_stores_under_different_prefixes_are_apart(s3: MotoServer) -> None:
    first, second = S3BlobStore(s3.url("apart/one")), S3BlobStore(s3.url("apart/one-more"))
    await first.open()
    await second.open()
    try:
        await first.write("k", _chunks(b"first"))
        await second.write("k", _chunks(b"second"))
        assert [k async for k in first.keys()] == ["k"]
        await first.reset()
        assert await second.size("k") == 6
        assert await first.size("k") is None
    finally:
        await first.close()
        await second.close()


async def test_parts_after_a_gap_are_ignored_then_removed(store: S3BlobStore) -> None:
    """What a crash between a delete and a put could leave: a stray part past the blob's end."""
    await store.write("k", _chunks(b"0123456789"))
    stray = store._part_key(store._name("k"), 50)
    await store.client.put_object(Bucket=store.bucket, Key=stray, Body=b"junk")
    assert await store.size("k") == 10
    assert await _read(store, "k") == b"0123456789"
    with pytest.raises(ValueError):
        await store.write("k", _chunks(b"x"), offset=11)
    assert await store.write("k", _chunks(b"ab"), offset=10) == 12
    assert stray not in await _objects(store)
    assert await _read(store, "k") == b"0123456789ab"


async def test_a_cancelled_write_leaves_no_part_behind(s3_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRAPHATTACH_S3_PART_SIZE", str(64 * 1024))
    store = S3BlobStore(s3_url)
    await store.open()
    try:
        await store.write("k", _chunks(b"prefix"))
        puts = 0

        async def endless() -> AsyncIterator[bytes]:
            nonlocal puts
            while True:
                puts += 1
                yield b"z" * (64 * 1024)

        task = asyncio.create_task(store.write("k", endless(), offset=6))
        while puts < 6:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        name = store._name("k")
        assert await _objects(store) == {f"{store.prefix}{name}/p/{0:020d}": 6}
        assert await _read(store, "k") == b"prefix"
    finally:
        await store.close()


async def test_open_creates_a_missing_bucket(s3: MotoServer) -> None:
    store = S3BlobStore("s3://graphattach-new-bucket/x")
    await store.open()
    try:
        await store.write("k", _chunks(b"v"))
        assert await _read(store, "k") == b"v"
        await store.open()  # opening twice is harmless
    finally:
        await store.reset()
        await store.close()
    with pytest.raises(RuntimeError):
        await store.size("k")
