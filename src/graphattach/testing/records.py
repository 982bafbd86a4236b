"""What ``GraphServer`` hands back: users, journal entries, and mailbox views for assertions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


@dataclass(frozen=True, slots=True)
class UserInfo:
    id: str
    upn: str
    display_name: str
    mail: str
    max_message_size: int

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> UserInfo:
        return cls(
            id=body["id"],
            upn=body["userPrincipalName"],
            display_name=body["displayName"],
            mail=body.get("mail") or body["userPrincipalName"],
            max_message_size=int(body.get("maxMessageSize") or 0),
        )


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request the server served (an entry of its journal)."""

    seq: int
    time: datetime
    method: str
    path: str
    query: str
    status: int
    request_id: str
    client_request_id: str
    #: The operation name (``attachments.create``, ``uploadSession.put``, ``oauth.token``, ``admin.reset``...).
    operation: str
    #: ``delegated``, ``app``, ``upload`` or None.
    caller: str | None
    #: The signed-in user's UPN (delegated tokens).
    user: str | None
    user_id: str | None
    app_id: str | None
    #: The least privileged permission the call needed (None when it needed none).
    permission: str | None
    accepted_permissions: tuple[str, ...]
    granted_permissions: tuple[str, ...]
    bytes_in: int
    bytes_out: int
    duration_ms: float
    #: What a fault rule or throttling did to the request (e.g. ``rule 1: status 503``), if anything.
    fault: str | None = None

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> RequestRecord:
        time = _time(body["time"])
        assert time is not None
        return cls(
            seq=body["seq"],
            time=time,
            method=body["method"],
            path=body["path"],
            query=body["query"],
            status=body["status"],
            request_id=body["requestId"],
            client_request_id=body["clientRequestId"],
            operation=body["operation"],
            caller=body["caller"],
            user=body["user"],
            user_id=body["userId"],
            app_id=body["appId"],
            permission=body["permission"],
            accepted_permissions=tuple(body["acceptedPermissions"]),
            granted_permissions=tuple(body["grantedPermissions"]),
            bytes_in=body["bytesIn"],
            bytes_out=body["bytesOut"],
            duration_ms=body["durationMs"],
            fault=body.get("fault"),
        )


@dataclass(frozen=True, slots=True)
class AttachmentInfo:
    id: str
    #: ``file``, ``item`` or ``reference``.
    kind: str
    name: str | None
    content_type: str | None
    #: The ``size`` Graph reports.
    size: int
    #: Raw bytes of a file attachment's content.
    content_length: int
    is_inline: bool
    #: SHA-256 (hex) of a file attachment's bytes.
    sha256: str | None

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> AttachmentInfo:
        return cls(
            id=body["id"],
            kind=body["kind"],
            name=body["name"],
            content_type=body["contentType"],
            size=body["size"],
            content_length=body["contentLength"],
            is_inline=body["isInline"],
            sha256=body["sha256"],
        )


@dataclass(frozen=True, slots=True)
class ItemInfo:
    """A message or an event of a mailbox, with its attachments."""

    id: str
    #: ``message`` or ``event``.
    kind: str
    #: The folder's well-known name (``inbox``, ``drafts``, ``sentitems``, ``calendar``...) or display name.
    folder: str
    subject: str | None
    created: datetime
    last_modified: datetime
    has_attachments: bool
    attachments: tuple[AttachmentInfo, ...]
    is_draft: bool = False
    is_read: bool = False
    sender: str | None = None
    to: tuple[str, ...] = ()
    start: dict[str, Any] | None = None
    end: dict[str, Any] | None = None

    def attachment(self, name: str) -> AttachmentInfo:
        """The attachment called ``name`` (KeyError if there is none)."""
        for attachment in self.attachments:
            if attachment.name == name:
                return attachment
        raise KeyError(name)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> ItemInfo:
        created = _time(body["createdDateTime"])
        modified = _time(body["lastModifiedDateTime"])
        assert created is not None and modified is not None
        return cls(
            id=body["id"],
            kind=body["kind"],
            folder=body["folder"],
            subject=body.get("subject"),
            created=created,
            last_modified=modified,
            has_attachments=body["hasAttachments"],
            attachments=tuple(AttachmentInfo.from_json(a) for a in body["attachments"]),
            is_draft=bool(body.get("isDraft")),
            is_read=bool(body.get("isRead")),
            sender=body.get("from"),
            to=tuple(body.get("toRecipients") or ()),
            start=body.get("start"),
            end=body.get("end"),
        )
