"""What the client talks about: targets (a message or an event of a user) and attachments."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote

from graphattach.client._errors import InvalidInput, ProtocolError

__all__ = ["Attachment", "Event", "Message", "Target", "UploadSession", "target_path"]


def _seg(value: str) -> str:
    """One path segment, percent-encoded as the Graph SDKs do (``=`` → ``%3D``, ``@`` → ``%40``)."""
    if not value:
        raise InvalidInput("an id must not be empty")
    return quote(value, safe="")


def _user_prefix(user: str | None) -> str:
    return f"/users/{_seg(user)}" if user and user != "me" else "/me"


@dataclass(frozen=True, slots=True)
class Message:
    """A message of a user (``/me`` when ``user`` is None), optionally addressed through its folder.

    ``folder`` is a mail folder id or well-known name (``"drafts"``), or a sequence of ids for a
    nested child folder (``("inbox", "AAMk…")`` → ``mailFolders/inbox/childFolders/AAMk…``).
    """

    id: str
    user: str | None = None
    folder: str | Sequence[str] | None = None

    @property
    def kind(self) -> str:
        return "message"

    @property
    def path(self) -> str:
        path = _user_prefix(self.user)
        folders = [self.folder] if isinstance(self.folder, str) else list(self.folder or ())
        for i, folder in enumerate(folders):
            path += f"/{'mailFolders' if i == 0 else 'childFolders'}/{_seg(folder)}"
        return f"{path}/messages/{_seg(self.id)}"


@dataclass(frozen=True, slots=True)
class Event:
    """An event of a user, optionally addressed through a calendar (and its calendar group).

    ``calendar=None`` uses ``/events/{id}``; ``calendar="default"`` uses ``/calendar/events/{id}``.
    """

    id: str
    user: str | None = None
    calendar: str | None = None
    calendar_group: str | None = None

    @property
    def kind(self) -> str:
        return "event"

    @property
    def path(self) -> str:
        path = _user_prefix(self.user)
        if self.calendar_group is not None:
            if self.calendar is None:
                raise InvalidInput("calendar_group needs calendar")
            path += f"/calendarGroups/{_seg(self.calendar_group)}"
        if self.calendar == "default" and self.calendar_group is None:
            path += "/calendar"
        elif self.calendar is not None:
            path += f"/calendars/{_seg(self.calendar)}"
        return f"{path}/events/{_seg(self.id)}"


Target = Message | Event | str

_KIND_BY_COLLECTION = {"messages": "message", "events": "event"}


def target_path(target: Target) -> tuple[str, str]:
    """``(path relative to the service root, "message" | "event")`` for a target.

    A string is a Graph path as written (``/me/messages/AAMk…``, ``users/x/events/y``), or a full
    URL whose service root is dropped (``https://graph.microsoft.com/v1.0/me/messages/…``).
    """
    if isinstance(target, Message | Event):
        return target.path, target.kind
    if not isinstance(target, str) or not target.strip():
        raise InvalidInput(f"not a message or an event: {target!r}")
    path = target.strip()
    match = re.match(r"^https?://[^/]+/(?:v1\.0|beta)(/.*)$", path)
    if match:
        path = match.group(1)
    path = "/" + path.strip("/")
    if path.lower().endswith("/attachments"):
        path = path[: -len("/attachments")]
    parts = path.strip("/").split("/")
    if len(parts) < 3 or parts[0].lower() not in ("me", "users"):
        raise InvalidInput(f"not a message or an event path: {target!r}")
    kind = _KIND_BY_COLLECTION.get(parts[-2].lower())
    if kind is None:
        raise InvalidInput(f"not a message or an event path (…/messages/ID or …/events/ID): {target!r}")
    return path, kind


def _parse_datetime(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # Python 3.11 parses up to 6 fractional digits; Graph sends 7.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    # Graph's times are UTC; a value without an offset is read as UTC.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Attachment:
    """An attachment as Graph describes it (``size`` is Exchange's stored size, not the raw length)."""

    id: str
    name: str | None = None
    content_type: str | None = None
    size: int | None = None
    is_inline: bool = False
    content_id: str | None = None
    last_modified: datetime | None = None
    #: ``#microsoft.graph.fileAttachment``, ``…itemAttachment`` or ``…referenceAttachment``.
    odata_type: str | None = None
    #: The target it belongs to (a Graph path), when known.
    parent: str | None = None
    #: The JSON object as received (``contentBytes`` dropped).
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def kind(self) -> str:
        """``file``, ``item``, ``reference`` (or ``attachment`` if Graph did not say)."""
        text = (self.odata_type or "").rsplit(".", 1)[-1].lower()
        return text.removesuffix("attachment") or "attachment"

    @classmethod
    def from_json(cls, data: Any, parent: str | None = None) -> Attachment:
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            raise ProtocolError(f"expected an attachment with an id, got {str(data)[:200]!r}")
        size = data.get("size")
        return cls(
            id=data["id"],
            name=data.get("name"),
            content_type=data.get("contentType"),
            size=size if isinstance(size, int) else None,
            is_inline=bool(data.get("isInline")),
            content_id=data.get("contentId"),
            last_modified=_parse_datetime(data.get("lastModifiedDateTime")),
            odata_type=data.get("@odata.type"),
            parent=parent,
            raw={k: v for k, v in data.items() if k != "contentBytes"},
        )

    def to_json(self) -> dict[str, Any]:
        """A plain JSON object (the CLI's ``--json``)."""
        return {
            "id": self.id,
            "name": self.name,
            "contentType": self.content_type,
            "size": self.size,
            "isInline": self.is_inline,
            "contentId": self.content_id,
            "lastModifiedDateTime": self.last_modified.isoformat() if self.last_modified else None,
            "@odata.type": self.odata_type,
        }


@dataclass(frozen=True, slots=True)
class UploadSession:
    """An Outlook upload session: where to PUT, until when, and from which byte."""

    upload_url: str
    expiration: datetime | None = None
    next_expected_ranges: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: Any, upload_url: str | None = None) -> UploadSession:
        """Read a createUploadSession answer or a PUT/GET answer (camel or Pascal keys)."""
        if not isinstance(data, dict):
            raise ProtocolError(f"expected an upload session object, got {str(data)[:200]!r}")
        lowered = {k.lower(): v for k, v in data.items() if isinstance(k, str)}
        url = lowered.get("uploadurl") or upload_url
        if not isinstance(url, str) or not url:
            raise ProtocolError("the upload session has no uploadUrl")
        ranges = lowered.get("nextexpectedranges")
        if ranges is None:
            ranges = []
        if isinstance(ranges, str):
            ranges = [ranges]
        if not isinstance(ranges, list) or not all(isinstance(r, str) for r in ranges):
            raise ProtocolError(f"nextExpectedRanges is not a list of strings: {ranges!r}")
        return cls(url, _parse_datetime(lowered.get("expirationdatetime")), tuple(ranges))


def parse_range(text: str, total: int) -> tuple[int, int]:
    """``"N"``, ``"N-"`` or ``"N-M"`` → (first, last) byte, inclusive, clipped to the file."""
    match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d*)\s*)?", text)
    if not match:
        raise ProtocolError(f"cannot read the range {text!r} in nextExpectedRanges")
    first = int(match.group(1))
    last = int(match.group(2)) if match.group(2) else total - 1
    last = min(last, total - 1)
    if first > last or first >= total:
        raise ProtocolError(f"the range {text!r} is outside the {total}-byte file")
    return first, last


_LOCATION_ID = re.compile(r"attachments\('((?:[^']|'')*)'\)", re.IGNORECASE)
_LOCATION_SEGMENT = re.compile(r"/attachments/([^/?#]+)", re.IGNORECASE)


def attachment_id_from_location(location: str) -> str | None:
    """The id in ``…/Attachments('{id}')`` (OData key syntax) or ``…/attachments/{id}``."""
    match = _LOCATION_ID.search(location)
    if match:
        return unquote(match.group(1).replace("''", "'"))
    match = _LOCATION_SEGMENT.search(location)
    if match:
        return unquote(match.group(1))
    return None
