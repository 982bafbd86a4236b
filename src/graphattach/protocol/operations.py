"""Operation names: one stable, documented name for every kind of request graphattach serves.

The request journal, fault rules (``match.operation``), throttling, the permissions report and
the web UI all speak of requests by these names. A Graph request's name comes from its parsed
endpoint (``GraphPath.endpoint``) and method; the upload origin, the token endpoint and the admin
API have fixed names. The names follow ``{resource}.{verb}`` with the resource in the plural
(``attachments.create``, ``messages.send``, ``uploadSession.put``).

The middleware stores the name of the request it serves in ``scope["state"]["operation"]``
(``OPERATION_KEY``); handlers that know better (the upload origin, OAuth, admin) set it there.
"""

from __future__ import annotations

#: Where the operation name of the request being served lives in the ASGI scope's ``state``.
OPERATION_KEY = "operation"

#: (GraphPath.endpoint, HTTP method) → operation name.
GRAPH_OPERATIONS: dict[tuple[str, str], str] = {
    ("users", "GET"): "users.list",
    ("user", "GET"): "users.get",
    ("messages", "GET"): "messages.list",
    ("messages", "POST"): "messages.create",
    ("messages.count", "GET"): "messages.count",
    ("messages.delta", "GET"): "messages.delta",
    ("message", "GET"): "messages.get",
    ("message", "PATCH"): "messages.update",
    ("message", "DELETE"): "messages.delete",
    ("message.send", "POST"): "messages.send",
    ("sendMail", "POST"): "messages.sendMail",
    ("message.move", "POST"): "messages.move",
    ("message.copy", "POST"): "messages.copy",
    ("message.createReply", "POST"): "messages.createReply",
    ("message.createReplyAll", "POST"): "messages.createReplyAll",
    ("message.createForward", "POST"): "messages.createForward",
    ("message.reply", "POST"): "messages.reply",
    ("message.replyAll", "POST"): "messages.replyAll",
    ("message.forward", "POST"): "messages.forward",
    ("mailFolders", "GET"): "mailFolders.list",
    ("mailFolders", "POST"): "mailFolders.create",
    ("mailFolders.count", "GET"): "mailFolders.count",
    ("mailFolder", "GET"): "mailFolders.get",
    ("mailFolder", "PATCH"): "mailFolders.update",
    ("mailFolder", "DELETE"): "mailFolders.delete",
    ("events", "GET"): "events.list",
    ("events", "POST"): "events.create",
    ("events.count", "GET"): "events.count",
    ("calendarView.delta", "GET"): "events.delta",
    ("event", "GET"): "events.get",
    ("event", "PATCH"): "events.update",
    ("event", "DELETE"): "events.delete",
    ("calendars", "GET"): "calendars.list",
    ("calendars", "POST"): "calendars.create",
    ("calendars.count", "GET"): "calendars.count",
    ("calendar", "GET"): "calendars.get",
    ("calendar", "PATCH"): "calendars.update",
    ("calendar", "DELETE"): "calendars.delete",
    ("calendarGroups", "GET"): "calendarGroups.list",
    ("calendarGroups", "POST"): "calendarGroups.create",
    ("calendarGroups.count", "GET"): "calendarGroups.count",
    ("calendarGroup", "GET"): "calendarGroups.get",
    ("attachments", "GET"): "attachments.list",
    ("attachments", "POST"): "attachments.create",
    ("attachments.count", "GET"): "attachments.count",
    ("attachment", "GET"): "attachments.get",
    ("attachment", "PATCH"): "attachments.update",
    ("attachment", "DELETE"): "attachments.delete",
    ("attachment.value", "GET"): "attachments.value",
    ("attachments.createUploadSession", "POST"): "attachments.createUploadSession",
    ("subscriptions", "GET"): "subscriptions.list",
    ("subscriptions", "POST"): "subscriptions.create",
    ("subscription", "GET"): "subscriptions.get",
    ("subscription", "PATCH"): "subscriptions.update",
    ("subscription", "DELETE"): "subscriptions.delete",
    ("subscription.reauthorize", "POST"): "subscriptions.reauthorize",
}

#: The upload origin (``AttachmentSessions(...)``), by HTTP method.
UPLOAD_OPERATIONS: dict[str, str] = {
    "PUT": "uploadSession.put",
    "GET": "uploadSession.get",
    "DELETE": "uploadSession.delete",
}

#: ``POST /v1.0/$batch`` (each sub-request also gets its own name in its own scope).
BATCH_OPERATION = "batch"
TOKEN_OPERATION = "oauth.token"
OAUTH_METADATA_OPERATION = "oauth.metadata"
ADMIN_OPERATION_PREFIX = "admin."
#: Pages of the web UI: ``web.tenant``, ``web.mailbox``, ``web.message``, ``web.attachment.download``,
#: ``web.uploads.live``... (named by the ``view`` decorator of ``graphattach.web.pages``).
WEB_OPERATION_PREFIX = "web."
#: A Graph request that matched no handler (404/405/400 before dispatch).
UNKNOWN_OPERATION = "unknown"


def graph_operation(endpoint: str, method: str) -> str:
    """The operation name of a Graph request, ``unknown`` for an endpoint/method with no handler."""
    return GRAPH_OPERATIONS.get((endpoint, method.upper()), UNKNOWN_OPERATION)


def upload_operation(method: str) -> str:
    return UPLOAD_OPERATIONS.get(method.upper(), UNKNOWN_OPERATION)


def admin_operation(name: str) -> str:
    """``admin.{name}``, e.g. ``admin.reset``, ``admin.clock``, ``admin.sweep``."""
    return ADMIN_OPERATION_PREFIX + name


def all_operations() -> list[str]:
    """Every Graph and upload operation name, for documentation and validation of fault rules."""
    names = set(GRAPH_OPERATIONS.values()) | set(UPLOAD_OPERATIONS.values()) | {TOKEN_OPERATION, BATCH_OPERATION}
    return sorted(names)
