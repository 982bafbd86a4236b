"""Delta query for the messages of a folder: state tokens and the shape of a delta page.

``GET .../mailFolders/{id}/messages/delta`` (https://learn.microsoft.com/graph/delta-query-messages):
the first round returns the folder's messages page by page (``@odata.nextLink`` with a
``$skiptoken``), the last page carries an ``@odata.deltaLink`` (``$deltatoken``); calling that
returns what changed since: created and updated messages, and ``{"id", "@removed": {"reason":
"deleted"}}`` for those deleted or moved out. Tokens encode every query option of the first call.

A token is the round's state (mailbox, folder, change numbers, ``$select``, page size, filter)
as base64url JSON with an HMAC, so a token survives a restart, and one that was altered, or is
used on another folder or mailbox, is refused with 400 ``ErrorInvalidSyncStateData`` (Exchange's
code for sync state it cannot read; docs/fidelity.md). A token also names the store's reset
generation it was issued in: after a reset its change numbers mean nothing, and it is answered as
Graph answers a token whose sync state is gone, 410 ``SyncStateNotFound`` with a ``Location``
that starts a full round again (https://learn.microsoft.com/graph/delta-query-overview,
"Synchronization reset").

Nothing here does I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import orjson

from graphattach.domain.errors import GraphError
from graphattach.protocol.errors import InvalidParameter, InvalidSyncStateData, InvalidUrlQuery

#: The page size when the client sets none (microsoftgraph/msgraph-sdk-java#536: pages of 10).
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 1000

_FILTER = re.compile(r"^\s*receivedDateTime\s+(ge|gt)\s+(\S+)\s*$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class DeltaState:
    """Where a delta round stands. ``after``: changes up to this number were delivered;
    ``upto``: the change number the round reads up to (0 for a deltaLink: the next call decides);
    ``initial``: the first round, where removed messages are not reported."""

    user_id: str
    folder_id: str
    after: int
    upto: int
    initial: bool
    select: tuple[str, ...] | None
    page_size: int
    #: ``(operator, ISO date-time)`` of ``$filter=receivedDateTime ge|gt ...``.
    received_filter: tuple[str, str] | None
    #: ``(startDateTime, endDateTime)`` of a calendarView delta.
    window: tuple[str, str] | None = None
    #: The store's reset generation the round began in (``storage.interfaces.RESET_GENERATION``).
    generation: int = 0


def invalid_state() -> GraphError:
    return InvalidSyncStateData("The sync state data is corrupt or otherwise invalid.")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_token(state: DeltaState, key: bytes) -> str:
    payload = orjson.dumps(
        {
            "u": state.user_id,
            "f": state.folder_id,
            "a": state.after,
            "t": state.upto,
            "i": state.initial,
            "s": list(state.select) if state.select is not None else None,
            "p": state.page_size,
            "r": list(state.received_filter) if state.received_filter else None,
            "w": list(state.window) if state.window else None,
            "g": state.generation,
        }
    )
    mac = hmac.new(key, payload, hashlib.sha256).digest()[:16]
    return _b64(payload) + "." + _b64(mac)


def decode_token(token: str, key: bytes, *, user_id: str, folder_id: str, generation: int) -> DeltaState:
    """The state of a token this server issued for this mailbox and folder, else the 400; a token
    of an earlier reset ``generation`` raises ``StaleSyncState``."""
    try:
        body, _, mac = token.partition(".")
        payload = _unb64(body)
        if not hmac.compare_digest(_unb64(mac), hmac.new(key, payload, hashlib.sha256).digest()[:16]):
            raise invalid_state()
        data = orjson.loads(payload)
        state = DeltaState(
            user_id=str(data["u"]),
            folder_id=str(data["f"]),
            after=int(data["a"]),
            upto=int(data["t"]),
            initial=bool(data["i"]),
            select=tuple(data["s"]) if data["s"] is not None else None,
            page_size=int(data["p"]),
            received_filter=(str(data["r"][0]), str(data["r"][1])) if data["r"] else None,
            window=(str(data["w"][0]), str(data["w"][1])) if data.get("w") else None,
            # tokens issued before generations were recorded are of generation 0 (never reset)
            generation=int(data.get("g", 0)),
        )
    except (ValueError, KeyError, TypeError, IndexError, binascii.Error, orjson.JSONDecodeError):
        raise invalid_state() from None
    if state.generation != generation:
        # before the folder check: after a reset the mailbox's folders have new ids
        raise StaleSyncState(state, generation)
    if state.user_id != user_id or state.folder_id != folder_id:
        raise invalid_state()
    return state


class StaleSyncState(Exception):
    """A genuine token from before a reset; the handler answers ``SyncStateNotFound`` with a
    ``Location`` for a new round of the same query (``fresh_round_query``)."""

    def __init__(self, state: DeltaState, generation: int) -> None:
        super().__init__(f"delta token of reset generation {state.generation}, now {generation}")
        self.state = state
        self.generation = generation


def fresh_round_query(state: DeltaState) -> str:
    """The query of a new full round with ``state``'s options and an empty ``$deltatoken``, as the
    ``Location`` of a synchronization reset has it (delta-query-overview)."""
    params: list[tuple[str, str]] = []
    if state.window is not None:
        params += [("startDateTime", state.window[0]), ("endDateTime", state.window[1])]
    if state.select is not None:
        params.append(("$select", ",".join(state.select)))
    if state.received_filter is not None:
        params.append(("$filter", f"receivedDateTime {state.received_filter[0]} {state.received_filter[1]}"))
    params.append(("$deltatoken", ""))
    return urlencode(params, safe="$,:")


def parse_received_filter(value: str | None) -> tuple[str, str] | None:
    """``receivedDateTime ge|gt {value}``, the only ``$filter`` message delta takes."""
    if value is None:
        return None
    match = _FILTER.match(value)
    if match:
        when = match.group(2).strip("'")
        try:
            datetime.fromisoformat(when.replace("Z", "+00:00"))
        except ValueError:
            match = None
        else:
            return match.group(1).lower(), when
    # Graph's words (microsoftgraph/msgraph-sdk-dotnet#1512)
    raise InvalidUrlQuery(
        "The '$filter' parameter value is not supported for 'Messages' resource; only a value of "
        "'receivedDateTime ge value' is supported."
    )


def passes_filter(received: str | None, received_filter: tuple[str, str] | None) -> bool:
    if received_filter is None:
        return True
    if received is None:
        return False
    operator, value = received_filter
    left = datetime.fromisoformat(received.replace("Z", "+00:00"))
    right = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return left >= right if operator == "ge" else left > right


def page_size(prefer: str | None) -> int | None:
    """``Prefer: odata.maxpagesize=N`` (None when absent or not a positive number)."""
    for part in (prefer or "").split(","):
        name, _, value = part.strip().partition("=")
        if name.strip().lower() == "odata.maxpagesize":
            try:
                size = int(value.strip().strip('"'))
            except ValueError:
                return None
            return min(size, MAX_PAGE_SIZE) if size > 0 else None
    return None


def removed_entry(item_id: str, kind: str = "message") -> dict[str, Any]:
    return {"@odata.type": f"#microsoft.graph.{kind}", "id": item_id, "@removed": {"reason": "deleted"}}


def parse_window(start: str | None, end: str | None) -> tuple[datetime, datetime]:
    """``startDateTime``/``endDateTime`` of calendarView (ISO 8601; no offset means UTC)."""
    if not start or not end:
        # Graph's words (microsoft-graph-docs-contrib#4342)
        raise InvalidParameter(
            "This request requires a time window specified by the query string parameters StartDateTime "
            "and EndDateTime."
        )
    out = []
    for name, value in (("startDateTime", start), ("endDateTime", end)):
        try:
            when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise InvalidParameter(f"The value '{value}' of parameter '{name}' is not a valid date and time.") from None
        out.append(when if when.tzinfo is not None else when.replace(tzinfo=UTC))
    return out[0], out[1]
