"""JSON encoding and decoding (orjson) and Graph's date formats."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from graphattach.domain.errors import BadRequest


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)


#: Deepest nesting of arrays and objects a request body may have. orjson parses up to 1,024
#: levels, but encoding (orjson.dumps stops at 255) and the recursive walks over stored JSON do
#: not go that deep; no Graph payload comes near 64.
MAX_JSON_DEPTH = 64


def loads_object(body: bytes) -> dict[str, Any]:
    """Parse a request body that must be one JSON object, with Graph's error on failure: also for
    nesting deeper than ``MAX_JSON_DEPTH`` and for strings that are not Unicode text (a lone
    surrogate such as ``"\ud800"``, which no store can encode)."""
    if not body.strip():
        raise BadRequest("Empty Payload. JSON content expected.")
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"Invalid JSON. {exc.msg} at position {exc.pos}.") from None
    if not isinstance(value, dict):
        raise BadRequest("Invalid request body: a JSON object was expected.")
    check_json(value)
    return value


def check_json(value: Any) -> None:
    """``BadRequest`` for nesting deeper than ``MAX_JSON_DEPTH`` or a string with a lone
    surrogate, anywhere in ``value`` (iterative: the depth check must not itself recurse)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            if depth > MAX_JSON_DEPTH:
                raise BadRequest(f"Invalid JSON. The payload nests more than {MAX_JSON_DEPTH} levels deep.")
            for key, item in node.items():
                _check_text(key)
                stack.append((item, depth + 1))
        elif isinstance(node, list):
            if depth > MAX_JSON_DEPTH:
                raise BadRequest(f"Invalid JSON. The payload nests more than {MAX_JSON_DEPTH} levels deep.")
            stack.extend((item, depth + 1) for item in node)
        elif isinstance(node, str):
            _check_text(node)


def _check_text(text: str) -> None:
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest("Invalid JSON. A string holds a lone UTF-16 surrogate, which is not text.") from None


def graph_datetime(value: datetime) -> str:
    """``2019-09-24T23:27:43Z``: UTC, whole seconds, as Graph writes lastModifiedDateTime."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def graph_datetime_7(value: datetime) -> str:
    """``2019-09-25T01:09:30.7671707Z``: seven fractional digits, as upload sessions write it."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond:06d}0Z"


def inner_error_date(value: datetime) -> str:
    """``2020-08-09T06:14:32``: innerError.date has no zone and no fraction."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def parse_datetime(value: str) -> datetime:
    """Parse an ISO-8601 date-time from a request; naive values are taken as UTC."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"Cannot convert the literal '{value}' to the expected type 'Edm.DateTimeOffset'.") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed
