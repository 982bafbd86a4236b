"""The sweeper: forgets expired upload sessions and deletes blobs nothing owns.

Runs as a background task every ``sweep_interval`` seconds (when > 0) in every server process,
and on demand (``POST /_graphattach/sweep``).

Why no blob of an insert in flight is ever taken, whatever either clock says: an insert
announces its new blob key to the metadata store before it writes a byte
(``MetadataStore.announce_blobs``), and commits its record and consumes the announcement in one
transaction. An announced key counts as referenced, and ``referenced_blob_keys`` reads records
and announcements in one snapshot, so a blob is an orphan only when no record references it and
no insert announced it: it was written by an insert that failed or died, or freed by a delete
that died before deleting it. Time plays no part in that decision.

Time only decides when an announcement is given up: one older than ``orphan_grace`` seconds, by
the metadata store's own real-time clock (never the server's settable clock), is taken to be from
a process that died mid-insert. Even then nothing acknowledged can be lost: the reclaim deletes
the announcement in a transaction, and an insert that has lost its announcement cannot commit
(``AnnouncementLost``, answered 503); so a clock that jumps only turns a slow insert into a
retryable error.

An expired session is forgotten under its lock, taken without waiting (``try_lock_session``): a
session busy with a PUT (perhaps a stalled one) is skipped this round, and the others are swept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from graphattach.domain.upload_session import Event, Outcome, decide, observe
from graphattach.services.context import Context
from graphattach.services.uploads import final_state, forget_session
from graphattach.storage.coordination import SWEEPER_LOCK, try_exclusive

log = logging.getLogger("graphattach.sweeper")


@dataclass(frozen=True, slots=True)
class SweepReport:
    expired_sessions: int
    orphaned_blobs: int
    #: Lock files of sessions that are gone (stores whose locks are files).
    stale_locks: int = 0
    #: Expired sessions left for the next round because a request held their lock.
    busy_sessions: int = 0


async def sweep(ctx: Context, *, batch: int = 100) -> SweepReport:
    """One round: expired sessions, stale announcements, orphaned blobs, stale lock files."""
    now = ctx.clock.now()
    expired = busy = 0
    seen: set[str] = set()
    while True:
        sessions = [s for s in await ctx.metadata.list_sessions_expiring_before(now, batch) if s.id not in seen]
        if not sessions:
            break
        for candidate in sessions:
            seen.add(candidate.id)
            async with ctx.metadata.try_lock_session(candidate.id) as held:
                if not held:
                    busy += 1  # a request holds it (maybe a stalled PUT): never wait for it here
                    continue
                session = await ctx.metadata.get_session(candidate.id)
                if session is None:
                    continue
                if decide(observe(session, now), Event.SWEEP, ctx.settings.profile) is Outcome.FORGET:
                    if await forget_session(ctx, session, final_state(session)):
                        expired += 1
    orphans = 0
    for key in await ctx.metadata.reclaim_announced_blobs(ctx.settings.orphan_grace):
        await ctx.blobs.delete(key)
        orphans += 1
    keys: list[str] = []
    async for key in ctx.blobs.keys():
        keys.append(key)
        if len(keys) >= 500:
            orphans += await _delete_unreferenced(ctx, keys)
            keys = []
    if keys:
        orphans += await _delete_unreferenced(ctx, keys)
    # Lock files are judged by their real age: a lock in use is never removed (flock), this only
    # spares a file being created right now.
    real_cutoff = datetime.now(UTC) - timedelta(seconds=60)
    stale_locks = await ctx.metadata.sweep_locks(real_cutoff)
    return SweepReport(expired, orphans, stale_locks, busy)


async def _delete_unreferenced(ctx: Context, keys: list[str]) -> int:
    referenced = await ctx.metadata.referenced_blob_keys(keys)
    count = 0
    for key in keys:
        if key not in referenced:
            await ctx.blobs.delete(key)
            count += 1
    return count


async def _sweep_forever(ctx: Context, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            # Every process runs this loop; one at a time sweeps (the others skip the round).
            async with try_exclusive(ctx.metadata, SWEEPER_LOCK) as leader:
                if not leader:
                    continue
                report = await sweep(ctx)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("upload sweep failed")
            continue
        if report.expired_sessions or report.orphaned_blobs:
            log.info(
                "swept %d expired upload sessions, %d orphaned blobs", report.expired_sessions, report.orphaned_blobs
            )


def start_background(ctx: Context) -> Any:
    """The sweeper task, when ``sweep_interval`` > 0."""
    interval = ctx.settings.sweep_interval
    if interval <= 0:
        return None
    return asyncio.get_running_loop().create_task(_sweep_forever(ctx, interval), name="graphattach-sweeper")


async def stop_background(handle: Any) -> None:
    if handle is None:
        return
    handle.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await handle
