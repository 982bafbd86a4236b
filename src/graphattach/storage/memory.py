"""In-process stores: dicts behind the storage protocols (tests, single-process demos).

Every method runs without awaiting in the middle, so each one is atomic with respect to the other
tasks of the event loop, which is what the SQLite backend gets from its transactions. Records are
copied on the way in and out so that callers never share state with the store.
"""

from __future__ import annotations

import asyncio
import atexit
import copy
import ctypes
import dataclasses
import fcntl
import functools
import itertools
import mmap
import os
import pickle
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterable, AsyncIterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast

from graphattach.domain.models import (
    SESSION_STATES,
    Attachment,
    Folder,
    FolderKind,
    Item,
    ItemKind,
    UploadSession,
    User,
    replace,
)
from graphattach.domain.subscriptions import Claim, DeliveryRecord, DeliveryState, Notification, Outbox, Subscription
from graphattach.storage._common import EPOCH, KeyedLocks, as_utc, fold
from graphattach.storage._subscriptions import MAX_BATCH
from graphattach.storage.errors import StorageFull
from graphattach.storage.files import FileBlobStore
from graphattach.storage.interfaces import (
    ENDED_SESSIONS_KEPT,
    RESET_GENERATION,
    AnnouncementLost,
    BlobChunk,
    BlobProgress,
    Conflict,
    ItemChange,
    ItemUsage,
    LimitExceeded,
    MailboxUsage,
    RecordNotFound,
    SessionUsage,
    limit_weight,
)

__all__ = ["MemoryBlobStore", "MemoryMetadataStore"]

R = TypeVar("R")

_DATETIME_FIELDS = ("created", "last_modified", "expires", "ended")


#: Records whose fields are all immutable values: a shallow copy of one is a deep copy (and
#: costs a tenth of ``copy.deepcopy``; an upload session is copied on every range).
_FLAT_RECORDS = (UploadSession,)


#: Values that are never changed in place: a copy shares them.
_IMMUTABLE = frozenset({str, int, float, bool, type(None), bytes, datetime})


def _copy_value(value: Any) -> Any:
    """A deep copy of ``value``: the JSON values records keep (``data``) are copied by hand, a
    few times faster than ``copy.deepcopy``, whose memo this plain data does not need."""
    kind = type(value)
    if kind in _IMMUTABLE:
        return value
    if kind is dict:
        return {key: _copy_value(item) for key, item in value.items()}
    if kind is list:
        return [_copy_value(item) for item in value]
    return copy.deepcopy(value)


@functools.cache
def _field_names(kind: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(kind)) if dataclasses.is_dataclass(kind) else ()


def _fields_copy(record: Any, kind: type, names: tuple[str, ...]) -> Any:
    """A shallow copy of a dataclass record, field by field (a third of ``copy.copy``'s time,
    which goes through ``__reduce_ex__``)."""
    clone: Any = object.__new__(kind)
    for name in names:
        object.__setattr__(clone, name, getattr(record, name))
    return clone


def _clone(record: R) -> R:
    """A deep copy with its datetimes normalised to aware UTC, as the persistent backends return."""
    kind: Any = type(record)
    names = _field_names(kind)
    clone: Any
    if isinstance(record, _FLAT_RECORDS):
        clone = _fields_copy(record, kind, names)
    elif names:
        clone = _fields_copy(record, kind, names)
        for name in names:
            value = getattr(clone, name)
            if type(value) not in _IMMUTABLE:
                setattr(clone, name, _copy_value(value))
    else:
        clone = copy.deepcopy(record)
    for name in _DATETIME_FIELDS:
        value = getattr(clone, name, None)
        if isinstance(value, datetime):
            setattr(clone, name, as_utc(value))
    return cast(R, clone)


def _check_limits(
    existing: list[Attachment], new: Attachment, max_count: int | None, max_total_size: int | None
) -> None:
    if max_count is not None and len(existing) + 1 > max_count:
        raise LimitExceeded("count")
    if max_total_size is not None and sum(a.size for a in existing) + new.size > max_total_size:
        raise LimitExceeded("size")


def _wall_clock() -> datetime:
    """A blob's write time, as a file system records it: real time, not the server clock."""
    return datetime.now(UTC)


class MemoryMetadataStore:
    """``MetadataStore`` over dicts; ``lock_session`` is an ``asyncio.Lock`` per session id."""

    answers_inline = True

    def __init__(self) -> None:
        self._locks = KeyedLocks()
        self._user_changes = itertools.count(1)
        self._clear()

    def _clear(self) -> None:
        self._settings: dict[str, str] = {}
        self._users: dict[str, User] = {}
        #: Changes whenever the users do, never back to a value it had unless ``restore`` brings
        #: back the very users it stood for (``users_version``).
        self._users_version = next(self._user_changes)
        self._user_by_upn: dict[str, str] = {}
        self._folders: dict[str, Folder] = {}
        self._items: dict[str, Item] = {}
        #: item id -> attachment id -> attachment, in insertion order.
        self._attachments: dict[str, dict[str, Attachment]] = {}
        self._attachment_item: dict[str, str] = {}
        self._sessions: dict[str, UploadSession] = {}
        self._subscriptions: dict[str, Subscription] = {}
        #: subscription id -> (delivery state, lease until)
        self._delivery: dict[str, tuple[DeliveryState, datetime]] = {}
        self._outbox: dict[str, list[Notification]] = {}
        self._outbox_seq = 0
        #: outbox number -> held until (``Outbox.hold_until``)
        self._held: dict[int, datetime] = {}
        self._records: list[DeliveryRecord] = []
        self._generation = 0
        #: user id -> latest change number; (user id, folder id, item id) -> (number, removed).
        self._marks: dict[str, int] = {}
        self._versions: dict[tuple[str, str, str], tuple[int, bool]] = {}
        #: announced blob key -> when (``time.monotonic``: no clock setting moves it).
        self._announced: dict[str, float] = {}

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def reset(self) -> None:
        settings, generation = self._settings, self._generation
        self._clear()
        self._settings = settings
        self._settings[RESET_GENERATION] = str(int(settings.get(RESET_GENERATION, "0")) + 1)
        self._generation = generation + 1

    #: What ``checkpoint`` keeps: every record; not the settings (tenant id, signing key), the
    #: per-session locks or the subscriptions generation, which only moves forward.
    _STATE = (
        "_users",
        "_users_version",
        "_user_by_upn",
        "_folders",
        "_items",
        "_attachments",
        "_attachment_item",
        "_sessions",
        "_subscriptions",
        "_delivery",
        "_outbox",
        "_outbox_seq",
        "_held",
        "_records",
        "_marks",
        "_versions",
        "_announced",
    )

    def checkpoint(self) -> bytes:
        # One pickle of plain dicts and slotted dataclasses: loading it back (~50 µs for the demo
        # tenant) is a tenth of a deep copy and a small fraction of seeding again.
        return pickle.dumps({name: getattr(self, name) for name in self._STATE}, pickle.HIGHEST_PROTOCOL)

    def restore(self, checkpoint: bytes) -> None:
        state = pickle.loads(checkpoint)
        for name in self._STATE:
            setattr(self, name, state[name])
        self._generation += 1
        # as ``reset``: delta tokens of before it are stale (410 SyncStateNotFound)
        self._settings[RESET_GENERATION] = str(int(self._settings.get(RESET_GENERATION, "0")) + 1)

    # settings -----------------------------------------------------------------------------------

    async def get_setting(self, key: str) -> str | None:
        return self._settings.get(key)

    async def set_setting_if_absent(self, key: str, value: str) -> str:
        return self._settings.setdefault(key, value)

    # users --------------------------------------------------------------------------------------

    async def add_user(self, user: User) -> None:
        upn = fold(user.user_principal_name)
        if user.id in self._users or upn in self._user_by_upn:
            raise Conflict(f"user {user.id!r} / {user.user_principal_name!r} exists")
        self._users[user.id] = _clone(user)
        self._user_by_upn[upn] = user.id
        self._users_version = next(self._user_changes)

    @property
    def users_version(self) -> int:
        """A number that changes with every change of the users (read without awaiting, from any
        thread: ``GraphServer`` mints tokens in the test's thread while it stays the same)."""
        return self._users_version

    async def get_user(self, user_id: str) -> User | None:
        user = self._users.get(user_id)
        return _clone(user) if user else None

    async def get_user_by_upn(self, upn: str) -> User | None:
        user_id = self._user_by_upn.get(fold(upn))
        return await self.get_user(user_id) if user_id is not None else None

    async def list_users(self) -> list[User]:
        return [_clone(u) for u in sorted(self._users.values(), key=lambda u: as_utc(u.created))]

    async def update_user(self, user: User) -> None:
        old = self._users.get(user.id)
        if old is None:
            raise RecordNotFound(user.id)
        old_upn, new_upn = fold(old.user_principal_name), fold(user.user_principal_name)
        if new_upn != old_upn:
            if new_upn in self._user_by_upn:
                raise Conflict(f"user principal name {user.user_principal_name!r} is taken")
            del self._user_by_upn[old_upn]
            self._user_by_upn[new_upn] = user.id
        self._users[user.id] = _clone(user)
        self._users_version = next(self._user_changes)

    # folders ------------------------------------------------------------------------------------

    def _check_folder_refs(self, folder: Folder) -> None:
        if folder.user_id not in self._users:
            raise RecordNotFound(folder.user_id)
        if folder.parent_id is not None:
            parent = self._folders.get(folder.parent_id)
            if parent is None or parent.user_id != folder.user_id:
                raise RecordNotFound(folder.parent_id)
        if folder.well_known_name is not None:
            name = fold(folder.well_known_name)
            for other in self._folders.values():
                if (
                    other.id != folder.id
                    and other.user_id == folder.user_id
                    and other.kind == folder.kind
                    and other.well_known_name is not None
                    and fold(other.well_known_name) == name
                ):
                    raise Conflict(f"well-known folder {folder.well_known_name!r} exists")

    async def add_folder(self, folder: Folder) -> None:
        if folder.id in self._folders:
            raise Conflict(f"folder {folder.id!r} exists")
        self._check_folder_refs(folder)
        self._folders[folder.id] = _clone(folder)

    def _folder(self, user_id: str, folder_id: str) -> Folder | None:
        folder = self._folders.get(folder_id)
        return folder if folder is not None and folder.user_id == user_id else None

    async def get_folder(self, user_id: str, folder_id: str) -> Folder | None:
        folder = self._folder(user_id, folder_id)
        return _clone(folder) if folder else None

    async def get_well_known_folder(self, user_id: str, kind: FolderKind, name: str) -> Folder | None:
        wanted = fold(name)
        for folder in self._folders.values():
            if (
                folder.user_id == user_id
                and folder.kind == kind
                and folder.well_known_name is not None
                and fold(folder.well_known_name) == wanted
            ):
                return _clone(folder)
        return None

    async def list_folders(
        self, user_id: str, kind: FolderKind, parent_id: str | None, *, any_parent: bool = False
    ) -> list[Folder]:
        found = [
            f
            for f in self._folders.values()
            if f.user_id == user_id and f.kind == kind and (any_parent or f.parent_id == parent_id)
        ]
        found.sort(key=lambda f: as_utc(f.created))  # stable: insertion order breaks ties
        return [_clone(f) for f in found]

    async def update_folder(self, folder: Folder) -> None:
        if self._folder(folder.user_id, folder.id) is None:
            raise RecordNotFound(folder.id)
        self._check_folder_refs(folder)
        self._folders[folder.id] = _clone(folder)

    async def delete_folder(self, user_id: str, folder_id: str, *, outbox: Outbox | None = None) -> list[str]:
        if self._folder(user_id, folder_id) is None:
            return []
        doomed = {folder_id}
        grew = True
        while grew:
            children = {f.id for f in self._folders.values() if f.user_id == user_id and f.parent_id in doomed} - doomed
            doomed |= children
            grew = bool(children)
        items = [i.id for i in self._items.values() if i.user_id == user_id and i.folder_id in doomed]
        keys: set[str] = set()
        for item_id in items:
            keys |= self._drop_item(item_id)
        for fid in doomed:
            del self._folders[fid]
        self._queue(outbox)
        return self._unreferenced(keys)

    # change tracking ----------------------------------------------------------------------------

    def _changed(self, user_id: str, folder_id: str, item_id: str, *, removed: bool = False) -> None:
        seq = self._marks.get(user_id, 0) + 1
        self._marks[user_id] = seq
        self._versions[(user_id, folder_id, item_id)] = (seq, removed)

    def _attachment_changed(self, item_id: str) -> None:
        item = self._items.get(item_id)
        if item is not None:
            self._changed(item.user_id, item.folder_id, item.id)

    async def change_mark(self, user_id: str) -> int:
        return self._marks.get(user_id, 0)

    async def item_changes(
        self, user_id: str, folder_id: str, *, after: int, upto: int, limit: int
    ) -> list[ItemChange]:
        found = [
            (seq, item_id, removed)
            for (uid, fid, item_id), (seq, removed) in self._versions.items()
            if uid == user_id and fid == folder_id and after < seq <= upto
        ]
        found.sort()
        out = []
        for seq, item_id, removed in found[:limit]:
            item = None if removed else self._item(user_id, item_id)
            out.append(ItemChange(item_id, seq, removed, self._item_out(item) if item is not None else None))
        return out

    # items --------------------------------------------------------------------------------------

    def _item_out(self, item: Item) -> Item:
        out = _clone(item)
        out.has_attachments = any(not a.is_inline for a in self._attachments.get(item.id, {}).values())
        return out

    def _item(self, user_id: str, item_id: str) -> Item | None:
        item = self._items.get(item_id)
        return item if item is not None and item.user_id == user_id else None

    async def add_item(self, item: Item, *, outbox: Outbox | None = None) -> None:
        if item.id in self._items:
            raise Conflict(f"item {item.id!r} exists")
        if self._folder(item.user_id, item.folder_id) is None:
            raise RecordNotFound(item.folder_id)
        stored = _clone(item)
        stored.has_attachments = False
        self._items[item.id] = stored
        self._changed(item.user_id, item.folder_id, item.id)
        self._queue(outbox)

    async def get_item(self, user_id: str, item_id: str) -> Item | None:
        item = self._item(user_id, item_id)
        return self._item_out(item) if item else None

    async def list_items(
        self,
        user_id: str,
        kind: ItemKind,
        folder_ids: list[str] | None,
        *,
        skip: int = 0,
        top: int | None = None,
    ) -> tuple[list[Item], int]:
        if skip < 0 or (top is not None and top < 0):
            raise ValueError("skip and top must not be negative")
        folders = set(folder_ids) if folder_ids is not None else None
        found = [
            i
            for i in self._items.values()
            if i.user_id == user_id and i.kind == kind and (folders is None or i.folder_id in folders)
        ]
        found.sort(key=lambda i: (as_utc(i.created), i.id), reverse=True)
        page = found[skip:] if top is None else found[skip : skip + top]
        return [self._item_out(i) for i in page], len(found)

    async def update_item(self, item: Item, *, outbox: Outbox | None = None) -> None:
        before = self._item(item.user_id, item.id)
        if before is None:
            raise RecordNotFound(item.id)
        if self._folder(item.user_id, item.folder_id) is None:
            raise RecordNotFound(item.folder_id)
        stored = _clone(item)
        stored.has_attachments = False
        self._items[item.id] = stored
        if before.folder_id != item.folder_id:
            self._changed(item.user_id, before.folder_id, item.id, removed=True)
        self._changed(item.user_id, item.folder_id, item.id)
        self._queue(outbox)

    def _drop_item(self, item_id: str) -> set[str]:
        item = self._items.pop(item_id)
        self._changed(item.user_id, item.folder_id, item.id, removed=True)
        keys: set[str] = set()
        for attachment in self._attachments.pop(item_id, {}).values():
            del self._attachment_item[attachment.id]
            if attachment.blob_key is not None:
                keys.add(attachment.blob_key)
        return keys

    async def delete_item(self, user_id: str, item_id: str, *, outbox: Outbox | None = None) -> list[str]:
        if self._item(user_id, item_id) is None:
            return []
        keys = self._drop_item(item_id)
        self._queue(outbox)
        return self._unreferenced(keys)

    # attachments --------------------------------------------------------------------------------

    def _insert_attachment(self, attachment: Attachment, max_count: int | None, max_total_size: int | None) -> None:
        if self._item(attachment.user_id, attachment.item_id) is None:
            raise RecordNotFound(attachment.item_id)
        if attachment.id in self._attachment_item:
            raise Conflict(f"attachment {attachment.id!r} exists")
        existing = self._attachments.setdefault(attachment.item_id, {})
        _check_limits(list(existing.values()), attachment, max_count, max_total_size)
        existing[attachment.id] = _clone(attachment)
        self._attachment_item[attachment.id] = attachment.item_id
        self._attachment_changed(attachment.item_id)

    async def add_attachment(
        self,
        attachment: Attachment,
        *,
        max_count: int | None = None,
        max_total_size: int | None = None,
        announced: bool = False,
        outbox: Outbox | None = None,
    ) -> None:
        if announced and (attachment.blob_key is None or attachment.blob_key not in self._announced):
            raise AnnouncementLost(str(attachment.blob_key))
        self._insert_attachment(attachment, max_count, max_total_size)
        if announced:
            assert attachment.blob_key is not None
            del self._announced[attachment.blob_key]
        self._queue(outbox)

    async def send_item(
        self,
        draft: Item,
        sent: Item | None,
        copies: list[tuple[Item, list[Attachment]]],
        sources: list[str],
        *,
        outbox: Outbox | None = None,
    ) -> list[str]:
        current = self._item(draft.user_id, draft.id)
        if current is None:
            raise RecordNotFound(draft.id)
        if current.change_key != draft.change_key or list(self._attachments.get(draft.id, {})) != sources:
            raise Conflict(f"item {draft.id!r} changed")
        for item, _ in copies:
            if item.id in self._items or self._folder(item.user_id, item.folder_id) is None:
                raise RecordNotFound(item.folder_id)
        if sent is not None and self._folder(sent.user_id, sent.folder_id) is None:
            raise RecordNotFound(sent.folder_id)
        # nothing below can fail: the whole send happens, or (above) none of it
        keys: set[str] = set()
        if sent is None:
            keys = self._drop_item(draft.id)
        else:
            stored = _clone(sent)
            stored.has_attachments = False
            self._items[sent.id] = stored
            if current.folder_id != sent.folder_id:
                self._changed(sent.user_id, current.folder_id, sent.id, removed=True)
            self._changed(sent.user_id, sent.folder_id, sent.id)
        for item, attachments in copies:
            stored = _clone(item)
            stored.has_attachments = False
            self._items[item.id] = stored
            for attachment in attachments:
                self._attachments.setdefault(item.id, {})[attachment.id] = _clone(attachment)
                self._attachment_item[attachment.id] = item.id
            self._changed(item.user_id, item.folder_id, item.id)
        self._queue(outbox)
        return self._unreferenced(keys)

    async def get_attachment(self, user_id: str, item_id: str, attachment_id: str) -> Attachment | None:
        if self._item(user_id, item_id) is None:
            return None
        attachment = self._attachments.get(item_id, {}).get(attachment_id)
        return _clone(attachment) if attachment else None

    async def list_attachments(self, user_id: str, item_id: str) -> list[Attachment]:
        return [_clone(a) for a in self._stored_attachments(user_id, item_id)]

    def _stored_attachments(self, user_id: str, item_id: str) -> list[Attachment]:
        """The item's attachments as stored (not copies: read them, never hand them out)."""
        if self._item(user_id, item_id) is None:
            return []
        return list(self._attachments.get(item_id, {}).values())

    async def item_usage(self, user_id: str, item_id: str) -> ItemUsage:
        existing = self._stored_attachments(user_id, item_id)
        return ItemUsage(len(existing), sum(limit_weight(a) for a in existing), sum(a.size for a in existing))

    async def items_usage(self, user_id: str, item_ids: list[str]) -> dict[str, ItemUsage]:
        return {i: await self.item_usage(user_id, i) for i in item_ids}

    async def delete_attachment(
        self, user_id: str, item_id: str, attachment_id: str, *, outbox: Outbox | None = None
    ) -> list[str] | None:
        if self._item(user_id, item_id) is None:
            return None
        attachment = self._attachments.get(item_id, {}).pop(attachment_id, None)
        if attachment is None:
            return None
        del self._attachment_item[attachment_id]
        self._attachment_changed(item_id)
        self._queue(outbox)
        return self._unreferenced({attachment.blob_key} if attachment.blob_key is not None else set())

    # upload sessions ----------------------------------------------------------------------------

    async def add_session(self, session: UploadSession) -> None:
        if session.id in self._sessions:
            raise Conflict(f"session {session.id!r} exists")
        if session.state not in SESSION_STATES:
            raise ValueError(session.state)
        self._sessions[session.id] = _clone(replace(session, ended=None))

    def _live_session(self, session_id: str) -> UploadSession | None:
        """The session unless it is unknown or ended (ended ones are for ``recent_sessions`` only)."""
        session = self._sessions.get(session_id)
        return session if session is not None and session.ended is None else None

    async def get_session(self, session_id: str) -> UploadSession | None:
        session = self._live_session(session_id)
        return _clone(session) if session else None

    async def session_usage(self, session_id: str) -> SessionUsage:
        session = self._live_session(session_id)
        if session is None:
            return SessionUsage(None, None, 0)
        user = self._users.get(session.user_id)
        used = sum(a.content_length for a in self._stored_attachments(session.user_id, session.item_id))
        return SessionUsage(_clone(session), user.max_message_size if user is not None else None, used)

    async def sweep_locks(self, older_than: datetime) -> int:
        """In-process locks leave nothing behind to sweep."""
        return 0

    async def advance_session(
        self, session_id: str, expected_received: int, received: int, last_range: tuple[int, int]
    ) -> bool:
        session = self._live_session(session_id)
        if session is None or session.state != "active" or session.received != expected_received:
            return False
        session.received = received
        session.last_range = (last_range[0], last_range[1])
        return True

    async def complete_session(
        self,
        session_id: str,
        expected_received: int,
        attachment: Attachment,
        *,
        max_count: int | None = None,
        max_total_size: int | None = None,
        outbox: Outbox | None = None,
    ) -> bool:
        session = self._live_session(session_id)
        if session is None or session.state != "active" or session.received != expected_received:
            return False
        self._insert_attachment(attachment, max_count, max_total_size)
        session.state = "completed"
        session.received = session.size
        session.attachment_id = attachment.id
        session.last_range = (expected_received, session.size - 1)
        self._queue(outbox)
        return True

    async def set_session_state(self, session_id: str, state: str) -> UploadSession | None:
        if state not in SESSION_STATES:
            raise ValueError(state)
        session = self._live_session(session_id)
        if session is None:
            return None
        before = _clone(session)
        session.state = state  # type: ignore[assignment]
        return before

    async def end_session(
        self, session_id: str, state: str, ended: datetime, *, keep: int = ENDED_SESSIONS_KEPT
    ) -> UploadSession | None:
        if state not in SESSION_STATES or state == "active":
            raise ValueError(state)
        session = self._live_session(session_id)
        if session is None:
            return None
        before = _clone(session)
        session.state = state  # type: ignore[assignment]
        session.ended = as_utc(ended)
        mine = [s for s in self._sessions.values() if s.user_id == session.user_id and s.ended is not None]
        # newest first by ``ended``; among equal times, the later insertion first (as the SQL stores)
        order = {s.id: n for n, s in enumerate(self._sessions.values())}
        mine.sort(key=lambda s: (s.ended, order[s.id]), reverse=True)
        for old in mine[max(keep, 0) :]:
            del self._sessions[old.id]
        return before

    async def delete_session(self, session_id: str) -> UploadSession | None:
        if self._live_session(session_id) is None:
            return None
        session = self._sessions.pop(session_id)
        return _clone(session)

    async def recent_sessions(self, limit: int) -> list[UploadSession]:
        # dicts keep insertion order: the newest session is the last one added
        return [_clone(s) for s in list(self._sessions.values())[::-1][:limit]]

    async def mailbox_usage(self, user_id: str) -> MailboxUsage:
        mine = [i for i in self._items.values() if i.user_id == user_id]
        attachments = [a for i in mine for a in self._attachments.get(i.id, {}).values()]
        return MailboxUsage(
            sum(1 for i in mine if i.kind == "message"),
            sum(1 for i in mine if i.kind == "event"),
            len(attachments),
            sum(limit_weight(a) for a in attachments),
        )

    async def list_sessions_expiring_before(self, when: datetime, limit: int = 100) -> list[UploadSession]:
        cutoff = as_utc(when)
        found = [s for s in self._sessions.values() if s.ended is None and as_utc(s.expires) < cutoff]
        found.sort(key=lambda s: (as_utc(s.expires), s.id))
        return [_clone(s) for s in found[:limit]]

    def lock_session(self, session_id: str) -> AbstractAsyncContextManager[None]:
        return self._locks.hold(session_id)

    def try_lock_session(self, session_id: str) -> AbstractAsyncContextManager[bool]:
        return self._locks.try_hold(session_id)

    # blobs --------------------------------------------------------------------------------------

    def _blob_refs(self) -> set[str]:
        refs = {a.blob_key for atts in self._attachments.values() for a in atts.values() if a.blob_key is not None}
        # A completed session's bytes are its attachment's: they go when the attachment goes.
        refs |= {s.blob_key for s in self._sessions.values() if s.ended is None and s.state != "completed"}
        return refs

    def _unreferenced(self, keys: set[str]) -> list[str]:
        if not keys:
            return []
        return sorted(keys - self._blob_refs())

    async def referenced_blob_keys(self, keys: list[str]) -> set[str]:
        return set(keys) & (self._blob_refs() | self._announced.keys())

    async def announce_blobs(self, keys: list[str]) -> None:
        now = time.monotonic()
        for key in keys:
            self._announced.setdefault(key, now)

    async def withdraw_blobs(self, keys: list[str]) -> None:
        for key in keys:
            self._announced.pop(key, None)

    async def reclaim_announced_blobs(self, older_than: float) -> list[str]:
        cutoff = time.monotonic() - older_than
        stale = {key for key, when in self._announced.items() if when <= cutoff}
        for key in stale:
            del self._announced[key]
        return self._unreferenced(stale)

    # subscriptions ------------------------------------------------------------------------------

    async def add_subscription(self, subscription: Subscription, *, max_per_user: int | None = None) -> None:
        if subscription.id in self._subscriptions:
            raise Conflict(f"subscription {subscription.id!r} exists")
        if max_per_user is not None:
            active = sum(
                1 for s in self._subscriptions.values() if s.user_id == subscription.user_id and s.state == "active"
            )
            if active >= max_per_user:
                raise LimitExceeded("count")
        self._subscriptions[subscription.id] = copy.deepcopy(subscription)
        self._generation += 1
        self._delivery[subscription.id] = (DeliveryState(next_attempt=subscription.created), subscription.created)
        self._outbox[subscription.id] = []

    async def get_subscription(self, subscription_id: str) -> Subscription | None:
        found = self._subscriptions.get(subscription_id)
        return copy.deepcopy(found) if found else None

    async def list_subscriptions(self, user_id: str | None = None) -> list[Subscription]:
        return [
            copy.deepcopy(s)
            for s in sorted(self._subscriptions.values(), key=lambda s: as_utc(s.created))
            if user_id is None or s.user_id == user_id
        ]

    async def update_subscription(self, subscription: Subscription) -> None:
        if subscription.id not in self._subscriptions:
            raise RecordNotFound(subscription.id)
        self._subscriptions[subscription.id] = copy.deepcopy(subscription)
        self._generation += 1

    async def subscriptions_generation(self) -> int:
        return self._generation

    async def delete_subscription(self, subscription_id: str) -> bool:
        self._delivery.pop(subscription_id, None)
        self._outbox.pop(subscription_id, None)
        self._generation += 1
        return self._subscriptions.pop(subscription_id, None) is not None

    async def enqueue_notifications(self, notifications: list[Notification]) -> None:
        for notification in notifications:
            self._append(notification)

    def _append(self, notification: Notification, held_until: datetime | None = None) -> int:
        queue = self._outbox.get(notification.subscription_id)
        if queue is None:
            return 0
        self._outbox_seq += 1
        stored = copy.deepcopy(notification)
        stored.seq, stored.merge_into, stored.merged_body = self._outbox_seq, 0, None
        queue.append(stored)
        if held_until is not None:
            self._held[self._outbox_seq] = held_until
        return self._outbox_seq

    async def release_notifications(self, seqs: list[int]) -> None:
        for seq in seqs:
            self._held.pop(seq, None)

    def _unheld(self, queue: list[Notification], now: datetime) -> list[Notification]:
        """The waiting notifications before the first one still held."""
        for index, n in enumerate(queue):
            until = self._held.get(n.seq)
            if until is not None and as_utc(until) > now:
                return queue[:index]
        return queue

    def _queue(self, outbox: Outbox | None) -> None:
        """Queue what ``outbox`` decides, after the write's checks passed (nothing after it fails)."""
        if outbox is None:
            return
        found = outbox.decide(self._generation, None)
        if found is None:
            mine = sorted(
                (s for s in self._subscriptions.values() if s.user_id in outbox.user_ids),
                key=lambda s: (as_utc(s.created), s.id),
            )
            found = outbox.decide(self._generation, [copy.deepcopy(s) for s in mine])
        for notification in found or []:
            merged = False
            queue = self._outbox.get(notification.subscription_id)
            if notification.merge_into and queue is not None:
                _state, lease = self._delivery[notification.subscription_id]
                target = next((n for n in queue if n.seq == notification.merge_into), None)
                if target is not None and as_utc(lease) <= as_utc(outbox.now):
                    if notification.cancels:
                        queue.remove(target)
                        seq, merged = target.seq, True
                    elif notification.merged_body is not None:
                        target.body = copy.deepcopy(notification.merged_body)
                        seq, merged = target.seq, True
            if not merged:
                seq = self._append(notification, outbox.hold_until)
            if seq and outbox.queued is not None:
                outbox.queued(notification, seq, merged)

    async def claim_notifications(self, now: datetime, lease_until: datetime, limit: int) -> list[Claim]:
        claims: list[Claim] = []
        due = sorted(
            (state.next_attempt, sub_id)
            for sub_id, (state, lease) in self._delivery.items()
            if self._unheld(self._outbox.get(sub_id) or [], now)
            and as_utc(state.next_attempt) <= now
            and as_utc(lease) <= now
        )
        for _, sub_id in due[:limit]:
            state, _lease = self._delivery[sub_id]
            self._delivery[sub_id] = (state, lease_until)
            claims.append(
                Claim(
                    copy.deepcopy(self._subscriptions[sub_id]),
                    copy.deepcopy(state),
                    copy.deepcopy(self._unheld(self._outbox[sub_id], now)[:MAX_BATCH]),
                )
            )
        return claims

    async def finish_delivery(self, subscription_id: str, delivered_through: int, state: DeliveryState) -> None:
        if subscription_id not in self._delivery:
            return
        queue = self._outbox[subscription_id]
        queue[:] = [n for n in queue if n.seq > delivered_through]
        self._delivery[subscription_id] = (copy.deepcopy(state), EPOCH)

    async def add_delivery_record(self, record: DeliveryRecord, *, keep: int = 10_000) -> None:
        record = copy.deepcopy(record)
        record.seq = (self._records[-1].seq if self._records else 0) + 1
        self._records.append(record)
        del self._records[:-keep]

    async def list_delivery_records(self, subscription_id: str | None = None, limit: int = 100) -> list[DeliveryRecord]:
        found = [r for r in reversed(self._records) if subscription_id is None or r.subscription_id == subscription_id]
        return copy.deepcopy(found[:limit])


class _Reserved:
    """An upload session's bytes in an anonymous mapping of the session's size, made when its
    first range arrives and faulted in by helper threads a little ahead of the writes.

    A blob that grows as its ranges arrive faults in a fresh page of RAM for every 4 KiB it
    takes, on the event loop: half of the loop's time on a 150 MB upload (bench/README.md).
    ``MADV_POPULATE_WRITE`` (Linux 5.14, https://man7.org/linux/man-pages/man2/madvise.2.html)
    faults the mapping in from another thread without the GIL; where it is missing the writes
    fault the pages in themselves, as before. At most ``_FAULT_AHEAD`` bytes past the written
    ones are faulted in, so RAM still grows with what was uploaded, not with the declared size
    (an abandoned session holds little). When nothing references the blob any more, its mapping
    goes to the store's ``_MappingPool`` for the next session. Supports what the store does with a
    ``bytearray``: ``len``, slices, ``extend`` and ``del data[n:]``; it pickles as a ``bytearray``.
    """

    __slots__ = ("_map", "length", "_faulted", "_pending", "_pool")

    def __init__(
        self, capacity: int, pool: _MappingPool | None = None, taken: tuple[mmap.mmap, int] | None = None
    ) -> None:
        """A new mapping of ``capacity`` bytes, or ``taken`` from ``pool`` (its mapping, resized to
        ``capacity``, and how many bytes of it are faulted in); ``pool`` gets it back at the end."""
        self.length = 0
        #: The pieces handed to the helper threads and maybe not done (all done: the mapping is
        #: theirs no more).
        self._pending: list[Future[None]] = []
        self._pool = pool
        if taken is not None:
            self._map, resident = taken
        else:
            self._map, resident = mmap.mmap(-1, capacity), 0
        #: The end of what was handed to the helper threads to fault in (or was faulted in when
        #: the mapping came from the pool).
        self._faulted = resident // mmap.PAGESIZE * mmap.PAGESIZE
        self._fault_ahead()

    def __del__(self) -> None:
        # The blob is gone and nothing reads it any more (a reader holds this object): its
        # mapping, with the pages it faulted in, may serve the next session.
        pool, mapping = getattr(self, "_pool", None), getattr(self, "_map", None)
        if pool is not None and mapping is not None:
            pool.give(mapping, max(self.length, self._faulted), self._pending)

    @property
    def capacity(self) -> int:
        return len(self._map)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, part: slice) -> bytes:
        start, stop, _ = part.indices(self.length)
        return self._map[start:stop] if start < stop else b""

    def extend(self, chunk: bytes) -> None:
        end = self.length + len(chunk)
        if end > len(self._map):
            raise ValueError("more bytes than the blob's reserved size")
        self._map[self.length : end] = chunk
        self.length = end
        if self._faulted - end < _FAULT_AHEAD // 2 and self._faulted < len(self._map):
            self._fault_ahead()

    def _fault_ahead(self) -> None:
        """Hand the pages up to ``_FAULT_AHEAD`` bytes past the written ones to the helper threads."""
        if _madvise is None:
            return
        size = len(self._map)
        end = min(size, (self.length + _FAULT_AHEAD) // mmap.PAGESIZE * mmap.PAGESIZE)
        if end > self._faulted:
            self._pending = [f for f in self._pending if not f.done()]
            self._pending.append(_prefaulter().submit(_populate, self._map, self._faulted, end))
            self._faulted = end

    def __delitem__(self, part: slice) -> None:
        if part.stop is not None or part.step is not None:
            raise TypeError("only a blob's tail can be cut")
        start = part.start or 0
        self.length = min(self.length, start if start >= 0 else max(0, self.length + start))

    def __reduce__(self) -> tuple[type[bytearray], tuple[bytes]]:
        return bytearray, (self[0 : self.length],)


def _libc_function(name: str, argtypes: list[Any]) -> Any:
    """``name`` of the C library through ctypes (which releases the GIL), on Linux; else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):  # musl has no mallopt
        return None
    function.argtypes = argtypes
    function.restype = ctypes.c_int
    return function


_madvise: Any = _libc_function("madvise", [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int])
_MADV_POPULATE_WRITE = 23
#: Bytes faulted in ahead of a reserved blob's writes (the helper runs 3× faster than uploads here).
_FAULT_AHEAD = 64 * 1024 * 1024
#: Bytes faulted in per ``madvise`` call.
_POPULATE_PIECE = 4 * 1024 * 1024
#: Upload sessions at least this large get a reserved mapping (every session: 3 MB is Graph's minimum).
RESERVE_MIN = 1024 * 1024


#: Bytes of faulted-in mappings a store keeps for its next sessions (``_MappingPool``), at most:
#: its ``memory_limit`` when it has one (what it keeps counts against the limit).
POOL_BYTES = 512 * 1024 * 1024
#: A kept mapping unused for this long goes back to the system.
POOL_IDLE = 30.0
#: Mappings with fewer bytes faulted in than this are not kept.
_POOL_MIN = 4 * 1024 * 1024


class _MappingPool:
    """Mappings of session blobs that are gone, kept with their pages faulted in, for the next
    sessions' blobs (resized to fit with ``mremap``).

    Faulting a fresh page in costs more here than writing it: on this machine the helper threads
    spent about 0.17 CPU-s on the pages of each 150 MB upload, more than the event loop spent on
    its bytes (bench/README.md). A test suite uploads, deletes (or resets) and uploads again;
    the pages of one upload can take the next one's bytes as they are. A kept mapping holds a
    deleted blob's bytes, which no reader sees: a blob reads only up to its own length, and only
    a blob nobody references any more (``_Reserved.__del__``) gives its mapping back. At most
    ``limit`` bytes are kept, each for ``POOL_IDLE`` seconds; ``release`` gives them all back.
    """

    def __init__(self, limit: int = POOL_BYTES) -> None:
        self.limit = limit
        #: (mapping, bytes faulted in, when kept, its helper tasks maybe not done), oldest first.
        self._kept: list[tuple[mmap.mmap, int, float, list[Future[None]]]] = []
        self._timer: asyncio.TimerHandle | None = None

    @property
    def kept_bytes(self) -> int:
        return sum(resident for _, resident, _, _ in self._kept)

    def give(self, mapping: mmap.mmap, resident: int, pending: list[Future[None]]) -> None:
        resident = min(resident, len(mapping))
        if resident < _POOL_MIN or resident > self.limit or mapping.closed:
            return
        self._expire()
        self.shrink_to(self.limit - resident)
        self._kept.append((mapping, resident, time.monotonic(), [f for f in pending if not f.done()]))
        self._schedule_expiry()

    def take(self, size: int) -> tuple[mmap.mmap, int] | None:
        """A kept mapping resized to ``size`` bytes and how many of them are faulted in, or None."""
        self._expire()
        # The one with the most faulted-in bytes that serve this size, whose helper is done with
        # it (a mapping a helper thread still faults in must not move).
        ready = [k for k in self._kept if all(f.done() for f in k[3])]
        if not ready:
            return None
        best = max(ready, key=lambda k: min(k[1], size))
        self._kept.remove(best)
        mapping, resident = best[0], best[1]
        try:
            mapping.resize(size)
        except (BufferError, OSError, SystemError, ValueError):  # pragma: no cover - mremap refused
            return None
        return mapping, min(resident, size)

    def shrink_to(self, room: int) -> None:
        """Give kept mappings back to the system, oldest first, until at most ``room`` bytes are kept."""
        while self._kept and self.kept_bytes > room:
            self._kept.pop(0)

    def release(self) -> None:
        """Give every kept mapping back to the system (their memory goes when the last reference does)."""
        self.shrink_to(0)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        cutoff = time.monotonic() - POOL_IDLE
        self._kept = [k for k in self._kept if k[2] > cutoff]

    def _schedule_expiry(self) -> None:
        """Come back when the oldest kept mapping is due (only with a running event loop; without
        one, what is due goes at the next ``give`` or ``take``)."""
        if self._timer is not None or not self._kept:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        delay = max(0.0, self._kept[0][2] + POOL_IDLE - time.monotonic()) + 0.1
        self._timer = loop.call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._expire()
        self._schedule_expiry()


_prefault_threads: ThreadPoolExecutor | None = None


def _prefaulter() -> ThreadPoolExecutor:
    """The threads that fault reserved mappings in (made at first use: after a server's fork).
    A queue, not a thread per session: starting a thread waits for it to run, on the loop."""
    global _prefault_threads
    if _prefault_threads is None:
        _prefault_threads = ThreadPoolExecutor(max_workers=2, thread_name_prefix="graphattach-prefault")
    return _prefault_threads


def _populate(mapping: mmap.mmap, start: int, end: int) -> None:
    """Fault bytes ``start`` (page-aligned) to ``end`` of ``mapping`` in; stop at the first
    refusal (an older kernel)."""
    pointer = ctypes.c_char.from_buffer(mapping)
    address = ctypes.addressof(pointer)
    del pointer  # no export left on the mapping; this thread's reference keeps it mapped
    for piece in range(start, end, _POPULATE_PIECE):
        if _madvise(address + piece, min(_POPULATE_PIECE, end - piece), _MADV_POPULATE_WRITE) != 0:
            return


def _footprint(data: bytes | bytearray | _Reserved) -> int:
    """The memory a blob's bytes hold: a reserved mapping holds its whole size from the start."""
    return data.capacity if isinstance(data, _Reserved) else len(data)


@dataclass(slots=True)
class _Blob:
    #: ``bytes``: a blob written in one piece, kept as it came (copied once written again).
    data: bytes | bytearray | _Reserved
    mtime: datetime


#: Name prefix of the spill directories under the temporary directory.
SPILL_PREFIX = "graphattach-spill-"
#: The file a running store holds an exclusive ``flock`` on inside its spill directory: a directory
#: whose lock can be taken belongs to a process that is gone (crashed, killed) and is removed.
_SPILL_LOCK = ".lock"
#: A spill directory is made under this name, and renamed once its lock is held.
_SPILL_MAKING = ".graphattach-spill-making-"
#: A spill directory without a lock file younger than this is left alone (not one of ours, or odd).
_SPILL_LOCKLESS_GRACE = 60.0
#: Bytes per piece when a blob moves from memory to the spill directory.
_MOVE_PIECE = 1024 * 1024


#: glibc's ``M_TRIM_THRESHOLD`` and ``M_MMAP_THRESHOLD`` options of ``mallopt``, and the values
#: this store sets.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_TRIM_THRESHOLD = 32 * 1024 * 1024
_MMAP_THRESHOLD = 4 * 1024 * 1024
_heap_fixed = False


def _map_large_allocations() -> None:
    """Have glibc map every allocation of 4 MiB or more on its own, and keep up to 32 MiB free
    at the top of its heap (once per process).

    A blob here is a byte array that grows as its ranges arrive. glibc raises its mmap threshold
    each time it frees a mapped block (up to 32 MiB), so after the first blobs are deleted the
    next ones grow inside the heap, where every growth may copy and the holes they leave stay
    part of the process: 32 concurrent 16 MiB uploads took 762 MB for 536 MB of blobs from
    the second round on, and 582 MB with the threshold fixed (bench/README.md). Mapped blocks
    grow with ``mremap`` and go back to the system when freed. Fixing that threshold leaves the
    trim threshold at 128 KiB (glibc no longer raises it with the other), so each request's
    buffers of a megabyte or so (a POST's body, its decoded bytes, its answer) were handed back
    at every free and faulted in again at the next request: 1,476 page faults per 1 MiB POST,
    592 with the trim threshold at 32 MiB (bench/README.md).
    https://man7.org/linux/man-pages/man3/mallopt.3.html
    """
    global _heap_fixed
    if _heap_fixed:
        return
    _heap_fixed = True
    mallopt = _libc_function("mallopt", [ctypes.c_int, ctypes.c_int])  # musl maps large blocks anyway
    if mallopt is None:
        return
    mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
    mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)


class MemoryBlobStore:
    """``BlobStore`` over a dict of byte arrays.

    With ``memory_limit``, at most that many blob bytes stay in memory: a write that would go past
    it moves its blob to files in a temporary directory (``spill_parent``, default the system's,
    ``$TMPDIR``), created at the first spill and removed by ``close`` (and by the next store that
    opens, should this process die without closing). The files are never synced: like the rest of
    this store they need not survive the process. Azurite's in-memory mode bounds its extents the
    same way (``--extentMemoryLimit``, https://github.com/Azure/Azurite#command-line-options). If
    even the spill fails (the disk is full), writes raise ``StorageFull``. An upload session's
    blob of at least ``reserve_min`` bytes that fits under the limit takes its whole size at its
    first range (``_Reserved``); the rest grow range by range. When such a blob is gone, its
    mapping is kept for the next session's (``_MappingPool``), within the limit.
    """

    def __init__(
        self, memory_limit: int | None = None, *, spill_parent: Path | str | None = None, reserve_min: int = RESERVE_MIN
    ) -> None:
        if memory_limit is not None and memory_limit < 0:
            raise ValueError("memory_limit must not be negative")
        self._blobs: dict[str, _Blob] = {}
        #: An upload session's blob of at least this size is a mapping of its size (``_Reserved``).
        self.reserve_min = reserve_min
        self.memory_limit = memory_limit
        #: Bytes of the blobs held in memory (never more than ``memory_limit``).
        self.resident_bytes = 0
        #: Where spill directories are made (None: the system's temporary directory).
        self.spill_parent = Path(spill_parent) if spill_parent is not None else None
        #: The spill directory, once a blob went there.
        self.spill_dir: Path | None = None
        self._spill: FileBlobStore | None = None
        self._spill_lock: int | None = None
        #: Keys whose bytes are in the spill directory (never also in ``_blobs``, but during a move).
        self._spilled: set[str] = set()
        #: Faulted-in mappings of deleted session blobs, for the next sessions (within the limit).
        self._pool = _MappingPool(POOL_BYTES if memory_limit is None else min(POOL_BYTES, memory_limit))

    async def open(self) -> None:
        _map_large_allocations()
        if self.memory_limit is not None:
            await asyncio.to_thread(remove_stale_spill_dirs, self._parent())

    async def close(self) -> None:
        self._drop_spill()
        self._pool.release()

    async def reset(self) -> None:
        self._blobs.clear()
        self.resident_bytes = 0
        self._spilled.clear()
        if self._spill is not None:
            await self._spill.reset()

    # the spill directory -------------------------------------------------------------------------

    def _parent(self) -> Path:
        return self.spill_parent if self.spill_parent is not None else Path(tempfile.gettempdir())

    async def _spill_store(self) -> FileBlobStore:
        if self._spill is None:
            try:
                directory, lock = await asyncio.to_thread(_make_spill_dir, self._parent())
            except OSError as exc:
                raise self._full(exc) from exc
            if self._spill is None:
                self.spill_dir, self._spill_lock = directory, lock
                self._spill = FileBlobStore(directory / "blobs", durable=False)
                atexit.register(self._drop_spill)
            else:  # another write made one meanwhile
                _remove_spill_dir(directory, lock)
        return self._spill

    def _drop_spill(self) -> None:
        """Remove the spill directory (at ``close``, and at exit if nobody closed the store)."""
        directory, lock = self.spill_dir, self._spill_lock
        self.spill_dir = self._spill = self._spill_lock = None
        self._spilled.clear()
        if directory is not None:
            atexit.unregister(self._drop_spill)
            _remove_spill_dir(directory, lock)

    def _full(self, exc: OSError) -> StorageFull:
        where = self.spill_dir or self._parent()
        return StorageFull(
            f"The in-memory store keeps at most {(self.memory_limit or 0) / (1 << 20):g} MiB of attachments in memory "
            f"and could not put more in "
            f"its spill directory {where}: {exc.strerror or exc}. Free disk space there (or point TMPDIR "
            "elsewhere), or raise --memory-limit."
        )

    async def _spill_write(
        self, spill: FileBlobStore, key: str, chunks: AsyncIterable[bytes], offset: int, limit: int | None
    ) -> int:
        """``spill.write``; its own ``OSError``s (not the chunks' errors) become ``StorageFull``."""
        source = _Source(chunks)
        try:
            return await spill.write(key, source, offset=offset, limit=limit)
        except OSError as exc:
            if source.failed:
                raise
            raise self._full(exc) from exc

    def _fits(self, size: int) -> bool:
        """Whether ``size`` more bytes fit under the limit; kept mappings make room for them
        (they go back to the system, oldest first) before any blob has to spill."""
        if self.memory_limit is None:
            return True
        room = self.memory_limit - self.resident_bytes - size
        if room < 0:
            return False
        self._pool.shrink_to(room)
        return True

    # the protocol -----------------------------------------------------------------------------------

    def checkpoint(self) -> bytes:
        """The blobs held in memory; ``ValueError`` when some went to the spill directory (seed
        data larger than ``--memory-limit``: the reset then seeds again instead)."""
        if self._spilled:
            raise ValueError("some blobs are in the spill directory: no in-memory checkpoint")
        return pickle.dumps(self._blobs, pickle.HIGHEST_PROTOCOL)

    def restore(self, checkpoint: bytes) -> None:
        self._blobs = pickle.loads(checkpoint)
        self.resident_bytes = sum(_footprint(blob.data) for blob in self._blobs.values())
        self._drop_spill()  # what spilled since the checkpoint goes with the rest

    async def write(self, key: str, chunks: AsyncIterable[bytes], *, offset: int = 0, limit: int | None = None) -> int:
        if offset < 0:
            raise ValueError("offset must not be negative")
        if key in self._spilled and self._spill is not None:
            return await self._spill_write(self._spill, key, chunks, offset, limit)
        blob = self._blobs.get(key)
        fresh = blob is None
        if blob is None:
            if offset > 0:
                raise RecordNotFound(key)
            if self.memory_limit is not None and self.resident_bytes >= self.memory_limit:
                spill = await self._spill_store()
                self._spilled.add(key)
                return await self._spill_write(spill, key, chunks, 0, limit)
            blob = self._blobs[key] = _Blob(bytearray(), _wall_clock())
        elif len(blob.data) < offset:
            raise ValueError(f"blob {key!r} is shorter than {offset}")
        elif type(blob.data) is bytes:
            blob.data = bytearray(blob.data)  # a blob kept as it came is written again
        data = blob.data
        assert not isinstance(data, bytes)
        # A reserved mapping's memory was counted when it was made; a byte array's as it grows.
        grows = not isinstance(data, _Reserved)
        if grows:
            self.resident_bytes -= len(data) - offset
        del data[offset:]
        blob.mtime = _wall_clock()
        received = 0
        capped = self.memory_limit is not None and grows
        iterator = aiter(chunks)
        # A new blob's first chunk is held, not copied: if no other follows (a POST's decoded
        # attachment), the blob keeps that immutable bytes object as it is.
        held: bytes | None = None
        try:
            async for chunk in iterator:
                received += len(chunk)
                if limit is not None and received > limit:
                    raise ValueError(f"more than {limit} bytes")
                if capped and not self._fits(len(chunk)):
                    if held is not None:
                        data.extend(held)
                        held = None
                    break  # this blob moves to the spill directory, with the rest of its bytes
                if fresh and held is None and not data and type(chunk) is bytes:
                    held = chunk
                else:
                    if held is not None:
                        data.extend(held)
                        held = None
                    data.extend(chunk)  # bytearray.extend takes a bytes-like object as one block
                if grows:
                    self.resident_bytes += len(chunk)
            else:
                if held is not None:
                    blob.data = held
                    return len(held)
                return len(data)
        except BaseException:
            if self._blobs.get(key) is blob and grows:
                self.resident_bytes -= len(data) - offset + (len(held) if held is not None else 0)
            del data[offset:]
            raise
        finally:
            blob.mtime = _wall_clock()
        assert isinstance(data, bytearray)
        return await self._move(key, blob, offset, chunk, iterator, limit)

    async def append(
        self, key: str, chunks: AsyncIterable[bytes], *, offset: int, length: int, size: int, final: bool = False
    ) -> int:
        """``write`` at ``offset`` (nothing here survives the process, so nothing is recorded)."""
        if offset < 0 or length < 0 or offset + length > size or (final and offset + length != size):
            raise ValueError("the range must lie within the blob's size (and end at it when final)")
        if offset == 0 and size >= max(self.reserve_min, 1) and key not in self._blobs and key not in self._spilled:
            taken = self._pool.take(size)  # out of the pool first: its memory is this blob's now
            if self._fits(size):
                self._blobs[key] = _Blob(_Reserved(size, self._pool, taken), _wall_clock())
                self.resident_bytes += size
            elif taken is not None:
                self._pool.give(taken[0], taken[1], [])
        new_length = await self.write(key, chunks, offset=offset, limit=length)
        if new_length != offset + length:
            await self.write(key, _no_chunks(), offset=offset)  # a short body: the range never happened
        return new_length

    async def progress(self, key: str, size: int, *, known: int = 0) -> BlobProgress | None:
        """None: this store's sessions never lag behind their blobs."""
        return None

    async def _move(
        self, key: str, blob: _Blob, offset: int, chunk: bytes, rest: AsyncIterator[bytes], limit: int | None
    ) -> int:
        """Move a blob that outgrew the memory limit in the middle of a write to the spill
        directory: its acknowledged ``offset`` bytes first, then the write goes on there."""
        data = blob.data
        assert not isinstance(data, bytes)  # ``write`` made it writable
        try:
            spill = await self._spill_store()
            await self._spill_write(spill, key, _pieces(data, 0, offset), 0, None)
        except BaseException:
            if self._spill is not None:
                await self._spill.delete(key)
            if self._blobs.get(key) is blob:
                self.resident_bytes -= len(data) - offset
            del data[offset:]
            raise
        if self._blobs.get(key) is blob:
            del self._blobs[key]
            self.resident_bytes -= len(data)
        self._spilled.add(key)
        return await self._spill_write(
            spill, key, _chained(_pieces(data, offset, len(data)), chunk, rest), offset, limit
        )

    async def read(
        self, key: str, *, start: int = 0, end: int | None = None, chunk_size: int = 1024 * 1024
    ) -> AsyncIterator[BlobChunk]:
        if start < 0 or chunk_size <= 0:
            raise ValueError("start must not be negative and chunk_size must be positive")
        blob = self._blobs.get(key)
        if blob is None:
            if key in self._spilled and self._spill is not None:
                async for piece in self._spill.read(key, start=start, end=end, chunk_size=chunk_size):
                    yield piece
                return
            raise RecordNotFound(key)
        data = blob.data
        stop = len(data) if end is None else min(end, len(data))
        position = start
        while position < stop:
            size = min(chunk_size, stop - position)
            piece = data[position : position + size]
            yield piece if isinstance(piece, bytes) else bytes(piece)
            position += size

    async def size(self, key: str) -> int | None:
        blob = self._blobs.get(key)
        if blob is not None:
            return len(blob.data)
        if key in self._spilled and self._spill is not None:
            return await self._spill.size(key)
        return None

    async def delete(self, key: str) -> None:
        blob = self._blobs.pop(key, None)
        if blob is not None:
            self.resident_bytes -= _footprint(blob.data)
        if key in self._spilled and self._spill is not None:
            self._spilled.discard(key)
            await self._spill.delete(key)

    async def copy(self, src: str, dst: str) -> None:
        blob = self._blobs.get(src)
        spilled = blob is None and src in self._spilled and self._spill is not None
        if blob is None and not spilled:
            raise RecordNotFound(src)
        if src == dst:
            return
        await self.delete(dst)
        if blob is not None and self._fits(len(blob.data)):
            self._blobs[dst] = _Blob(bytearray(blob.data[0 : len(blob.data)]), _wall_clock())
            self.resident_bytes += len(blob.data)
            return
        spill = await self._spill_store()
        self._spilled.add(dst)
        try:
            if blob is not None:
                await self._spill_write(spill, dst, _pieces(blob.data, 0, len(blob.data)), 0, None)
            else:
                try:
                    await spill.copy(src, dst)
                except OSError as exc:
                    raise self._full(exc) from exc
        except BaseException:
            await self.delete(dst)  # a failed copy leaves no half of one
            raise

    async def keys(self, older_than: datetime | None = None) -> AsyncIterator[str]:
        cutoff = as_utc(older_than) if older_than is not None else None
        for key, blob in list(self._blobs.items()):
            if cutoff is None or blob.mtime < cutoff:
                yield key
        if self._spill is not None:
            async for key in self._spill.keys(older_than):
                if key not in self._blobs:
                    yield key

    def __repr__(self) -> str:
        spilled = f", {len(self._spilled)} spilled to {self.spill_dir}" if self._spilled else ""
        return f"<MemoryBlobStore {len(self._blobs)} blobs in memory{spilled}>"


class _Source:
    """Chunks passed on unchanged, noting whether the source itself raised."""

    def __init__(self, chunks: AsyncIterable[bytes]) -> None:
        self._chunks = aiter(chunks)
        self.failed = False

    def __aiter__(self) -> _Source:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await anext(self._chunks)
        except StopAsyncIteration:
            raise
        except BaseException:
            self.failed = True
            raise


async def _no_chunks() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover


async def _pieces(data: bytes | bytearray | _Reserved, start: int, stop: int) -> AsyncIterator[bytes]:
    for position in range(start, stop, _MOVE_PIECE):
        yield bytes(data[position : min(position + _MOVE_PIECE, stop)])


async def _chained(first: AsyncIterator[bytes], chunk: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    async for piece in first:
        yield piece
    yield chunk
    async for piece in rest:
        yield piece


def _make_spill_dir(parent: Path) -> tuple[Path, int]:
    """A new spill directory under ``parent`` and the fd of its held lock. It is made under a
    name the clean-up does not look at and renamed once locked, so that no other process can
    take it for a dead one's in between."""
    making = Path(tempfile.mkdtemp(prefix=_SPILL_MAKING, dir=parent))
    lock = -1
    try:
        lock = os.open(making / _SPILL_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        directory = parent / (SPILL_PREFIX + making.name.removeprefix(_SPILL_MAKING))
        os.rename(making, directory)
    except BaseException:
        shutil.rmtree(making, ignore_errors=True)
        if lock >= 0:
            os.close(lock)
        raise
    return directory, lock


def _remove_spill_dir(directory: Path, lock: int | None) -> None:
    shutil.rmtree(directory, ignore_errors=True)
    if lock is not None:
        os.close(lock)


def remove_stale_spill_dirs(parent: Path) -> list[Path]:
    """Remove the spill directories under ``parent`` whose process is gone; return them."""
    removed: list[Path] = []
    try:
        entries = [e for e in os.scandir(parent) if e.name.startswith(SPILL_PREFIX)]
    except OSError:
        return removed
    for entry in entries:
        if not entry.is_dir(follow_symlinks=False):
            continue
        directory = Path(entry.path)
        try:
            lock = os.open(directory / _SPILL_LOCK, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            try:
                if time.time() - entry.stat(follow_symlinks=False).st_mtime < _SPILL_LOCKLESS_GRACE:
                    continue
            except FileNotFoundError:
                continue
            lock = None
        except OSError:
            continue
        if lock is not None:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # held: its store is alive
                os.close(lock)
                continue
        _remove_spill_dir(directory, lock)
        removed.append(directory)
    return removed
