"""What a store raises. Services catch these, never ``KeyError``: a bug inside a store (a
missing dict key, a bad column name) then surfaces as a 500 with its traceback instead of
passing for a record that is not there."""

from __future__ import annotations


class StoreError(Exception):
    """Base of the failures a store reports by contract."""


class RecordNotFound(StoreError):
    """A record the operation needs (the item, its folder, the user, a blob) does not exist."""


class Conflict(StoreError):
    """A uniqueness or compare-and-set precondition failed."""


class AnnouncementLost(Conflict):
    """An insert's announced blob key was reclaimed by the sweeper before the insert committed
    (the announcement had outlived the grace period): the insert must not commit."""


class LimitExceeded(StoreError):
    """An attachment would break a per-item limit; ``which`` is ``count`` or ``size``."""

    def __init__(self, which: str) -> None:
        super().__init__(which)
        self.which = which


class StorageFull(StoreError):
    """The store has no room left for the bytes (its disk is full, or its spill directory failed)."""
