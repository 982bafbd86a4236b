"""Request-body validation shared by Outlook items (messages, events) and their containers.

Every Outlook entity in a POST or PATCH body is checked against a ``Schema``: a table of the
properties the type has, each with a validator that returns the normalised value to store, plus
the properties the caller may not set. The errors are the ones Graph answers:

- a property the type does not have → 400 ``RequestBodyRead`` "The property 'x' does not exist on
  type 'Microsoft.OutlookServices.Message'. ..." (strict mode; ``--loose`` drops the property);
- a value of the wrong JSON type → 400 ``RequestBodyRead`` naming the property and the type;
- a read-only property → 400 ``ErrorInvalidPropertySet`` "Set action is invalid for property."
  (what Graph answers when a client PATCHes back an entity it read, see docs/fidelity.md).

Nothing here does I/O; ``validate`` returns a new dict or raises, so nothing is stored on error.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from graphattach.domain.errors import GraphError
from graphattach.domain.models import Item
from graphattach.protocol.errors import BadRequest, InvalidPropertySet, RequestBodyRead

Validator = Callable[[Any, str], Any]


def body_read_error(message: str) -> GraphError:
    return RequestBodyRead(message)


def unknown_property(name: str, type_name: str) -> GraphError:
    return body_read_error(
        f"The property '{name}' does not exist on type '{type_name}'. Make sure to only use property names "
        f"that are defined by the type or mark the type as open type."
    )


def read_only_property(name: str) -> GraphError:
    return InvalidPropertySet(name=name)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int | float):
        return "Number"
    if isinstance(value, str):
        return "String"
    if isinstance(value, list):
        return "Array"
    return "Object"


def wrong_type(name: str, value: Any, expected: str) -> GraphError:
    return body_read_error(
        f"Invalid value for property '{name}': expected {expected}, got a JSON {_kind(value)}. "
        f"Cannot convert the value to the expected type."
    )


# ---- primitive validators ------------------------------------------------------------------------


def string(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise wrong_type(name, value, "'Edm.String'")
    return value


def nullable_string(value: Any, name: str) -> str | None:
    return None if value is None else string(value, name)


def boolean(value: Any, name: str) -> bool:
    """``Edm.Boolean``; the strings ``"true"``/``"false"`` are read as the OData JSON reader
    reads them (O365 sends ``"isOnlineMeeting": "false"`` on every event, docs/fidelity.md)."""
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise wrong_type(name, value, "'Edm.Boolean'")
    return value


def int32(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not -(2**31) <= value < 2**31:
        raise wrong_type(name, value, "'Edm.Int32'")
    return value


def string_list(value: Any, name: str) -> list[str]:
    if not isinstance(value, list):
        raise wrong_type(name, value, "'Collection(Edm.String)'")
    return [string(v, f"{name}[{i}]") for i, v in enumerate(value)]


def enum(type_name: str, *members: str) -> Validator:
    """An OData enum: matched case-insensitively, stored in its canonical spelling."""
    canonical = {m.lower(): m for m in members}

    def check(value: Any, name: str) -> str:
        if not isinstance(value, str):
            raise wrong_type(name, value, f"'microsoft.graph.{type_name}'")
        found = canonical.get(value.lower())
        if found is None:
            raise body_read_error(
                f"Invalid value for property '{name}': the value '{value}' is not a member of "
                f"'microsoft.graph.{type_name}' ({', '.join(members)})."
            )
        return found

    return check


def nullable(validator: Validator) -> Validator:
    def check(value: Any, name: str) -> Any:
        return None if value is None else validator(value, name)

    return check


def list_of(validator: Validator, type_name: str) -> Validator:
    def check(value: Any, name: str) -> list[Any]:
        if not isinstance(value, list):
            raise wrong_type(name, value, f"'Collection({type_name})'")
        return [validator(v, f"{name}[{i}]") for i, v in enumerate(value)]

    return check


# ---- schemas ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Schema:
    """The properties of one Graph type, as a request body may carry them."""

    #: ``Microsoft.OutlookServices.Message``: the name Graph's errors use.
    type_name: str
    #: ``#microsoft.graph.message``: an ``@odata.type`` in the body must match it (or be absent).
    odata_type: str | None = None
    writable: Mapping[str, Validator] = field(default_factory=dict)
    read_only: frozenset[str] = frozenset()

    def validate(self, payload: Any, *, strict: bool, where: str = "") -> dict[str, Any]:
        """The normalised properties of ``payload``; unknown ones are dropped when not ``strict``."""
        if not isinstance(payload, dict):
            raise wrong_type(where or self.type_name, payload, f"'{self.type_name}'")
        out: dict[str, Any] = {}
        lowered = {k.lower(): k for k in self.writable}
        read_only = {k.lower() for k in self.read_only}
        for key, value in payload.items():
            if not isinstance(key, str):  # pragma: no cover - JSON keys are strings
                continue
            if key.startswith("@") or "@odata." in key:
                self._annotation(key, value)
                continue
            canonical = lowered.get(key.lower())
            label = f"{where}.{key}" if where else key
            if canonical is not None:
                out[canonical] = self.writable[canonical](value, label)
            elif key.lower() in read_only:
                raise read_only_property(key)
            elif strict:
                raise unknown_property(key, self.type_name)
        return out

    def _annotation(self, key: str, value: Any) -> None:
        if key.lower() != "@odata.type" or self.odata_type is None:
            return  # other instance annotations (@odata.etag, @odata.context) are ignored
        expected = self.odata_type.lstrip("#").lower()
        if not isinstance(value, str) or value.lstrip("#").lower() != expected:
            raise RequestBodyRead(
                f"A type named '{value}' could not be resolved by the model. The expected type is "
                f"'{self.odata_type.lstrip('#')}'."
            )


def sub_schema(schema: Schema) -> Validator:
    """A validator for a nested complex value (always strict about its own keys)."""

    def check(value: Any, name: str) -> dict[str, Any]:
        return schema.validate(value, strict=True, where=name)

    return check


# ---- complex types shared by messages and events ---------------------------------------------------

EMAIL_ADDRESS = Schema(
    "Microsoft.OutlookServices.EmailAddress",
    writable={"name": nullable_string, "address": nullable_string},
)


def email_address(value: Any, name: str) -> dict[str, Any]:
    data = EMAIL_ADDRESS.validate(value, strict=True, where=name)
    address = data.get("address")
    if not address:
        raise body_read_error(f"Invalid value for property '{name}': an 'address' is required.")
    return {"name": data.get("name") or address, "address": address}


RECIPIENT = Schema(
    "Microsoft.OutlookServices.Recipient",
    odata_type="#microsoft.graph.recipient",
    writable={"emailAddress": email_address},
)


def recipient(value: Any, name: str) -> dict[str, Any]:
    data = RECIPIENT.validate(value, strict=True, where=name)
    if "emailAddress" not in data:
        raise body_read_error(f"Invalid value for property '{name}': an 'emailAddress' is required.")
    return {"emailAddress": data["emailAddress"]}


nullable_recipient = nullable(recipient)
recipient_list = list_of(recipient, "microsoft.graph.recipient")

BODY_TYPE = enum("bodyType", "text", "html")
ITEM_BODY = Schema(
    "Microsoft.OutlookServices.ItemBody",
    writable={"contentType": BODY_TYPE, "content": nullable_string},
)


def item_body(value: Any, name: str) -> dict[str, Any]:
    if value is None:
        return {"contentType": "text", "content": ""}
    data = ITEM_BODY.validate(value, strict=True, where=name)
    return {"contentType": data.get("contentType", "text"), "content": data.get("content") or ""}


IMPORTANCE = enum("importance", "low", "normal", "high")

DATE_TIME_TIME_ZONE = Schema(
    "Microsoft.OutlookServices.DateTimeTimeZone",
    writable={"dateTime": string, "timeZone": nullable_string},
)

FOLLOWUP_FLAG = Schema(
    "Microsoft.OutlookServices.FollowupFlag",
    writable={
        "flagStatus": enum("followupFlagStatus", "notFlagged", "complete", "flagged"),
        "startDateTime": nullable(sub_schema(DATE_TIME_TIME_ZONE)),
        "dueDateTime": nullable(sub_schema(DATE_TIME_TIME_ZONE)),
        "completedDateTime": nullable(sub_schema(DATE_TIME_TIME_ZONE)),
    },
)


def followup_flag(value: Any, name: str) -> dict[str, Any]:
    if value is None:
        return {"flagStatus": "notFlagged"}
    data = FOLLOWUP_FLAG.validate(value, strict=True, where=name)
    data.setdefault("flagStatus", "notFlagged")
    return data


SINGLE_VALUE_PROPERTY = Schema(
    "Microsoft.OutlookServices.SingleValueLegacyExtendedProperty",
    writable={"id": string, "value": nullable_string},
)
MULTI_VALUE_PROPERTY = Schema(
    "Microsoft.OutlookServices.MultiValueLegacyExtendedProperty",
    writable={"id": string, "value": nullable(string_list)},
)


def _extended(schema: Schema) -> Validator:
    def check(value: Any, name: str) -> list[dict[str, Any]]:
        if not isinstance(value, list):
            raise wrong_type(name, value, f"'Collection({schema.type_name})'")
        out = []
        for i, entry in enumerate(value):
            data = schema.validate(entry, strict=True, where=f"{name}[{i}]")
            if "id" not in data:
                raise body_read_error(f"Invalid value for property '{name}[{i}]': an 'id' is required.")
            out.append({"id": data["id"], "value": data.get("value")})
        return out

    return check


#: Extended MAPI properties: stored, returned only through ``$expand`` (as on Graph).
EXTENDED_PROPERTIES: dict[str, Validator] = {
    "singleValueExtendedProperties": _extended(SINGLE_VALUE_PROPERTY),
    "multiValueExtendedProperties": _extended(MULTI_VALUE_PROPERTY),
}


def body_preview(body: dict[str, Any] | None) -> str:
    """The first 255 characters of the body as text (HTML tags and entities removed)."""
    if not body:
        return ""
    content = str(body.get("content") or "")
    if body.get("contentType") == "html":
        content = html_to_text(content)
    return " ".join(content.split())[:255]


def html_to_text(content: str) -> str:
    import html
    import re

    content = re.sub(r"(?is)<(head|style|script)\b.*?</\1\s*>", " ", content)
    content = re.sub(r"(?s)<[^>]*>", " ", content)
    return html.unescape(content)


# $expand on messages and events -------------------------------------------------------------------

EXTENDED = {
    "singlevalueextendedproperties": "singleValueExtendedProperties",
    "multivalueextendedproperties": "multiValueExtendedProperties",
}
_ID_FILTER = re.compile(r"^\s*id\s+eq\s+'((?:[^']|'')*)'\s*$", re.IGNORECASE)


def expand_name(raw: str) -> str:
    """The navigation property of one ``$expand`` entry (``attachments($select=name)`` → ``attachments``)."""
    return raw.split("(", 1)[0].strip()


def extended_properties(item: Item, key: str, raw: str) -> list[dict[str, Any]]:
    """``$expand=singleValueExtendedProperties($filter=id eq '...')``: the stored properties,
    narrowed to the id of the filter (the form the Graph docs use)."""
    stored = list(item.data.get(key) or [])
    options = raw[raw.index("(") + 1 : raw.rindex(")")] if "(" in raw and raw.endswith(")") else ""
    if not options:
        return stored
    name, _, value = options.partition("=")
    match = _ID_FILTER.match(value) if name.strip().lower() == "$filter" else None
    if match is None:
        raise BadRequest(f"Only $filter=id eq '...' is supported inside $expand of {key}.")
    wanted = match.group(1).replace("''", "'").lower()
    return [p for p in stored if p["id"].lower() == wanted]
