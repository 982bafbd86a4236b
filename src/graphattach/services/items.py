"""Helpers every Outlook item service shares: change keys, conversation ids, touching an item."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from graphattach.domain import ids
from graphattach.domain.models import Item


def new_change_key() -> str:
    """Exchange change keys are base64 of an opaque blob (``CQAAABYAAAA...``)."""
    return "CQAAABYAAA" + base64.b64encode(ids.token_bytes(15)).decode("ascii")


def new_conversation_id() -> str:
    return "AAQkAD" + base64.urlsafe_b64encode(ids.token_bytes(33)).decode("ascii")


def new_conversation_index(now: datetime) -> str:
    """The 22-byte header of PidTagConversationIndex: a reserved byte, the time, a GUID."""
    ticks = int(now.timestamp() * 10_000_000) + 116_444_736_000_000_000  # FILETIME
    header = b"\x01" + (ticks >> 16).to_bytes(8, "big")[3:] + ids.token_bytes(16)
    return base64.b64encode(header).decode("ascii")


def touch(item: Item, now: datetime) -> None:
    """A modification: new change key and last-modified time."""
    item.last_modified = now
    item.change_key = new_change_key()


#: Collections Graph upserts by ``id`` (case-insensitive) instead of replacing them on PATCH.
EXTENDED_PROPERTIES = ("singleValueExtendedProperties", "multiValueExtendedProperties")


def apply_changes(data: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``data`` with validated PATCH ``changes`` applied (extended properties merged by id)."""
    merged = {**data, **changes}
    for key in EXTENDED_PROPERTIES:
        if key in changes:
            by_id = {p["id"].lower(): p for p in data.get(key) or []}
            for prop in changes[key]:
                by_id[prop["id"].lower()] = prop
            merged[key] = list(by_id.values())
    return merged
