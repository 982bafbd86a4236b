"""Cross-process locks on PostgreSQL: session-level advisory locks, ``pg_advisory_lock(key)``.

Each lock is taken on a connection of a pool of its own and held for as long as the lock is:
PostgreSQL drops it when that connection ends, so a crashed or killed holder never blocks
anyone. A waiter that gives up (cancellation) discards its connection, since the lock may have
been granted just then. Used by the PostgreSQL store's ``lock_session``.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg


def session_lock_key(session_id: str) -> int:
    """The advisory lock key of a session: 64 bits of SHA-256, signed (a collision only serialises)."""
    digest = hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@asynccontextmanager
async def advisory_lock(pool: asyncpg.Pool, key: int) -> AsyncIterator[None]:
    """Hold ``pg_advisory_lock(key)`` on a connection of ``pool`` for the ``with`` block."""
    conn = await pool.acquire()
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", key)
    except BaseException:
        # Cancelled or failed while waiting: the lock may have been granted meanwhile, and
        # only the end of this connection is sure to drop it.
        conn.terminate()
        await pool.release(conn)
        raise
    try:
        yield
    finally:
        await unlock(pool, conn, key)


async def unlock(pool: asyncpg.Pool, conn: asyncpg.Connection, key: int) -> None:
    """Release the advisory lock and hand the connection back; on any trouble end the connection
    (which releases the lock too)."""
    try:
        released = await conn.fetchval("SELECT pg_advisory_unlock($1)", key)
        if not released:
            conn.terminate()
    except BaseException:
        conn.terminate()
        raise
    finally:
        await pool.release(conn)
