"""Wire shapes of upload sessions: the createUploadSession request and answer, the upload URL and
its path, the PUT/GET status body and the final ``Location``. Sans I/O.

The upload endpoint's shapes are Outlook's, not Graph's (https://learn.microsoft.com/graph/outlook-large-attachments):

- upload URL ``{root}/api/gv1.0/users('{uid}@{tid}')/messages('{id}')/AttachmentSessions('{sid}')?authtoken=…``
  (``events('{id}')`` for events);
- status body ``{"@odata.context": "{root}/api/gv1.0/$metadata#users('{uid}%40{tid}')/messages('{id%3D}')/AttachmentSessions/$entity",
  "ExpirationDateTime": "…", "nextExpectedRanges": ["{next}"]}`` - Pascal ``ExpirationDateTime`` with
  camel ``nextExpectedRanges``, the range a bare number;
- ``Location: {root}/api/gv1.0/users('{uid}@{tid}')/messages('{id}')/Attachments('{aid}')``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any
from urllib.parse import unquote

from graphattach.domain.errors import GraphError
from graphattach.domain.models import ItemKind
from graphattach.protocol.attachments import check_content_type
from graphattach.protocol.errors import BadRequest
from graphattach.protocol.jsonio import graph_datetime_7
from graphattach.protocol.odata import context_url, quote_key

#: Path prefix of the upload endpoint on the upload origin.
UPLOAD_PREFIX = "/api/gv1.0"
_SEGMENT = re.compile(r"^([A-Za-z]+)\('(.*)'\)$", re.DOTALL)
_ITEM_SEGMENTS = {"messages": "message", "events": "event"}
_ITEM_NAMES = {"message": "messages", "event": "events"}

# request ------------------------------------------------------------------------------------------

#: The properties of ``microsoft.graph.attachmentItem`` (v1.0 CSDL, plus ``contentId`` from beta).
ATTACHMENT_ITEM_PROPERTIES = ("attachmentType", "contentId", "contentType", "isInline", "name", "size")
_ATTACHMENT_TYPES = ("file", "item", "reference")


@dataclass(frozen=True, slots=True)
class AttachmentItem:
    attachment_type: str
    name: str
    size: int
    content_type: str | None = None
    is_inline: bool = False
    content_id: str | None = None


def _invalid_literal(value: Any, edm_type: str) -> GraphError:
    shown = value if isinstance(value, str) else repr(value)
    return BadRequest(f"Cannot convert the literal '{shown}' to the expected type '{edm_type}'.")


def parse_create_request(body: dict[str, Any], *, strict: bool) -> AttachmentItem:
    """The ``AttachmentItem`` parameter of a createUploadSession body.

    The parameter name is matched case-insensitively (msgraph-sdk sends ``AttachmentItem``,
    O365 ``attachmentItem``), and so are the property names inside it. Unknown parameters and
    properties are refused in strict mode, as OData does, and ignored with ``--loose``.
    """
    item: Any = None
    found = False
    for key, value in body.items():
        if key.lower() == "attachmentitem":
            if found:
                raise BadRequest("The parameter 'AttachmentItem' is specified more than once in the request payload.")
            item, found = value, True
        elif strict and not key.startswith("@"):
            raise BadRequest(
                f"The parameter '{key}' in the request payload is not a valid parameter for the operation "
                "'createUploadSession'."
            )
    if not found or item is None:
        raise BadRequest("The parameter 'AttachmentItem' of the operation 'createUploadSession' is required.")
    if not isinstance(item, dict):
        raise BadRequest(
            "The parameter 'AttachmentItem' must be a JSON object of type 'microsoft.graph.attachmentItem'."
        )
    known = {name.lower(): name for name in ATTACHMENT_ITEM_PROPERTIES}
    values: dict[str, Any] = {}
    for key, value in item.items():
        if key.lower() == "@odata.type":
            if not isinstance(value, str) or value.lstrip("#").lower() != "microsoft.graph.attachmentitem":
                raise BadRequest(f"The type '{value}' is not compatible with 'microsoft.graph.attachmentItem'.")
            continue
        name = known.get(key.lower())
        if name is None:
            if strict and not key.startswith("@"):
                raise BadRequest(
                    f"The property '{key}' does not exist on type 'microsoft.graph.attachmentItem'. Make sure to "
                    "only use property names that are defined by the type."
                )
            continue
        values[name] = value

    kind = values.get("attachmentType")
    if kind is None:
        raise BadRequest("The property 'attachmentType' of 'microsoft.graph.attachmentItem' is required.")
    if not isinstance(kind, str) or kind.lower() not in _ATTACHMENT_TYPES:
        raise _invalid_literal(kind, "microsoft.graph.attachmentType")
    name_value = values.get("name")
    if not isinstance(name_value, str) or not name_value.strip():
        raise BadRequest("The property 'name' of 'microsoft.graph.attachmentItem' is required.")
    size = values.get("size")
    if size is None:
        raise BadRequest("The property 'size' of 'microsoft.graph.attachmentItem' is required.")
    if isinstance(size, bool) or not isinstance(size, int) or not -(2**63) <= size < 2**63:
        raise _invalid_literal(size, "Edm.Int64")
    content_type = values.get("contentType")
    if content_type is not None and not isinstance(content_type, str):
        raise _invalid_literal(content_type, "Edm.String")
    check_content_type(content_type)
    is_inline = values.get("isInline")
    if is_inline is not None and not isinstance(is_inline, bool):
        raise _invalid_literal(is_inline, "Edm.Boolean")
    content_id = values.get("contentId")
    if content_id is not None and not isinstance(content_id, str):
        raise _invalid_literal(content_id, "Edm.String")
    return AttachmentItem(
        attachment_type=kind.lower(),
        name=name_value,
        size=size,
        content_type=content_type or None,
        is_inline=bool(is_inline),
        content_id=content_id,
    )


# the upload URL -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UploadPath:
    """What an upload URL's path names."""

    user_id: str
    tenant_id: str
    item_kind: ItemKind
    item_id: str
    session_id: str


def _mailbox(user_id: str, tenant_id: str) -> str:
    return f"users('{user_id}@{tenant_id}')"


def _item(kind: str, item_id: str) -> str:
    return f"{_ITEM_NAMES[kind]}('{item_id}')"


def upload_url(
    upload_root: str, user_id: str, tenant_id: str, kind: str, item_id: str, session_id: str, token: str
) -> str:
    return (
        f"{upload_root}{UPLOAD_PREFIX}/{_mailbox(user_id, tenant_id)}/{_item(kind, item_id)}"
        f"/AttachmentSessions('{session_id}')?authtoken={token}"
    )


def attachment_location(
    upload_root: str, user_id: str, tenant_id: str, kind: str, item_id: str, attachment_id: str
) -> str:
    return f"{upload_root}{UPLOAD_PREFIX}/{_mailbox(user_id, tenant_id)}/{_item(kind, item_id)}/Attachments('{attachment_id}')"


def parse_upload_path(raw: str) -> UploadPath | None:
    """The parts of ``users('u@t')/messages('i')/AttachmentSessions('s')`` (the raw path after
    the prefix); None when it is not that shape. Segment names match case-insensitively (the
    older v2.0 URLs wrote ``Users``/``Messages``/``Events``); each segment is percent-decoded on
    its own."""
    parts = raw.strip("/").split("/")
    if len(parts) != 3:
        return None
    parsed: list[tuple[str, str]] = []
    for part in parts:
        try:
            segment = unquote(part, errors="strict")
        except UnicodeDecodeError:
            return None
        match = _SEGMENT.match(segment)
        if match is None:
            return None
        parsed.append((match.group(1).lower(), match.group(2)))
    (users, mailbox), (items, item_id), (sessions, session_id) = parsed
    if users != "users" or items not in _ITEM_SEGMENTS or sessions != "attachmentsessions":
        return None
    user_id, at, tenant_id = mailbox.rpartition("@")
    if not at or not user_id or not tenant_id or not item_id or not session_id:
        return None
    kind: ItemKind = "message" if _ITEM_SEGMENTS[items] == "message" else "event"
    return UploadPath(user_id, tenant_id, kind, item_id, session_id)


# answers ------------------------------------------------------------------------------------------


def create_response(service_root: str, url: str, expires: datetime) -> dict[str, Any]:
    """The 201 body of createUploadSession."""
    return {
        "@odata.context": context_url(service_root, "microsoft.graph.uploadSession"),
        "uploadUrl": url,
        "expirationDateTime": graph_datetime_7(expires),
        "nextExpectedRanges": ["0-"],
    }


def next_range(next_byte: int, size: int, profile: str) -> str:
    """Outlook's bare ``"{next}"``; lenient's ``"{next}-{size-1}"`` (what msgraph-core can parse)."""
    return f"{next_byte}-{size - 1}" if profile == "lenient" else str(next_byte)


def status_body(
    upload_root: str,
    user_id: str,
    tenant_id: str,
    kind: str,
    item_id: str,
    expires: datetime,
    next_byte: int,
    size: int,
    profile: str,
) -> dict[str, Any]:
    """The 200 body of an intermediate PUT and of GET on the upload URL."""
    return {
        "@odata.context": _status_context(upload_root, user_id, tenant_id, kind, item_id),
        "ExpirationDateTime": _expiration_text(expires),
        "nextExpectedRanges": [next_range(next_byte, size, profile)],
    }


# A session answers every range with the same context and expiry: both are remembered (a few
# hundred sessions), which is measurable on 1 KiB ranges (bench/README.md).
@lru_cache(maxsize=512)
def _status_context(upload_root: str, user_id: str, tenant_id: str, kind: str, item_id: str) -> str:
    mailbox = f"users('{quote_key(f'{user_id}@{tenant_id}')}')"
    item = f"{_ITEM_NAMES[kind]}('{quote_key(item_id)}')"
    return f"{upload_root}{UPLOAD_PREFIX}/$metadata#{mailbox}/{item}/AttachmentSessions/$entity"


@lru_cache(maxsize=512)
def _expiration_text(expires: datetime) -> str:
    return graph_datetime_7(expires)
