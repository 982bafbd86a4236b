"""Small helpers the storage backends share (time encoding, case folding, keyed locks)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)


def as_utc(value: datetime) -> datetime:
    """``value`` as an aware UTC datetime; a naive datetime is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def to_micros(value: datetime) -> int:
    """Microseconds since the Unix epoch, UTC."""
    return (as_utc(value) - EPOCH) // _ONE_US


def from_micros(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value)


def fold(text: str) -> str:
    """ASCII-only lower case: the comparison SQLite's ``COLLATE NOCASE`` makes."""
    return text.translate(_ASCII_LOWER)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


class KeyedLocks:
    """One ``asyncio.Lock`` per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key) or (asyncio.Lock(), 0)
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    @asynccontextmanager
    async def try_hold(self, key: str) -> AsyncIterator[bool]:
        """Hold ``key``'s lock if nobody holds or waits for it (yields True), else yield False."""
        if key in self._locks:
            yield False
            return
        async with self.hold(key):
            yield True

    def __len__(self) -> int:
        return len(self._locks)
