"""JSON shapes of ``microsoft.graph.attachment`` (file, item, reference) and strict parsing of the
attachment payloads clients POST.

Parsing (https://learn.microsoft.com/graph/api/resources/fileattachment and its siblings):
- ``@odata.type`` is required: absent (or the abstract ``microsoft.graph.attachment``) → 422
  ``UnprocessableType``; a type that is not an attachment → 400. The leading ``#`` and the case
  of the type name do not matter.
- Property names match case-insensitively; the same property twice (also ``name`` + ``Name``) is a
  400, as OData refuses duplicate properties. Unknown properties are a 400 in strict mode.
- ``contentBytes`` must be base64 (whitespace is ignored as .NET's ``Convert.FromBase64String``
  does; anything else that is not the standard alphabet with padding → 400).
- Booleans and enums accept the lax forms the beta seed sends (``"isFolder": "True"``,
  ``"permission": "Edit"``) and are echoed canonically (``true``, ``"edit"``).
- In ``/v1.0`` a reference attachment has no properties of its own: ``sourceUrl`` and friends are
  a 400 there; in ``/beta`` ``sourceUrl`` is required.

Rendering keeps the key order of the documented responses; ``contentBytes`` always comes last so
that a large attachment can be streamed as JSON prefix + base64 + suffix.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

import pybase64

from graphattach.domain import limits
from graphattach.domain.content_types import guess_content_type
from graphattach.domain.errors import GraphError
from graphattach.domain.models import Attachment
from graphattach.domain.sizes import file_attachment_size, item_attachment_size, reference_attachment_size
from graphattach.protocol.errors import AttachmentNestLevelLimitExceeded, BadRequest, UnprocessableType
from graphattach.protocol.jsonio import duplicate_property, graph_datetime, loads_object

FILE_TYPE = "#microsoft.graph.fileAttachment"
ITEM_TYPE = "#microsoft.graph.itemAttachment"
REFERENCE_TYPE = "#microsoft.graph.referenceAttachment"

_TYPES: dict[str, Literal["file", "item", "reference"]] = {
    "microsoft.graph.fileattachment": "file",
    "microsoft.graph.itemattachment": "item",
    "microsoft.graph.referenceattachment": "reference",
}
_ODATA_TYPE = {"file": FILE_TYPE, "item": ITEM_TYPE, "reference": REFERENCE_TYPE}
_TYPE_NAME = {"file": "fileAttachment", "item": "itemAttachment", "reference": "referenceAttachment"}

#: Outlook items an itemAttachment can embed, by lower-case type name.
ITEM_KINDS = {
    "microsoft.graph.message": "message",
    "microsoft.graph.event": "event",
    "microsoft.graph.contact": "contact",
}

#: ``referenceAttachmentProvider`` and ``referenceAttachmentPermission`` (beta CSDL).
PROVIDER_TYPES = ("other", "oneDriveBusiness", "oneDriveConsumer", "dropbox")
PERMISSIONS = (
    "other",
    "view",
    "edit",
    "anonymousView",
    "anonymousEdit",
    "organizationView",
    "organizationEdit",
)
REFERENCE_PROPERTIES = ("sourceUrl", "providerType", "thumbnailUrl", "previewUrl", "permission", "isFolder")

BASE_PROPERTIES = ("id", "lastModifiedDateTime", "name", "contentType", "size", "isInline")
FILE_PROPERTIES = ("contentId", "contentLocation", "contentBytes")
#: Everything ``$select`` may name on an attachment (any subtype).
SELECTABLE = frozenset({*BASE_PROPERTIES, *FILE_PROPERTIES, *REFERENCE_PROPERTIES, "item"})

#: Properties a client may send that the server computes: accepted and ignored.
_READ_ONLY = frozenset({"id", "lastmodifieddatetime", "size", "contentlocation"})
_WRITABLE_BASE = ("name", "contentType", "isInline")

#: The raw bytes of a file streamed per chunk: a multiple of 3 (so that each base64 piece stands on
#: its own) and at least 1 MiB for throughput.
STREAM_CHUNK = 3 * 512 * 1024


# --------------------------------------------------------------------------------------------
# request bodies


@dataclass(slots=True)
class FileInput:
    name: str
    content_type: str
    is_inline: bool
    content_id: str | None
    content: bytes
    #: ``contentBytes`` as sent when it is exactly ``base64(content)`` (to echo it without
    #: encoding again), else None.
    encoded: str | bytes | None = None
    kind: Literal["file"] = "file"


@dataclass(slots=True)
class LiftedContent:
    """The ``contentBytes`` of a request body, taken out before the body is parsed
    (``lift_content_bytes``): its decoded bytes and its base64 as sent."""

    content: bytes
    encoded: bytes


@dataclass(slots=True)
class ItemInput:
    name: str | None
    content_type: str | None
    is_inline: bool
    #: ``message``, ``event`` or ``contact``.
    item_kind: str
    #: The embedded item as sent, normalised (``@odata.type`` with ``#``; nested attachments parsed).
    item: dict[str, Any]
    kind: Literal["item"] = "item"


@dataclass(slots=True)
class ReferenceInput:
    name: str | None
    content_type: str | None
    is_inline: bool
    #: Beta reference properties (empty in v1.0).
    properties: dict[str, Any] = field(default_factory=dict)
    kind: Literal["reference"] = "reference"


AttachmentInput = FileInput | ItemInput | ReferenceInput


def _unknown_property(name: str, type_name: str) -> GraphError:
    return BadRequest(
        f"The property '{name}' does not exist on type 'microsoft.graph.{type_name}'. Make sure to only use "
        "property names that are defined by the type or mark the type as open type."
    )


def _incompatible(name: str, value: Any, expected: str) -> GraphError:
    found = {bool: "Edm.Boolean", int: "Edm.Int32", float: "Edm.Double", str: "Edm.String"}.get(type(value))
    if isinstance(value, dict):
        return BadRequest(
            f"A value of a complex type was found for the property '{name}', which is of type {expected}."
        )
    if isinstance(value, list):
        return BadRequest(f"A collection was found for the property '{name}', which is of type {expected}.")
    return BadRequest(
        f"An incompatible primitive type '{found}[Nullable=False]' was found for an item that was expected to "
        f"be of type '{expected}[Nullable=True]'."
    )


def _null_not_allowed(name: str, expected: str) -> GraphError:
    return BadRequest(
        f"A null value was found for the property named '{name}', which has the expected type "
        f"'{expected}[Nullable=False]'. The expected type '{expected}[Nullable=False]' does not allow null values."
    )


def _required(name: str, type_name: str) -> GraphError:
    return BadRequest(f"The property '{name}' is required when creating a microsoft.graph.{type_name}.")


#: Longest ``contentType`` accepted. It is sent back as the ``Content-Type`` header of ``$value``,
#: so it must be one header value: printable ASCII (RFC 9110 §5.5 field values; RFC 2045 MIME
#: types are ASCII), no CR/LF, no NUL. docs/fidelity.md: the limit and the 400 are our choice.
MAX_CONTENT_TYPE_LENGTH = 255
FALLBACK_CONTENT_TYPE = "application/octet-stream"


def check_content_type(value: str | None) -> str | None:
    """``value`` if it can be a ``Content-Type`` header, else ``BadRequest``."""
    if value is None or is_header_safe(value):
        return value
    raise BadRequest(
        "The value of property 'contentType' is not a valid MIME type: it must be printable ASCII of at most "
        f"{MAX_CONTENT_TYPE_LENGTH} characters."
    )


def is_header_safe(value: str) -> bool:
    return len(value) <= MAX_CONTENT_TYPE_LENGTH and value.isascii() and value.isprintable()


def header_content_type(value: str | None) -> str:
    """The ``Content-Type`` to send for a stored ``contentType``: itself when it is a valid header
    value, else ``application/octet-stream`` (a record stored before the check stays readable)."""
    return value if value and is_header_safe(value) else FALLBACK_CONTENT_TYPE


def _string(props: dict[str, tuple[str, Any]], key: str, *, required_in: str | None = None) -> str | None:
    if key.lower() not in props:
        if required_in is not None:
            raise _required(key, required_in)
        return None
    name, value = props[key.lower()]
    if value is None:
        if required_in is not None:
            raise _required(key, required_in)
        return None
    if not isinstance(value, str):
        raise _incompatible(name, value, "Edm.String")
    return value


def _boolean(props: dict[str, tuple[str, Any]], key: str, default: bool = False) -> bool:
    if key.lower() not in props:
        return default
    name, value = props[key.lower()]
    if value is None:
        raise _null_not_allowed(name, "Edm.Boolean")
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if isinstance(value, str):
        raise BadRequest(f"Cannot convert the literal '{_clip(value)}' to the expected type 'Edm.Boolean'.")
    raise _incompatible(name, value, "Edm.Boolean")


def _enum(props: dict[str, tuple[str, Any]], key: str, members: tuple[str, ...], enum_name: str) -> str | None:
    if key.lower() not in props:
        return None
    name, value = props[key.lower()]
    if value is None:
        return None
    if not isinstance(value, str):
        raise _incompatible(name, value, f"microsoft.graph.{enum_name}")
    for member in members:
        if member.lower() == value.strip().lower():
            return member
    raise BadRequest(f"Requested value '{_clip(value)}' was not found.")


def _clip(value: str, limit: int = 40) -> str:
    return value if len(value) <= limit else value[:limit] + "..."


_B64_WHITESPACE = str.maketrans("", "", " \t\r\n")


def decode_base64(value: str, prop: str = "contentBytes") -> bytes:
    """Strict standard base64 with padding; whitespace is skipped like .NET does."""
    if len(value) % 4 == 0:
        try:  # the usual case at once: no whitespace, ASCII
            return pybase64.b64decode(value, validate=True)
        except (ValueError, TypeError):
            pass
    if any(ch in value for ch in " \t\r\n"):
        value = value.translate(_B64_WHITESPACE)
    try:
        encoded = value.encode("ascii")
    except UnicodeEncodeError:
        encoded = b"!"  # not base64 whatever it is
    if len(encoded) % 4 == 0:
        try:
            return pybase64.b64decode(encoded, validate=True)
        except (ValueError, TypeError):
            pass
    raise BadRequest(
        f"Cannot convert the literal '{_clip(value)}' to the expected type 'Edm.Binary': the value of "
        f"'{prop}' is not valid base64."
    )


#: A JSON string (complete), a lone quote (a string the text ends inside), or a bracket.
_JSON_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|"|[{}\[\]]', re.DOTALL)
_CONTENT_BYTES_KEY = re.compile(rb'"contentBytes"[ \t\r\n]*:[ \t\r\n]*"')
#: How far into a body the top-level ``contentBytes`` may start to be lifted out.
_LIFT_HEAD = 64 * 1024


def lift_content_bytes(body: bytes) -> tuple[bytes, LiftedContent] | None:
    """``body`` with the value of its top-level ``contentBytes`` emptied (``""``), and that value
    decoded; None when it cannot be done safely (then the caller parses the whole body).

    A file attachment's base64 is nearly all of its POST body: parsed whole, the JSON parser
    copies it into a string that is then encoded back to bytes to be decoded and echoed. Lifted
    out, it is decoded straight from the body and the rest is parsed as usual. Only the plain
    case is lifted: the first ``"contentBytes"`` in the text is a name of the top-level object
    (nothing before it leaves a string open; one ``{`` is open) and its value is strict base64
    (no escapes, no whitespace), so parsing the rest sees exactly the document it would have
    seen. Anything else, and any error, goes through the whole body, with its usual messages."""
    found = _CONTENT_BYTES_KEY.search(body, 0, _LIFT_HEAD + 64)
    if found is None or found.start() > _LIFT_HEAD:
        return None
    depth = 0
    for token in _JSON_TOKENS.finditer(body, 0, found.start()):
        first = body[token.start()]
        if first == 0x22:  # '"'
            if token.end() - token.start() == 1:
                return None  # the key sits inside a string
        elif first in (0x7B, 0x5B):  # '{' '['
            depth += 1
        else:
            depth -= 1
    if depth != 1 or body[: found.start()].lstrip()[:1] != b"{":
        return None
    start = found.end()
    end = body.find(b'"', start)
    if end < 0 or (end - start) % 4:
        return None
    encoded = body[start:end]
    try:
        content = pybase64.b64decode(encoded, validate=True)
    except ValueError:
        return None
    return body[:start] + body[end:], LiftedContent(content, encoded)


def loads_attachment(body: bytes) -> tuple[dict[str, Any], LiftedContent | None]:
    """A POSTed attachment body as ``loads_object`` parses it, its ``contentBytes`` lifted out
    (``lift_content_bytes``) when that can be done; an error always comes from parsing the whole
    body, so that its message is the usual one."""
    lifted = lift_content_bytes(body)
    if lifted is not None:
        try:
            return loads_object(lifted[0]), lifted[1]
        except GraphError:
            pass
    return loads_object(body), None


def _split(payload: dict[str, Any]) -> tuple[str | None, dict[str, tuple[str, Any]]]:
    """The ``@odata.type`` and the properties by lower-case name (annotations dropped)."""
    odata_type: str | None = None
    props: dict[str, tuple[str, Any]] = {}
    for key, value in payload.items():
        if key.lower() == "@odata.type":
            if not isinstance(value, str):
                raise BadRequest("The value of the '@odata.type' annotation must be a string.")
            odata_type = value
        elif "@" in key:
            continue  # other instance or property annotations are ignored, as OData readers do
        elif key.lower() in props:
            raise duplicate_property(key)
        else:
            props[key.lower()] = (key, value)
    return odata_type, props


def attachment_kind(odata_type: str | None) -> Literal["file", "item", "reference"]:
    """The attachment subtype an ``@odata.type`` names (422 when missing or abstract)."""
    if odata_type is None:
        raise UnprocessableType()
    name = odata_type.strip().lstrip("#").lower()
    if name in ("microsoft.graph.attachment", "microsoft.outlookservices.attachment"):
        raise UnprocessableType()
    kind = _TYPES.get(name)
    if kind is None:
        raise BadRequest(
            f"A type named '{odata_type.strip().lstrip('#')}' could not be resolved by the model. When a model is "
            "available, each type name must resolve to a valid type."
        )
    return kind


def parse_attachment(
    payload: Any,
    *,
    version: str = "v1.0",
    strict: bool = True,
    depth: int = 0,
    lifted: LiftedContent | None = None,
) -> AttachmentInput:
    """Validate one attachment JSON object; nothing is stored here. ``lifted``: the
    ``contentBytes`` that ``lift_content_bytes`` took out of the body ``payload`` was parsed from
    (``payload`` then holds ``""`` in its place)."""
    if not isinstance(payload, dict):
        raise BadRequest("Invalid request body: an attachment must be a JSON object.")
    odata_type, props = _split(payload)
    kind = attachment_kind(odata_type)
    allowed = {p.lower() for p in _WRITABLE_BASE} | _READ_ONLY
    if kind == "file":
        allowed |= {"contentbytes", "contentid"}
    elif kind == "item":
        allowed |= {"item"}
    elif version == "beta":
        allowed |= {p.lower() for p in REFERENCE_PROPERTIES}
    for lowered, (written, _) in props.items():
        if lowered not in allowed:
            # v1.0 reference attachments have no sourceUrl & co: always refused, even with --loose.
            if strict or (kind == "reference" and lowered in {p.lower() for p in REFERENCE_PROPERTIES}):
                raise _unknown_property(written, _TYPE_NAME[kind])
    content_type = check_content_type(_string(props, "contentType"))
    is_inline = _boolean(props, "isInline")
    if kind == "file":
        name = _string(props, "name", required_in="fileAttachment")
        assert name is not None
        sent = _string(props, "contentBytes", required_in="fileAttachment")
        assert sent is not None
        encoded: str | bytes = sent
        if lifted is not None and sent == "":
            encoded, content = lifted.encoded, lifted.content
        else:
            content = decode_base64(sent)
        if not content_type:
            content_type = guess_content_type(name)
        echo = encoded if is_canonical_base64(encoded, content) else None
        return FileInput(name, content_type, is_inline, _string(props, "contentId"), content, echo)
    if kind == "item":
        return _parse_item_attachment(props, content_type, is_inline, version, strict, depth)
    properties: dict[str, Any] = {}
    if version == "beta":
        properties = {
            "sourceUrl": _string(props, "sourceUrl", required_in="referenceAttachment"),
            "providerType": _enum(props, "providerType", PROVIDER_TYPES, "referenceAttachmentProvider") or "other",
            "thumbnailUrl": _string(props, "thumbnailUrl"),
            "previewUrl": _string(props, "previewUrl"),
            "permission": _enum(props, "permission", PERMISSIONS, "referenceAttachmentPermission") or "other",
            "isFolder": _boolean(props, "isFolder"),
        }
    return ReferenceInput(_string(props, "name"), content_type, is_inline, properties)


def _parse_item_attachment(
    props: dict[str, tuple[str, Any]],
    content_type: str | None,
    is_inline: bool,
    version: str,
    strict: bool,
    depth: int,
) -> ItemInput:
    if "item" not in props or props["item"][1] is None:
        raise _required("item", "itemAttachment")
    key, item = props["item"]
    if not isinstance(item, dict):
        raise BadRequest(
            f"The property '{key}' of type 'microsoft.graph.outlookItem' expects a JSON object, "
            f"but a value of type '{type(item).__name__}' was found."
        )
    item_type, _ = _split(item)
    if item_type is None or item_type.strip().lstrip("#").lower() == "microsoft.graph.outlookitem":
        raise UnprocessableType("Cannot process input of abstract type 'Microsoft.OutlookServices.Item'")
    item_kind = ITEM_KINDS.get(item_type.strip().lstrip("#").lower())
    if item_kind is None:
        raise BadRequest(
            f"The type '{item_type.strip().lstrip('#')}' cannot be attached as an item: "
            "use microsoft.graph.message, microsoft.graph.event or microsoft.graph.contact."
        )
    normalised: dict[str, Any] = {"@odata.type": f"#microsoft.graph.{item_kind}"}
    for name, value in item.items():
        if name.lower() == "@odata.type" or name.lower() == "id":
            continue
        if name.lower() == "attachments":
            if not isinstance(value, list):
                raise BadRequest("The property 'attachments' must be a collection of attachments.")
            if value and depth + 1 >= limits.MAX_ITEM_NESTING:
                raise AttachmentNestLevelLimitExceeded(limit=limits.MAX_ITEM_NESTING)
            normalised["attachments"] = [
                input_to_embedded(parse_attachment(a, version=version, strict=strict, depth=depth + 1)) for a in value
            ]
            continue
        normalised[name] = value
    item_name = _string(props, "name")
    if item_name is None:
        subject = normalised.get("subject") or normalised.get("displayName")
        item_name = subject if isinstance(subject, str) else None
    return ItemInput(item_name, content_type, is_inline, item_kind, normalised)


def input_to_embedded(parsed: AttachmentInput) -> dict[str, Any]:
    """A nested attachment inside an embedded item, kept as JSON in the item attachment's record."""
    if isinstance(parsed, FileInput):
        return {
            "@odata.type": FILE_TYPE,
            "name": parsed.name,
            "contentType": parsed.content_type,
            "isInline": parsed.is_inline,
            "contentId": parsed.content_id,
            "contentBytes": pybase64.b64encode(parsed.content).decode("ascii"),
        }
    if isinstance(parsed, ItemInput):
        return {
            "@odata.type": ITEM_TYPE,
            "name": parsed.name,
            "contentType": parsed.content_type,
            "isInline": parsed.is_inline,
            "item": parsed.item,
        }
    return {
        "@odata.type": REFERENCE_TYPE,
        "name": parsed.name,
        "contentType": parsed.content_type,
        "isInline": parsed.is_inline,
        **parsed.properties,
    }


# --------------------------------------------------------------------------------------------
# responses


def attachment_json(
    attachment: Attachment,
    *,
    version: str = "v1.0",
    media_type_annotation: bool = False,
) -> dict[str, Any]:
    """One attachment as Graph writes it, without ``contentBytes`` (the caller appends it last).

    ``media_type_annotation`` adds ``@odata.mediaContentType`` to a file attachment, as the real
    service does when ``$select`` is used (the large-attachments walkthrough) and in expanded items.
    """
    body: dict[str, Any] = {"@odata.type": _ODATA_TYPE[attachment.kind]}
    if attachment.kind == "file" and media_type_annotation:
        body["@odata.mediaContentType"] = attachment.content_type
    body.update(
        {
            "id": attachment.id,
            "lastModifiedDateTime": graph_datetime(attachment.last_modified),
            "name": attachment.name,
            "contentType": attachment.content_type,
            "size": attachment.size,
            "isInline": attachment.is_inline,
        }
    )
    if attachment.kind == "file":
        body["contentId"] = attachment.content_id
        body["contentLocation"] = None
    elif attachment.kind == "reference" and version == "beta":
        reference = attachment.data.get("reference") or {}
        body.update(
            {
                "sourceUrl": reference.get("sourceUrl"),
                "providerType": reference.get("providerType", "other"),
                "thumbnailUrl": reference.get("thumbnailUrl"),
                "previewUrl": reference.get("previewUrl"),
                "permission": reference.get("permission", "other"),
                "isFolder": bool(reference.get("isFolder", False)),
            }
        )
    return body


def embedded_attachment_json(nested: dict[str, Any], *, version: str, last_modified: str) -> dict[str, Any]:
    """A nested attachment of an embedded item, for ``$expand=...itemAttachment/item``."""
    kind = _TYPES[nested["@odata.type"].lstrip("#").lower()]
    body: dict[str, Any] = {"@odata.type": _ODATA_TYPE[kind]}
    if kind == "file":
        body["@odata.mediaContentType"] = nested.get("contentType")
    body.update(
        {
            "id": "",
            "lastModifiedDateTime": last_modified,
            "name": nested.get("name"),
            "contentType": nested.get("contentType"),
            "size": 0,
            "isInline": bool(nested.get("isInline", False)),
        }
    )
    if kind == "file":
        encoded = str(nested.get("contentBytes", ""))
        body["size"] = file_attachment_size(len(encoded) * 3 // 4 - encoded[-2:].count("="))
        body["contentId"] = nested.get("contentId")
        body["contentLocation"] = None
        body["contentBytes"] = encoded
    elif kind == "item":
        body["size"] = item_attachment_size(nested.get("item") or {})
    else:
        body["size"] = reference_attachment_size(nested)
        if version == "beta":
            for prop in REFERENCE_PROPERTIES:
                body[prop] = nested.get(prop)
    return body


#: Defaults of an embedded item, before the properties it was created with.
_ITEM_DEFAULTS: dict[str, dict[str, Any]] = {
    "message": {
        "subject": None,
        "importance": "normal",
        "isDeliveryReceiptRequested": False,
        "isReadReceiptRequested": False,
        "isRead": False,
        "isDraft": False,
        "body": {"contentType": "text", "content": ""},
        "toRecipients": [],
        "ccRecipients": [],
        "bccRecipients": [],
    },
    "event": {
        "subject": None,
        "importance": "normal",
        "sensitivity": "normal",
        "isAllDay": False,
        "isCancelled": False,
        "showAs": "busy",
        "body": {"contentType": "text", "content": ""},
        "start": None,
        "end": None,
        "location": {"displayName": ""},
        "attendees": [],
    },
    "contact": {
        "displayName": None,
        "givenName": None,
        "surname": None,
        "emailAddresses": [],
        "businessPhones": [],
        "homePhones": [],
    },
}


def embedded_item_json(attachment: Attachment, *, version: str) -> dict[str, Any]:
    """The ``item`` of an item attachment for ``$expand``: ``"id": ""`` as the real service answers."""
    item: dict[str, Any] = dict(attachment.data.get("item") or {})
    kind = str(item.get("@odata.type", "#microsoft.graph.message")).lstrip("#").split(".")[-1]
    stamp = graph_datetime(attachment.last_modified)
    body: dict[str, Any] = {"@odata.type": f"#microsoft.graph.{kind}", "id": ""}
    body["createdDateTime"] = stamp
    body["lastModifiedDateTime"] = stamp
    nested = item.get("attachments") or []
    if kind in ("message", "event"):
        body["hasAttachments"] = any(not a.get("isInline") for a in nested)
    body.update(_ITEM_DEFAULTS.get(kind, {}))
    for key, value in item.items():
        if key in ("@odata.type", "attachments"):
            continue
        body[key] = value
    if nested:
        body["attachments"] = [embedded_attachment_json(a, version=version, last_modified=stamp) for a in nested]
    return body


def item_kind_of(attachment: Attachment) -> str | None:
    """``message``, ``event`` or ``contact`` for an item attachment."""
    item = attachment.data.get("item") or {}
    odata_type = str(item.get("@odata.type", "")).lstrip("#").lower()
    return ITEM_KINDS.get(odata_type)


def base64_length(raw_length: int) -> int:
    return 4 * ((raw_length + 2) // 3)


def is_canonical_base64(encoded: str | bytes, raw: bytes) -> bool:
    """Whether ``encoded`` (which decodes to ``raw``) is exactly ``base64(raw)``: no whitespace,
    and the last group has no stray bits (every other group encodes all of its 24 bits)."""
    if len(encoded) != base64_length(len(raw)):
        return False
    if not raw:
        return True
    tail = len(raw) % 3 or 3
    last = pybase64.b64encode(raw[-tail:])
    return encoded[-4:] == (last if isinstance(encoded, bytes) else last.decode("ascii"))


async def base64_stream(chunks: AsyncIterable[bytes | bytearray]) -> AsyncIterator[bytes]:
    """Base64 of a byte stream, piece by piece: every piece but the last encodes a multiple of
    3 bytes, so the concatenation is the base64 of the whole (no padding in the middle)."""
    carry = b""
    async for chunk in chunks:
        if not chunk:
            continue
        data = carry + chunk if carry else chunk
        cut = len(data) - len(data) % 3
        if cut:
            yield pybase64.b64encode(memoryview(data)[:cut])
        carry = bytes(data[cut:])
    if carry:
        yield pybase64.b64encode(carry)


def expand_item_requested(expand: list[str] | None) -> bool:
    """True for ``$expand=microsoft.graph.itemAttachment/item`` (any case, with or without ``#``);
    any other ``$expand`` on an attachment is a 400."""
    if not expand:
        return False
    wanted = False
    for entry in expand:
        normalised = entry.strip().lstrip("#").rstrip("/").lower()
        if normalised == "microsoft.graph.itemattachment/item":
            wanted = True
            continue
        raise BadRequest(
            f"Parsing OData Select and Expand failed: Could not find a property named '{entry.strip()}' on type "
            "'microsoft.graph.attachment'."
        )
    return wanted


def wants_bytes(select: list[str] | None) -> bool:
    """Whether ``$select`` keeps ``contentBytes`` (it does when absent or ``*``)."""
    return select is None or "*" in select or "contentbytes" in {s.lower() for s in select}


_NESTED = re.compile(r"^\s*attachments\s*(?:\((.*)\))?\s*$", re.IGNORECASE | re.DOTALL)


def nested_attachment_options(expand: list[str] | None) -> tuple[list[str] | None, bool]:
    """``$select`` and the item expansion inside ``$expand=attachments($select=...;$expand=...)``."""
    for entry in expand or []:
        match = _NESTED.match(entry)
        if not match:
            continue
        select: list[str] | None = None
        expand_item = False
        for option in (match.group(1) or "").split(";"):
            name, _, value = option.partition("=")
            lowered = name.strip().lower()
            if not lowered:
                continue
            if lowered == "$select":
                select = [s.strip() for s in value.split(",") if s.strip()]
            elif lowered == "$expand":
                expand_item = expand_item_requested([value])
            else:
                raise BadRequest(f"Query option '{name.strip()}' is not supported inside $expand=attachments.")
        return select, expand_item
    return None, False
