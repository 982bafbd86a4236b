"""Database rows to records, shared by the SQL stores (SQLite and PostgreSQL).

The column names are the same in both schemas; only how a timestamp is stored differs (integer
microseconds in SQLite, ``timestamptz`` in PostgreSQL), so each store passes its converter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from graphattach.domain.models import Attachment, Folder, Item, UploadSession, User


def unjson(text: str) -> dict[str, Any]:
    value = orjson.loads(text)
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True, slots=True)
class RowMapper:
    """Builds records from rows; ``when`` turns a stored timestamp into an aware UTC datetime."""

    when: Callable[[Any], datetime]

    def user(self, row: Mapping[str, Any]) -> User:
        return User(
            id=row["id"],
            user_principal_name=row["upn"],
            display_name=row["display_name"],
            mail=row["mail"],
            max_message_size=row["max_message_size"],
            created=self.when(row["created"]),
            data=unjson(row["data"]),
        )

    def folder(self, row: Mapping[str, Any]) -> Folder:
        return Folder(
            id=row["id"],
            user_id=row["user_id"],
            kind=row["kind"],
            display_name=row["display_name"],
            parent_id=row["parent_id"],
            well_known_name=row["well_known_name"],
            created=self.when(row["created"]),
            data=unjson(row["data"]),
        )

    def item(self, row: Mapping[str, Any]) -> Item:
        return Item(
            id=row["id"],
            user_id=row["user_id"],
            kind=row["kind"],
            folder_id=row["folder_id"],
            created=self.when(row["created"]),
            last_modified=self.when(row["last_modified"]),
            change_key=row["change_key"],
            data=unjson(row["data"]),
            has_attachments=bool(row["has_attachments"]),
        )

    def attachment(self, row: Mapping[str, Any]) -> Attachment:
        return Attachment(
            id=row["id"],
            user_id=row["user_id"],
            item_id=row["item_id"],
            kind=row["kind"],
            name=row["name"],
            content_type=row["content_type"],
            size=row["size"],
            is_inline=bool(row["is_inline"]),
            content_id=row["content_id"],
            last_modified=self.when(row["last_modified"]),
            content_length=row["content_length"],
            blob_key=row["blob_key"],
            data=unjson(row["data"]),
        )

    def session(self, row: Mapping[str, Any]) -> UploadSession:
        last_start, last_end = row["last_start"], row["last_end"]
        return UploadSession(
            id=row["id"],
            user_id=row["user_id"],
            item_id=row["item_id"],
            item_kind=row["item_kind"],
            name=row["name"],
            content_type=row["content_type"],
            is_inline=bool(row["is_inline"]),
            content_id=row["content_id"],
            size=row["size"],
            received=row["received"],
            blob_key=row["blob_key"],
            state=row["state"],
            expires=self.when(row["expires"]),
            created=self.when(row["created"]),
            attachment_id=row["attachment_id"],
            last_range=(last_start, last_end) if last_start is not None and last_end is not None else None,
            ended=self.when(row["ended"]) if row["ended"] is not None else None,
        )
