"""The two storage protocols. Every backend passes ``graphattach.storage.conformance``.

Metadata and bytes are apart (as in Azurite's metadata store vs extent store): the metadata
store keeps records and enforces invariants transactionally, the blob store keeps immutable or
append-only byte sequences under opaque keys. Several server processes may share one store, so
nothing here may rely on in-process state for correctness.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from graphattach.domain.models import Attachment, Folder, FolderKind, Item, ItemKind, UploadSession, User
from graphattach.domain.subscriptions import Claim, DeliveryRecord, DeliveryState, Notification, Outbox, Subscription
from graphattach.storage.errors import AnnouncementLost, Conflict, LimitExceeded, RecordNotFound

#: The setting ``MetadataStore.reset`` counts resets in (absent: never reset).
RESET_GENERATION = "reset_generation"

__all__ = ["AnnouncementLost", "Conflict", "LimitExceeded", "RecordNotFound"]  # re-exported: the contract names them


#: Ended upload sessions kept per mailbox (``end_session``): the newest, so that the web UI shows
#: how recent uploads ended after a restart and in every process sharing the store (docs/fidelity.md).
ENDED_SESSIONS_KEPT = 100


@dataclass(frozen=True, slots=True)
class ItemChange:
    """The latest change of one item as seen from one folder: ``seq`` orders changes within a
    mailbox; ``removed`` when the item was deleted or moved out of the folder."""

    item_id: str
    seq: int
    removed: bool
    #: The item as it is now, when not ``removed`` (read in the same query, so a page of changes
    #: costs one round trip); None if it went since.
    item: Item | None = None


class MetadataStore(Protocol):
    """Records of users, folders, items, attachments and upload sessions."""

    #: True when the store answers on the event loop without waiting (no thread, no network):
    #: then nothing is gained by doing other work while a call is under way.
    answers_inline: bool

    async def open(self) -> None:
        """Connect and apply pending schema migrations."""

    async def close(self) -> None: ...

    async def reset(self) -> None:
        """Delete every record but the settings (admin reset), and add one to the
        ``RESET_GENERATION`` setting, so that what was derived from the old records (delta tokens)
        can tell it is stale."""

    # settings kept in the store so that every process agrees (tenant id...)
    async def get_setting(self, key: str) -> str | None: ...
    async def set_setting_if_absent(self, key: str, value: str) -> str:
        """Store ``value`` unless a value exists; return the stored one."""

    # users
    async def add_user(self, user: User) -> None:
        """Insert; ``Conflict`` if the id or the user principal name (case-insensitive) is taken."""

    async def get_user(self, user_id: str) -> User | None: ...
    async def get_user_by_upn(self, upn: str) -> User | None:
        """Case-insensitive lookup by userPrincipalName."""

    async def list_users(self) -> list[User]: ...
    async def update_user(self, user: User) -> None: ...

    # folders (mail folders, calendars, calendar groups)
    async def add_folder(self, folder: Folder) -> None: ...
    async def get_folder(self, user_id: str, folder_id: str) -> Folder | None: ...
    async def get_well_known_folder(self, user_id: str, kind: FolderKind, name: str) -> Folder | None: ...
    async def list_folders(
        self, user_id: str, kind: FolderKind, parent_id: str | None, *, any_parent: bool = False
    ) -> list[Folder]:
        """Folders of ``kind`` directly under ``parent_id`` (None: top level), oldest first."""

    async def update_folder(self, folder: Folder) -> None: ...
    async def delete_folder(self, user_id: str, folder_id: str, *, outbox: Outbox | None = None) -> list[str]:
        """Delete a folder, its subfolders, their items and attachments; return freed blob keys.

        Every write that changes items takes an ``outbox``: the change notifications it makes,
        queued in the same transaction (nothing queued when the write fails or changes nothing)."""

    # items (messages and events)
    async def add_item(self, item: Item, *, outbox: Outbox | None = None) -> None: ...
    async def get_item(self, user_id: str, item_id: str) -> Item | None:
        """The item with ``has_attachments`` derived from its non-inline attachments."""

    async def list_items(
        self,
        user_id: str,
        kind: ItemKind,
        folder_ids: list[str] | None,
        *,
        skip: int = 0,
        top: int | None = None,
    ) -> tuple[list[Item], int]:
        """Items of ``kind`` in the given folders (None: all), newest first, and the total count."""

    async def update_item(self, item: Item, *, outbox: Outbox | None = None) -> None:
        """Replace fields and data of an existing item; ``RecordNotFound`` if it is gone."""

    async def delete_item(self, user_id: str, item_id: str, *, outbox: Outbox | None = None) -> list[str]:
        """Delete an item and its attachments; return the blob keys no record references any more."""

    # change tracking (delta queries)
    async def change_mark(self, user_id: str) -> int:
        """The mailbox's latest change number (0 before any change). Every item insert, update,
        delete and attachment insert or delete takes the next number, in commit order."""

    async def item_changes(
        self, user_id: str, folder_id: str, *, after: int, upto: int, limit: int
    ) -> list[ItemChange]:
        """The latest change of each item that is or was in ``folder_id`` whose number is in
        ``(after, upto]``, oldest first, at most ``limit``, with the item itself when it is not
        removed. An item changed again after ``upto`` is left out (its newer change belongs to a
        later round)."""

    # attachments
    async def add_attachment(
        self,
        attachment: Attachment,
        *,
        max_count: int | None = None,
        max_total_size: int | None = None,
        announced: bool = False,
        outbox: Outbox | None = None,
    ) -> None:
        """Insert, atomically checking the item's attachment count and total ``size`` against the
        limits (``LimitExceeded``); ``RecordNotFound`` if the item is gone. With ``announced``, the
        attachment's blob key was announced (``announce_blobs``): the same transaction consumes
        the announcement, and raises ``AnnouncementLost`` (inserting nothing) if it is gone."""

    async def get_attachment(self, user_id: str, item_id: str, attachment_id: str) -> Attachment | None: ...
    async def list_attachments(self, user_id: str, item_id: str) -> list[Attachment]:
        """Attachments of one item in the order they were added."""

    async def item_usage(self, user_id: str, item_id: str) -> ItemUsage:
        """How many attachments the item has, their ``limit_weight`` and their ``size``, summed
        (zeros for an unknown item)."""

    async def items_usage(self, user_id: str, item_ids: list[str]) -> dict[str, ItemUsage]:
        """``item_usage`` of each of ``item_ids`` in one query (a page of a list; every id is a key,
        zeros for items without attachments)."""

    async def mailbox_usage(self, user_id: str) -> MailboxUsage:
        """What one mailbox holds, as aggregate queries (no records built)."""

    async def delete_attachment(
        self, user_id: str, item_id: str, attachment_id: str, *, outbox: Outbox | None = None
    ) -> list[str] | None:
        """Delete; None if absent, else the blob keys no record references any more."""

    # upload sessions. A session that ended (``end_session``) stays as a record of how it ended,
    # which only ``recent_sessions`` returns: every other method treats it as absent.
    async def add_session(self, session: UploadSession) -> None: ...
    async def get_session(self, session_id: str) -> UploadSession | None: ...
    async def session_usage(self, session_id: str) -> SessionUsage:
        """The session with what a PUT checks it against, in one round trip to the store."""

    async def recent_sessions(self, limit: int) -> list[UploadSession]:
        """Up to ``limit`` upload sessions, newest (created) first, in any state, ended ones
        included (with ``ended`` set): the web UI's list."""

    async def end_session(
        self, session_id: str, state: str, ended: datetime, *, keep: int = ENDED_SESSIONS_KEPT
    ) -> UploadSession | None:
        """Replace a session by the record of how it ended: ``state`` (completed, cancelled or
        expired), ``ended``, its bytes received. From then on it references no blob and only
        ``recent_sessions`` returns it. In the same transaction, the mailbox's ended sessions
        beyond the newest ``keep`` (by ``ended``) are deleted. Returns the session as it was,
        None if it is unknown or ended already."""

    async def advance_session(
        self, session_id: str, expected_received: int, received: int, last_range: tuple[int, int]
    ) -> bool:
        """Compare-and-set ``received`` on an active session; False if it moved meanwhile. It need
        not be durable on return (the range it records is, in the session's blob: ``BlobStore.append``),
        but it must survive the death of this process: only a crash of the machine or of the
        database may lose it, and then ``BlobStore.progress`` says how far the session got."""

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
        """In one transaction: insert ``attachment`` (whose blob is the session's) and mark the
        session completed with ``received = size``. False if the session moved meanwhile.
        ``LimitExceeded`` / ``RecordNotFound`` as ``add_attachment``."""

    async def set_session_state(self, session_id: str, state: str) -> UploadSession | None:
        """Mark a session cancelled or expired; returns the session as it was, None if unknown."""

    async def delete_session(self, session_id: str) -> UploadSession | None:
        """Delete a session that has not ended, leaving no record; returns it, None if unknown."""

    async def list_sessions_expiring_before(self, when: datetime, limit: int = 100) -> list[UploadSession]:
        """Sessions (not ended) whose ``expires`` is before ``when``, soonest first."""

    def lock_session(self, session_id: str) -> AbstractAsyncContextManager[None]:
        """Exclusive lock on one session, across processes; released when its holder dies."""

    async def sweep_locks(self, older_than: datetime) -> int:
        """Remove what the session locks left behind (lock files) older than ``older_than`` whose
        session is gone; return how many. Stores whose locks leave nothing return 0."""

    async def send_item(
        self,
        draft: Item,
        sent: Item | None,
        copies: list[tuple[Item, list[Attachment]]],
        sources: list[str],
        *,
        outbox: Outbox | None = None,
    ) -> list[str]:
        """Send ``draft`` in one transaction: check that it is unchanged (its ``change_key``, and
        ``sources`` are the ids of its attachments in order; else ``Conflict``; ``RecordNotFound`` if it
        or a target folder is gone), replace it by ``sent`` (or delete it with its attachments
        when None), and insert every delivered copy with its attachments (which may share the
        draft's blob keys: the draft's attachment rows are locked until the commit, so no
        concurrent delete frees a key a copy takes). Returns the blob keys no record references
        any more."""

    # blobs that records reference (for orphan reclamation)
    async def referenced_blob_keys(self, keys: list[str]) -> set[str]:
        """Those of ``keys`` that an attachment or an upload session references (neither ended nor
        completed: a completed session's bytes are its attachment's), or that an insert in flight
        announced: one snapshot, so a key an insert commits meanwhile is in it."""

    async def announce_blobs(self, keys: list[str]) -> None:
        """Record that an insert is about to write these new blob keys. Until the insert commits
        (``add_attachment(..., announced=True)``) or withdraws them, they count as referenced,
        so the sweeper never takes a blob whose record is not committed yet, whatever the time."""

    async def withdraw_blobs(self, keys: list[str]) -> None:
        """Forget announcements (an insert that failed; its blobs are deleted by the caller)."""

    async def reclaim_announced_blobs(self, older_than: float) -> list[str]:
        """Delete the announcements made more than ``older_than`` seconds ago by the store's own
        real-time clock (the inserts that made them died), and return those of their keys that no
        record references. An insert whose announcement is gone cannot commit (``AnnouncementLost``),
        so a late insert fails instead of committing a record whose blob the sweeper deletes."""

    def try_lock_session(self, session_id: str) -> AbstractAsyncContextManager[bool]:
        """``lock_session`` without waiting: yields True while holding the lock, False (holding
        nothing) when another task or process holds it."""

    # change-notification subscriptions and their outbox
    async def add_subscription(self, subscription: Subscription, *, max_per_user: int | None = None) -> None:
        """Insert; ``LimitExceeded("count")`` if the mailbox already has ``max_per_user`` active
        subscriptions; ``Conflict`` if the id is taken."""

    async def get_subscription(self, subscription_id: str) -> Subscription | None: ...
    async def list_subscriptions(self, user_id: str | None = None) -> list[Subscription]:
        """Subscriptions (every state) of one mailbox, or of all, oldest first."""

    async def update_subscription(self, subscription: Subscription) -> None:
        """Replace its Graph properties and state (not its delivery state); ``RecordNotFound`` if gone."""

    async def subscriptions_generation(self) -> int:
        """A number that changes whenever any subscription is added, updated or deleted (in the
        same transaction), so that a process may cache subscriptions until it moves."""

    async def delete_subscription(self, subscription_id: str) -> bool:
        """Delete it with the notifications waiting for it; False if it was not there."""

    async def enqueue_notifications(self, notifications: list[Notification]) -> None:
        """Append to the outbox, in order (the store numbers them); notifications of a
        subscription that is gone are dropped."""

    async def release_notifications(self, seqs: list[int]) -> None:
        """End the hold (``Outbox.hold_until``) of these queued notifications."""

    async def claim_notifications(self, now: datetime, lease_until: datetime, limit: int) -> list[Claim]:
        """Lease up to ``limit`` subscriptions whose next attempt is due and that no live lease
        holds, with their waiting notifications oldest first, up to the first one still held
        (none held at the head). Across processes, one claimant wins."""

    async def finish_delivery(self, subscription_id: str, delivered_through: int, state: DeliveryState) -> None:
        """Delete its notifications numbered up to ``delivered_through`` (0: none), store ``state``
        and release the lease."""

    async def add_delivery_record(self, record: DeliveryRecord, *, keep: int = 10_000) -> None:
        """Log one POST to a receiver (the oldest records beyond ``keep`` go)."""

    async def list_delivery_records(self, subscription_id: str | None = None, limit: int = 100) -> list[DeliveryRecord]:
        """The most recent records, newest first."""


#: A piece of a blob as ``BlobStore.read`` yields it: ``bytes``, or a ``bytearray`` the store
#: filled and gives away (never a ``memoryview``: granian sends one element by element).
BlobChunk = bytes | bytearray


@dataclass(frozen=True, slots=True)
class BlobProgress:
    """How far an upload session's blob durably got, read from the blob itself (``BlobStore.progress``)."""

    #: Bytes ``[0, received)`` are durable, at the end of an acknowledged range.
    received: int
    #: The inclusive byte range of the last range that got there.
    last_range: tuple[int, int]


class BlobStore(Protocol):
    """Byte sequences under opaque keys. Writes are durable when they return."""

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def reset(self) -> None: ...

    async def write(self, key: str, chunks: AsyncIterable[bytes], *, offset: int = 0, limit: int | None = None) -> int:
        """Truncate ``key`` to ``offset`` bytes (creating it if absent and ``offset == 0``), append
        ``chunks``, make it durable, and return the new length. With ``limit``, stop with
        ``ValueError`` as soon as more than ``limit`` bytes arrive (nothing past ``offset`` kept).
        If ``chunks`` raises, the bytes past ``offset`` are discarded and the error propagates."""

    async def append(
        self, key: str, chunks: AsyncIterable[bytes], *, offset: int, length: int, size: int, final: bool = False
    ) -> int:
        """Write one upload-session range, ``length`` bytes at ``offset`` of a blob that will hold
        ``size`` bytes (created when ``offset == 0``), and return ``offset`` + the bytes received.

        Only when exactly ``length`` bytes came is the range durable on return, with the store's
        one durable write, and recorded in the blob so that ``progress`` finds it after a crash
        (the metadata store's copy of the session's progress may lag). ``final`` is the range that
        ends at ``size``: the blob is then a plain blob of ``size`` bytes. A short body, more than
        ``length`` bytes (``ValueError``) or an error of ``chunks`` leaves the blob's progress as
        it was. Bytes between an acknowledged range and ``offset`` never exist: ``offset`` is
        the session's progress."""

    async def progress(self, key: str, size: int, *, known: int = 0) -> BlobProgress | None:
        """How far the session blob ``key`` (of ``size`` bytes) durably got, from the ranges
        ``append`` recorded in it; None when it holds no record (absent, completed, never
        appended to, or a store that keeps nothing across a restart). Ranges ending past
        ``known`` are checked against their bytes."""

    def read(
        self, key: str, *, start: int = 0, end: int | None = None, chunk_size: int = 1024 * 1024
    ) -> AsyncIterator[BlobChunk]:
        """Stream bytes ``[start, end)`` in chunks of at most ``chunk_size``. ``RecordNotFound`` if absent."""

    async def size(self, key: str) -> int | None: ...
    async def delete(self, key: str) -> None:
        """Delete; no error if absent."""

    async def copy(self, src: str, dst: str) -> None:
        """Make ``dst`` a durable copy of ``src``."""

    def keys(self, older_than: datetime | None = None) -> AsyncIterator[str]:
        """Every key (last written before ``older_than`` if given)."""


@runtime_checkable
class Checkpointable(Protocol):
    """A store that copies its whole state in one step and goes back to such a copy (the
    in-memory stores): a reset restores the seeded state from the copy instead of seeding again.
    Both run without awaiting, so no other task sees a half-restored store."""

    def checkpoint(self) -> bytes:
        """The records (not the store's settings) as one opaque value."""

    def restore(self, checkpoint: bytes) -> None:
        """The records of ``checkpoint`` instead of the current ones (the settings stay)."""


@dataclass(frozen=True, slots=True)
class SessionUsage:
    """An upload session with what a PUT checks it against: the mailbox's maximum message size
    (None when the user is gone) and the raw bytes of the item's attachments."""

    session: UploadSession | None
    max_message_size: int | None
    attachment_bytes: int


class MessageTextSearcher(Protocol):
    """Optional on a ``MetadataStore``: a full-text index of messages (subject, body, sender and
    recipients). ``messages_with_words`` returns the messages of ``folder_ids`` (None: all) with,
    for each of ``prefixes`` (lower-case ASCII letters and digits), a word starting with it. A
    superset is allowed (callers check the exact match), a miss is not."""

    async def messages_with_words(
        self, user_id: str, folder_ids: list[str] | None, prefixes: list[str]
    ) -> list[Item]: ...


@dataclass(frozen=True, slots=True)
class ItemUsage:
    """What the attachments of one item hold against Exchange's limits: how many there are, their
    weight against the maximum message size (``limit_weight``) and the sum of their ``size``."""

    count: int
    weight: int
    size: int


def limit_weight(attachment: Attachment) -> int:
    """What an attachment counts against the mailbox's maximum message size: a file's raw bytes,
    the reported ``size`` of the others."""
    return attachment.content_length if attachment.kind == "file" else attachment.size


@dataclass(frozen=True, slots=True)
class MailboxUsage:
    """What one mailbox holds: messages, events, attachments and their raw bytes (``content_length``
    of file attachments) plus the reported ``size`` of the others."""

    messages: int
    events: int
    attachments: int
    bytes: int


class ItemSearcher(Protocol):
    """Optional on a ``MetadataStore``: items whose stored data contains ``needle`` as text
    (case-insensitive for ASCII letters), newest first, at most ``limit``. A prefilter: callers
    match the fields they mean on what it returns."""

    async def search_items(
        self, user_id: str, kind: ItemKind, folder_ids: list[str] | None, needle: str, limit: int
    ) -> list[Item]: ...
