"""JSON encoding and decoding (orjson) and Graph's date formats."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from graphattach.protocol.errors import BadRequest


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)


def loads_object(body: bytes) -> dict[str, Any]:
    """Parse a request body that must be one JSON object, with Graph's error on failure."""
    if not body.strip():
        raise BadRequest("Empty Payload. JSON content expected.")
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"Invalid JSON. {exc.msg} at position {exc.pos}.") from None
    if not isinstance(value, dict):
        raise BadRequest("Invalid request body: a JSON object was expected.")
    return value


def graph_datetime(value: datetime) -> str:
    """``2019-09-24T23:27:43Z``: UTC, whole seconds, as Graph writes lastModifiedDateTime."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def graph_datetime_7(value: datetime) -> str:
    """``2019-09-25T01:09:30.7671707Z``: seven fractional digits, as upload sessions write it."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond:06d}0Z"


def parse_datetime(value: str) -> datetime:
    """Parse an ISO-8601 date-time from a request; naive values are taken as UTC."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"Cannot convert the literal '{value}' to the expected type 'Edm.DateTimeOffset'.") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed
