"""Records of the mailbox: users, folders, items (messages and events), attachments, upload sessions.

These are what the storage layer keeps. Graph properties that the server does not interpret are
kept as they came, camelCase, in ``data``; everything the server reasons about is a field.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeVar, get_args

R = TypeVar("R")

ItemKind = Literal["message", "event"]
FolderKind = Literal["mail", "calendar", "calendarGroup"]
AttachmentKind = Literal["file", "item", "reference"]


@dataclass(slots=True)
class User:
    id: str
    user_principal_name: str
    display_name: str
    mail: str
    #: Exchange's per-mailbox maximum message size in bytes (ErrorMessageSizeExceeded above it).
    max_message_size: int
    #: Set by whoever makes the record, from the server clock (the domain never reads the wall clock).
    created: datetime = field(kw_only=True)
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Folder:
    """A mail folder, a calendar or a calendar group."""

    id: str
    user_id: str
    kind: FolderKind
    display_name: str
    parent_id: str | None = None
    #: ``inbox``, ``drafts``... for mail folders, ``calendar`` for the default calendar.
    well_known_name: str | None = None
    #: Set by whoever makes the record, from the server clock (the domain never reads the wall clock).
    created: datetime = field(kw_only=True)
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Item:
    """A message or an event in one user's mailbox."""

    id: str
    user_id: str
    kind: ItemKind
    #: The mail folder of a message, the calendar of an event.
    folder_id: str
    #: Set by whoever makes the record, from the server clock (the domain never reads the wall clock).
    created: datetime = field(kw_only=True)
    last_modified: datetime = field(kw_only=True)
    change_key: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    #: Derived by the store on read: a non-inline attachment exists (Graph's hasAttachments).
    has_attachments: bool = False


@dataclass(slots=True)
class Attachment:
    id: str
    user_id: str
    item_id: str
    kind: AttachmentKind
    name: str | None
    content_type: str | None
    #: What Graph reports as ``size`` (Exchange's stored size, see docs/fidelity.md).
    size: int
    is_inline: bool = False
    content_id: str | None = None
    last_modified: datetime = field(kw_only=True)
    #: Raw byte length of a file attachment's content (0 for item/reference attachments).
    content_length: int = 0
    #: Where the bytes of a file attachment live in the blob store.
    blob_key: str | None = None
    #: The embedded item of an item attachment, or the reference properties.
    data: dict[str, Any] = field(default_factory=dict)


SessionState = Literal["active", "completed", "cancelled", "expired"]
#: The states a stored session can be in (the state machine adds derived ones, domain/upload_session.py).
SESSION_STATES: frozenset[str] = frozenset(get_args(SessionState))


@dataclass(slots=True)
class UploadSession:
    id: str
    user_id: str
    item_id: str
    item_kind: ItemKind
    name: str
    content_type: str | None
    is_inline: bool
    content_id: str | None
    #: Declared total size in bytes.
    size: int
    #: Bytes acknowledged so far (fsynced and committed).
    received: int
    blob_key: str
    state: SessionState
    expires: datetime
    #: Set by whoever makes the record, from the server clock (the domain never reads the wall clock).
    created: datetime = field(kw_only=True)
    #: The attachment created by the final range.
    attachment_id: str | None = None
    #: The request that completed it, for answering an identical retry the same way.
    last_range: tuple[int, int] | None = None
    #: When the session ended (cancelled, or forgotten by the sweeper after its expiry): the store
    #: keeps such a session as a record of how it ended, seen only by ``recent_sessions``.
    ended: datetime | None = None


def replace(record: R, **changes: Any) -> R:
    """A copy of the record with ``changes``."""
    return dataclasses.replace(record, **changes)  # type: ignore[type-var]
