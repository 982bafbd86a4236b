"""Background work across processes: one sweeper at a time, orphan reclamation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from graphattach.storage.conformance import make_attachment, make_folder, make_item, make_session, make_user
from graphattach.storage.coordination import SWEEPER_LOCK, reclaim_orphan_blobs, try_exclusive
from graphattach.storage.interfaces import BlobStore, MetadataStore
from graphattach.storage.memory import MemoryBlobStore, MemoryMetadataStore
from graphattach.storage.postgres import PostgresMetadataStore
from graphattach.storage.s3 import S3BlobStore
from graphattach.storage.sqlite import SqliteMetadataStore


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


@pytest.fixture(params=["sqlite", "postgres"])
async def two_stores(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[MetadataStore, MetadataStore]]:
    """Two stores on one database, as two processes have."""
    if request.param == "sqlite":
        first: MetadataStore = SqliteMetadataStore(tmp_path / "m.sqlite3")
        second: MetadataStore = SqliteMetadataStore(tmp_path / "m.sqlite3")
    else:
        url = request.getfixturevalue("pg_url")
        first, second = PostgresMetadataStore(url), PostgresMetadataStore(url)
    await first.open()
    await second.open()
    yield first, second
    await first.close()
    await second.close()


async def test_one_leader_at_a_time(two_stores: tuple[MetadataStore, MetadataStore]) -> None:
    first, second = two_stores
    async with try_exclusive(first, SWEEPER_LOCK) as leader:
        assert leader is True
        async with try_exclusive(second, SWEEPER_LOCK) as other:
            assert other is False
        async with try_exclusive(second, "graphattach:other-job") as unrelated:
            assert unrelated is True
    # released on exit, and after a follower gave up nothing is left held
    async with try_exclusive(second, SWEEPER_LOCK, wait=10) as leader:
        assert leader is True
    async with try_exclusive(first, SWEEPER_LOCK, wait=10) as leader:
        assert leader is True


async def test_racing_sweepers_elect_one(two_stores: tuple[MetadataStore, MetadataStore]) -> None:
    first, second = two_stores
    rounds: list[bool] = []
    everyone_decided = asyncio.Event()

    async def sweeper(store: MetadataStore) -> None:
        async with try_exclusive(store, SWEEPER_LOCK) as leader:
            rounds.append(leader)
            if len(rounds) == 4:
                everyone_decided.set()
            if leader:  # sweep until the others have given up on this round
                await everyone_decided.wait()

    await asyncio.wait_for(asyncio.gather(*(sweeper(s) for s in (first, second, first, second))), 60)
    assert sorted(rounds) == [False, False, False, True]


async def test_the_leader_lock_is_released_on_error() -> None:
    store = MemoryMetadataStore()
    await store.open()
    with pytest.raises(RuntimeError):
        async with try_exclusive(store, SWEEPER_LOCK) as leader:
            assert leader
            raise RuntimeError("sweep failed")
    async with try_exclusive(store, SWEEPER_LOCK) as leader:
        assert leader is True


async def _reclaim_case(metadata: MetadataStore, blobs: BlobStore) -> None:
    user = make_user()
    await metadata.add_user(user)
    inbox = make_folder(user)
    await metadata.add_folder(inbox)
    item = make_item(inbox)
    await metadata.add_item(item)
    await metadata.add_attachment(make_attachment(item, blob_key="attached"))
    await metadata.add_session(make_session(item, blob_key="uploading"))
    for key in ("attached", "uploading", "orphan-1", "orphan-2"):
        await blobs.write(key, _chunks(key.encode()))

    # nothing is old enough yet
    assert await reclaim_orphan_blobs(metadata, blobs, older_than=datetime.now(UTC) - timedelta(hours=1)) == []
    later = datetime.now(UTC) + timedelta(minutes=1)
    assert sorted(await reclaim_orphan_blobs(metadata, blobs, older_than=later, batch_size=1)) == [
        "orphan-1",
        "orphan-2",
    ]
    assert {k async for k in blobs.keys()} == {"attached", "uploading"}
    # two sweepers at once (or one run twice): nothing more to do, and no error
    results = await asyncio.gather(*(reclaim_orphan_blobs(metadata, blobs, older_than=later) for _ in range(2)))
    assert results == [[], []]


async def test_reclaim_orphan_blobs_in_memory() -> None:
    metadata, blobs = MemoryMetadataStore(), MemoryBlobStore()
    await metadata.open()
    await blobs.open()
    await _reclaim_case(metadata, blobs)


async def test_reclaim_orphan_blobs_on_postgres_and_s3(pg_url: str, s3_url: str) -> None:
    metadata, blobs = PostgresMetadataStore(pg_url), S3BlobStore(s3_url)
    await metadata.open()
    await blobs.open()
    try:
        await _reclaim_case(metadata, blobs)
    finally:
        await blobs.close()
        await metadata.close()
