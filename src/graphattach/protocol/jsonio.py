"""JSON encoding and decoding (orjson) and Graph's date formats."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import orjson

from graphattach.domain.errors import GraphError
from graphattach.protocol.errors import BadRequest


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)


#: Deepest nesting of arrays and objects a request body may have. orjson parses up to 1,024
#: levels, but encoding (orjson.dumps stops at 255) and the recursive walks over stored JSON do
#: not go that deep; no Graph payload comes near 64.
MAX_JSON_DEPTH = 64


class _DuplicateProperty(ValueError):
    pass


def _pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    seen: set[str] = set()
    for key, value in pairs:
        folded = key.lower()
        if folded in seen:
            raise _DuplicateProperty(key)
        seen.add(folded)
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise ValueError(f"invalid JSON literal {name}")


_KEY_END = re.compile(rb'"[ \t\r\n]*:')


def _keys_unique(value: dict[str, Any] | list[Any]) -> tuple[bool, int]:
    """Whether no object in ``value`` has two names that are equal ignoring case (and no number
    is a float: orjson reads integers past 64 bits as floats), and how many names its objects
    have in all."""
    count = 0
    if isinstance(value, dict):
        count = len(value)
        if len({key.lower() for key in value}) != count:
            return False, count
        members: Any = value.values()
    else:
        members = value
    for member in members:
        if isinstance(member, dict | list):
            unique, inner = _keys_unique(member)
            if not unique:
                return False, count
            count += inner
        elif isinstance(member, float):
            return False, count
    return True, count


def _count_upto(data: bytes, byte: bytes, limit: int) -> int:
    """Occurrences of ``byte`` in ``data``, counting stops past ``limit`` (``find`` is memchr;
    ``bytes.count`` is not)."""
    count = 0
    index = data.find(byte)
    while index >= 0 and count <= limit:
        count += 1
        index = data.find(byte, index + 1)
    return count


def _fast_loads(body: bytes) -> Any:
    """``body`` parsed by orjson when that is what the strict parser below would return, else
    None. orjson keeps the last of duplicate names silently, so its result is taken only when
    no object has a name twice (ignoring case) and the text holds no more ``"name":`` than the
    parsed objects have names (every name ends in ``"`` and ``:``; an escaped quote followed
    by ``:`` inside a string only makes the count larger, so the check errs towards the slow
    path). Anything orjson refuses (lone surrogates...) or may read differently (any float) goes
    to the slow path too, which has the error messages."""
    if body.startswith(b"\xef\xbb\xbf"):
        return None
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(value, dict):
        return None
    check_json(value)  # before the recursive walk below
    unique, names = _keys_unique(value)
    if not unique:
        return None
    # Colons outside strings are exactly the name separators, so a count of all colons that
    # matches is proof enough (fast: memchr jumps over the base64 of contentBytes, which has
    # none); else count the name ends.
    if _count_upto(body, b":", names) != names and len(_KEY_END.findall(body)) != names:
        return None
    return value


def loads_object(body: bytes) -> dict[str, Any]:
    """Parse a request body that must be one JSON object, with Graph's error on failure.

    Every Graph request body goes through here. A property given twice (names compared without
    case, at any depth) is a 400, as OData requires ("duplicate property names are not
    allowed"); docs/fidelity.md. Nesting deeper than ``MAX_JSON_DEPTH`` and strings that are
    not Unicode text (a lone surrogate) are a 400 too (``check_json``).
    """
    if not body.strip():
        raise BadRequest("Empty Payload. JSON content expected.")
    fast: dict[str, Any] | None = _fast_loads(body)
    if fast is not None:
        return fast
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("Invalid JSON. The request body is not valid UTF-8.") from None
    try:
        value = json.loads(text, object_pairs_hook=_pairs_hook, parse_constant=_no_constants)
    except _DuplicateProperty as exc:
        raise duplicate_property(str(exc)) from None
    except json.JSONDecodeError as exc:
        raise BadRequest(f"Invalid JSON. {exc.msg} at position {exc.pos}.") from None
    except (ValueError, RecursionError):
        raise BadRequest("Invalid JSON. The request body could not be parsed.") from None
    if not isinstance(value, dict):
        raise BadRequest("Invalid request body: a JSON object was expected.")
    check_json(value)
    return value


def duplicate_property(name: str) -> GraphError:
    return BadRequest(
        f"Multiple properties with the name '{name}' were detected in an entry or a complex value. "
        "In OData, duplicate property names are not allowed."
    )


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


def parse_datetime(value: str) -> datetime:
    """Parse an ISO-8601 date-time from a request; naive values are taken as UTC."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"Cannot convert the literal '{value}' to the expected type 'Edm.DateTimeOffset'.") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed
