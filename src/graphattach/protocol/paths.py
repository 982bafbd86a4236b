"""Parse a Graph resource path into a typed ``GraphPath``.

Rules that real clients need (msgraph-sdk and O365, seen on the wire; tests/compat runs them):
- split the *raw* path on ``/`` first, then percent-decode each segment on its own, so an id
  with ``%2F`` or ``%3D`` stays one segment and ``+`` is never a space;
- segment names match case-insensitively (the walkthrough itself writes ``Users('…')/Events``);
- a key may be a segment of its own (``messages/{id}``) or OData key syntax (``messages('{id}')``);
- one trailing ``/`` is tolerated (O365 sends ``…/attachments/{id}/?$expand=…``).

The grammar, after ``/v1.0`` or ``/beta``::

    root        = "me" rest | "users" [key rest] | "subscriptions" [key ["reauthorize"]]
    rest        = "" | "sendMail" | "messages" [key message | "delta"] | "mailFolders" [key folder]
                | "events" [key event] | "calendar" calendar | "calendars" [key calendar]
                | "calendarGroups" [key ["calendars" [key calendar]]] | "calendarView" "delta"
    folder      = "" | "childFolders" [key folder] | "messages" [key message | "delta"]
    message     = "" | action | attachments
    action      = "send" | "move" | "copy" | "createReply" | "createReplyAll" | "createForward"
                | "reply" | "replyAll" | "forward"      (also namespace-qualified: microsoft.graph.move)
    calendar    = "" | "events" [key event]
    event       = "" | attachments
    attachments = "attachments" ["$count" | "createUploadSession" | key ["$value"]]

``$count`` is also accepted after any collection.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote

from graphattach.domain.errors import GraphError
from graphattach.protocol.endpoints import Endpoint
from graphattach.protocol.errors import BadRequest, InvalidIdMalformed, ResourceNotFound

#: Actions bound to one message (``POST .../messages/{id}/<action>``, message-move.md, message-reply.md...).
MESSAGE_ACTIONS = (
    "send",
    "move",
    "copy",
    "createReply",
    "createReplyAll",
    "createForward",
    "reply",
    "replyAll",
    "forward",
)

_KEY_SYNTAX = re.compile(r"^([^()]+)\((.*)\)$", re.DOTALL)
_NAMESPACE = "microsoft.graph."


@dataclass(frozen=True, slots=True)
class Step:
    """One navigation step: a collection name and, when addressed, one member's key."""

    name: str
    key: str | None = None


@dataclass(frozen=True, slots=True)
class GraphPath:
    """A parsed Graph path.

    ``endpoint`` names the target for dispatch (``protocol/endpoints.Endpoint``).
    """

    version: str
    #: None for ``/me``; else the id or userPrincipalName as given.
    user: str | None
    endpoint: Endpoint
    #: The containers walked after the user: mailFolders/childFolders, calendarGroups/calendars/calendar.
    containers: tuple[Step, ...] = ()
    #: ``("message", id)`` or ``("event", id)`` when the path goes through one item.
    item: tuple[str, str] | None = None
    attachment_id: str | None = None
    #: Every step as written (canonical names), for @odata.context.
    steps: tuple[Step, ...] = field(default=())

    @property
    def is_me(self) -> bool:
        return bool(self.steps) and self.steps[0].name == "me"

    @property
    def item_kind(self) -> str | None:
        return self.item[0] if self.item else None

    @property
    def item_id(self) -> str | None:
        return self.item[1] if self.item else None


_CANONICAL = {
    name.lower(): name
    for name in (
        "me",
        "users",
        "messages",
        "mailFolders",
        "childFolders",
        "events",
        "calendar",
        "calendars",
        "calendarGroups",
        "attachments",
        "sendMail",
        "createUploadSession",
        "$value",
        "$count",
        *MESSAGE_ACTIONS,
        "delta",
        "calendarView",
        "subscriptions",
        "reauthorize",
    )
}


def split_segments(raw_path: str) -> list[str]:
    """Split the raw path on ``/`` (segments stay percent-encoded; one trailing slash dropped)."""
    parts = raw_path.split("/")
    if parts and parts[0] == "":
        parts = parts[1:]
    if len(parts) > 1 and parts[-1] == "":
        parts = parts[:-1]  # one trailing slash
    return parts


def _split_key(raw_segment: str) -> tuple[str, str | None]:
    """``name('key')`` → (name, key), recognised on the raw segment so that an encoded ``%28``
    inside an id is never taken for syntax; then each part is percent-decoded (``+`` stays)."""
    match = _KEY_SYNTAX.match(raw_segment)
    if not match:
        return unquote(raw_segment, errors="strict"), None
    name, key = unquote(match.group(1), errors="strict"), unquote(match.group(2), errors="strict")
    if len(key) >= 2 and key[0] == key[-1] == "'":
        key = key[1:-1].replace("''", "'")
    return name, key


def _canonical(name: str) -> str:
    lowered = name.lower()
    if lowered.startswith(_NAMESPACE):
        lowered = lowered[len(_NAMESPACE) :]
    return _CANONICAL.get(lowered, name)


class _Reader:
    def __init__(self, segments: list[str]) -> None:
        self.items: list[tuple[str, str | None]] = [(_canonical(n), k) for n, k in map(_split_key, segments)]
        self.pos = 0
        self.steps: list[Step] = []

    def peek(self) -> str | None:
        return self.items[self.pos][0] if self.pos < len(self.items) else None

    def at_end(self) -> bool:
        return self.pos >= len(self.items)

    def take_name(self, *names: str) -> tuple[str, str | None] | None:
        if self.pos < len(self.items) and self.items[self.pos][0] in names:
            item = self.items[self.pos]
            self.pos += 1
            return item
        return None

    def take_key(self, inline_key: str | None) -> str | None:
        """The member key: inline ``name('k')`` or the next segment when it is not a keyword."""
        if inline_key is not None:
            key = inline_key
        elif self.pos < len(self.items) and self.items[self.pos][1] is None:
            key = self.items[self.pos][0]
            # the next segment is a key only if it is not one of our keywords
            if key in _CANONICAL.values() and key not in ("me",):
                return None
            self.pos += 1
        else:
            return None
        if key == "":
            raise InvalidIdMalformed("Resource id is empty.")
        return key

    def fail(self) -> GraphError:
        name = self.items[self.pos][0] if self.pos < len(self.items) else ""
        return ResourceNotFound(f"Resource not found for the segment '{name}'.")


def parse_graph_path(version: str, raw_path: str) -> GraphPath:
    """Parse the part of a request path after ``/{version}/``."""
    segments = split_segments(raw_path)
    if not segments or segments == [""]:
        raise ResourceNotFound("Resource not found for the segment ''.")
    if any(s == "" for s in segments):
        raise BadRequest("The request URL has an empty segment.")
    try:
        reader = _Reader(segments)
    except UnicodeDecodeError:
        raise BadRequest("The request URL is not valid UTF-8 after percent-decoding.") from None
    return _parse_root(version, reader)


def _parse_root(version: str, r: _Reader) -> GraphPath:
    user: str | None
    if taken := r.take_name("subscriptions"):
        return _parse_subscriptions(version, r, taken[1])
    if r.take_name("me"):
        user = None
        steps: list[Step] = [Step("me")]
    else:
        taken = r.take_name("users")
        if not taken:
            raise r.fail()
        key = r.take_key(taken[1])
        if key is None:
            return _done(version, r, GraphPath(version, None, Endpoint.USERS, steps=(Step("users"),)))
        user = key
        steps = [Step("users", key)]
    return _parse_user_rest(version, r, user, steps)


def _parse_subscriptions(version: str, r: _Reader, inline_key: str | None) -> GraphPath:
    """``subscriptions``, ``subscriptions/{id}``, ``subscriptions/{id}/reauthorize`` (the id is
    ``steps[0].key``)."""
    key = r.take_key(inline_key)
    if key is None:
        return _done(version, r, GraphPath(version, None, Endpoint.SUBSCRIPTIONS, steps=(Step("subscriptions"),)))
    steps = (Step("subscriptions", key),)
    if r.take_name("reauthorize"):
        return _done(version, r, GraphPath(version, None, Endpoint.SUBSCRIPTION_REAUTHORIZE, steps=steps))
    return _done(version, r, GraphPath(version, None, Endpoint.SUBSCRIPTION, steps=steps))


def _done(version: str, r: _Reader, path: GraphPath) -> GraphPath:
    if not r.at_end():
        raise r.fail()
    return path


def _collection(
    version: str,
    r: _Reader,
    user: str | None,
    steps: list[Step],
    endpoint: Endpoint,
    containers: tuple[Step, ...] = (),
    item: tuple[str, str] | None = None,
) -> GraphPath:
    """A collection endpoint, optionally followed by ``$count``."""
    if r.take_name("$count"):
        endpoint = endpoint.counted()
    return _done(version, r, GraphPath(version, user, endpoint, containers, item, None, tuple(steps)))


def _parse_user_rest(version: str, r: _Reader, user: str | None, steps: list[Step]) -> GraphPath:
    if r.at_end():
        return GraphPath(version, user, Endpoint.USER, steps=tuple(steps))
    if taken := r.take_name("sendMail"):
        steps.append(Step("sendMail"))
        return _done(version, r, GraphPath(version, user, Endpoint.SEND_MAIL, steps=tuple(steps)))
    if taken := r.take_name("messages"):
        return _parse_messages(version, r, user, steps, (), taken[1])
    if taken := r.take_name("mailFolders"):
        return _parse_folders(version, r, user, steps, (), "mailFolders", taken[1])
    if taken := r.take_name("events"):
        return _parse_events(version, r, user, steps, (), taken[1])
    if r.take_name("calendarView"):
        # only its delta (event-delta.md: /me/calendarView/delta, the primary calendar)
        if not r.take_name("delta"):
            raise r.fail()
        steps += [Step("calendarView"), Step("delta")]
        return _done(version, r, GraphPath(version, user, Endpoint.CALENDAR_VIEW_DELTA, steps=tuple(steps)))
    if taken := r.take_name("calendar"):
        if taken[1] is not None:
            raise r.fail()
        steps.append(Step("calendar"))
        return _parse_calendar(version, r, user, steps, (Step("calendar"),))
    if taken := r.take_name("calendars"):
        key = r.take_key(taken[1])
        if key is None:
            steps.append(Step("calendars"))
            return _collection(version, r, user, steps, Endpoint.CALENDARS)
        steps.append(Step("calendars", key))
        return _parse_calendar(version, r, user, steps, (Step("calendars", key),))
    if taken := r.take_name("calendarGroups"):
        key = r.take_key(taken[1])
        if key is None:
            steps.append(Step("calendarGroups"))
            return _collection(version, r, user, steps, Endpoint.CALENDAR_GROUPS)
        steps.append(Step("calendarGroups", key))
        group = Step("calendarGroups", key)
        if r.at_end():
            return GraphPath(version, user, Endpoint.CALENDAR_GROUP, (group,), steps=tuple(steps))
        cal = r.take_name("calendars")
        if not cal:
            raise r.fail()
        ckey = r.take_key(cal[1])
        if ckey is None:
            steps.append(Step("calendars"))
            return _collection(version, r, user, steps, Endpoint.CALENDARS, (group,))
        steps.append(Step("calendars", ckey))
        return _parse_calendar(version, r, user, steps, (group, Step("calendars", ckey)))
    raise r.fail()


def _parse_folders(
    version: str,
    r: _Reader,
    user: str | None,
    steps: list[Step],
    containers: tuple[Step, ...],
    name: str,
    inline_key: str | None,
) -> GraphPath:
    key = r.take_key(inline_key)
    if key is None:
        steps.append(Step(name))
        return _collection(version, r, user, steps, Endpoint.MAIL_FOLDERS, containers)
    step = Step(name, key)
    steps.append(step)
    containers = (*containers, step)
    if r.at_end():
        return GraphPath(version, user, Endpoint.MAIL_FOLDER, containers, steps=tuple(steps))
    if taken := r.take_name("childFolders"):
        return _parse_folders(version, r, user, steps, containers, "childFolders", taken[1])
    if taken := r.take_name("messages"):
        return _parse_messages(version, r, user, steps, containers, taken[1])
    raise r.fail()


def _parse_messages(
    version: str,
    r: _Reader,
    user: str | None,
    steps: list[Step],
    containers: tuple[Step, ...],
    inline_key: str | None,
) -> GraphPath:
    key = r.take_key(inline_key)
    if key is None:
        steps.append(Step("messages"))
        if r.take_name("delta"):
            steps.append(Step("delta"))
            return _done(version, r, GraphPath(version, user, Endpoint.MESSAGES_DELTA, containers, steps=tuple(steps)))
        return _collection(version, r, user, steps, Endpoint.MESSAGES, containers)
    steps.append(Step("messages", key))
    item = ("message", key)
    if r.at_end():
        return GraphPath(version, user, Endpoint.MESSAGE, containers, item, steps=tuple(steps))
    if taken := r.take_name(*MESSAGE_ACTIONS):
        steps.append(Step(taken[0]))
        return _done(
            version, r, GraphPath(version, user, Endpoint(f"message.{taken[0]}"), containers, item, steps=tuple(steps))
        )
    return _parse_attachments(version, r, user, steps, containers, item)


def _parse_calendar(
    version: str, r: _Reader, user: str | None, steps: list[Step], containers: tuple[Step, ...]
) -> GraphPath:
    if r.at_end():
        return GraphPath(version, user, Endpoint.CALENDAR, containers, steps=tuple(steps))
    if taken := r.take_name("events"):
        return _parse_events(version, r, user, steps, containers, taken[1])
    raise r.fail()


def _parse_events(
    version: str,
    r: _Reader,
    user: str | None,
    steps: list[Step],
    containers: tuple[Step, ...],
    inline_key: str | None,
) -> GraphPath:
    key = r.take_key(inline_key)
    if key is None:
        steps.append(Step("events"))
        return _collection(version, r, user, steps, Endpoint.EVENTS, containers)
    steps.append(Step("events", key))
    item = ("event", key)
    if r.at_end():
        return GraphPath(version, user, Endpoint.EVENT, containers, item, steps=tuple(steps))
    return _parse_attachments(version, r, user, steps, containers, item)


def _parse_attachments(
    version: str,
    r: _Reader,
    user: str | None,
    steps: list[Step],
    containers: tuple[Step, ...],
    item: tuple[str, str],
) -> GraphPath:
    taken = r.take_name("attachments")
    if not taken:
        raise r.fail()
    if r.take_name("createUploadSession"):
        steps += [Step("attachments"), Step("createUploadSession")]
        return _done(
            version,
            r,
            GraphPath(version, user, Endpoint.CREATE_UPLOAD_SESSION, containers, item, steps=tuple(steps)),
        )
    key = r.take_key(taken[1])
    if key is None:
        steps.append(Step("attachments"))
        return _collection(version, r, user, steps, Endpoint.ATTACHMENTS, containers, item)
    steps.append(Step("attachments", key))
    if r.take_name("$value"):
        steps.append(Step("$value"))
        return _done(
            version, r, GraphPath(version, user, Endpoint.ATTACHMENT_VALUE, containers, item, key, tuple(steps))
        )
    return _done(version, r, GraphPath(version, user, Endpoint.ATTACHMENT, containers, item, key, tuple(steps)))
