"""Background work when several server processes share one metadata store and one blob store.

Every process runs the sweeper (expired upload sessions, orphaned bytes). Built only on the two
storage protocols, so the same code is right on memory, SQLite + files and PostgreSQL + S3:

- ``try_exclusive(metadata, SWEEPER_LOCK)``: at most one process sweeps at a time; the others
  skip their round instead of doing the same work again. The lock is ``lock_session`` under a name
  no session id takes, so it is cross-process where the store is (``flock`` for SQLite, an
  advisory lock for PostgreSQL) and dies with its holder: a sweeper killed mid-sweep never stops
  the next one.
- Each expired session is handled under ``lock_session(session.id)``, re-read inside the lock, so
  the sweeper never races an upload PUT in flight at any process (a PUT holds that lock while it
  writes) and never expires a session that was completed meanwhile.
- ``reclaim_orphan_blobs``: blobs that no record references and no insert in flight announced
  (``MetadataStore.announce_blobs``; services/sweeper.py explains why that, not a grace period,
  is what protects a blob written just before its record). Idempotent (deleting twice is
  harmless), so an interrupted or doubled run is safe.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import datetime

from graphattach.storage.interfaces import BlobStore, MetadataStore

__all__ = ["SWEEPER_LOCK", "reclaim_orphan_blobs", "try_exclusive"]

#: The lock every process's sweeper takes with ``try_exclusive`` (never a session id: ids we mint
#: have no colon).
SWEEPER_LOCK = "graphattach:sweeper"


@asynccontextmanager
async def try_exclusive(store: MetadataStore, name: str, *, wait: float = 1.0) -> AsyncIterator[bool]:
    """Hold the cross-process lock ``name`` if it can be had within ``wait`` seconds.

    Yields True while holding it, False (holding nothing) if another holder has it::

        async with try_exclusive(ctx.metadata, SWEEPER_LOCK) as leader:
            if leader:
                ...  # this process sweeps this round
    """
    async with AsyncExitStack() as stack:
        try:
            async with asyncio.timeout(wait):
                await stack.enter_async_context(store.lock_session(name))
        except TimeoutError:
            held = False
        else:
            held = True
        if not held:
            await stack.aclose()  # if the lock came just as the wait ended, give it back now
        yield held


async def reclaim_orphan_blobs(
    metadata: MetadataStore, blobs: BlobStore, *, older_than: datetime, batch_size: int = 500
) -> list[str]:
    """Delete the blobs last written before ``older_than`` that no attachment or upload session
    references; returns their keys."""
    deleted: list[str] = []
    batch: list[str] = []

    async def flush() -> None:
        referenced = await metadata.referenced_blob_keys(batch)
        for key in batch:
            if key not in referenced:
                await blobs.delete(key)
                deleted.append(key)
        batch.clear()

    async for key in blobs.keys(older_than):
        batch.append(key)
        if len(batch) >= batch_size:
            await flush()
    if batch:
        await flush()
    return deleted
