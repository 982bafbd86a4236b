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

from graphattach.protocol.endpoints import Endpoint

#: Where the operation name of the request being served lives in the ASGI scope's ``state``.
OPERATION_KEY = "operation"

#: (GraphPath.endpoint, HTTP method) → operation name.
GRAPH_OPERATIONS: dict[tuple[str, str], str] = {
    (Endpoint.USERS, "GET"): "users.list",
    (Endpoint.USER, "GET"): "users.get",
    (Endpoint.MESSAGES, "GET"): "messages.list",
    (Endpoint.MESSAGES, "POST"): "messages.create",
    (Endpoint.MESSAGES_COUNT, "GET"): "messages.count",
    (Endpoint.MESSAGES_DELTA, "GET"): "messages.delta",
    (Endpoint.MESSAGE, "GET"): "messages.get",
    (Endpoint.MESSAGE, "PATCH"): "messages.update",
    (Endpoint.MESSAGE, "DELETE"): "messages.delete",
    (Endpoint.MESSAGE_SEND, "POST"): "messages.send",
    (Endpoint.SEND_MAIL, "POST"): "messages.sendMail",
    (Endpoint.MESSAGE_MOVE, "POST"): "messages.move",
    (Endpoint.MESSAGE_COPY, "POST"): "messages.copy",
    (Endpoint.MESSAGE_CREATE_REPLY, "POST"): "messages.createReply",
    (Endpoint.MESSAGE_CREATE_REPLY_ALL, "POST"): "messages.createReplyAll",
    (Endpoint.MESSAGE_CREATE_FORWARD, "POST"): "messages.createForward",
    (Endpoint.MESSAGE_REPLY, "POST"): "messages.reply",
    (Endpoint.MESSAGE_REPLY_ALL, "POST"): "messages.replyAll",
    (Endpoint.MESSAGE_FORWARD, "POST"): "messages.forward",
    (Endpoint.MAIL_FOLDERS, "GET"): "mailFolders.list",
    (Endpoint.MAIL_FOLDERS, "POST"): "mailFolders.create",
    (Endpoint.MAIL_FOLDERS_COUNT, "GET"): "mailFolders.count",
    (Endpoint.MAIL_FOLDER, "GET"): "mailFolders.get",
    (Endpoint.MAIL_FOLDER, "PATCH"): "mailFolders.update",
    (Endpoint.MAIL_FOLDER, "DELETE"): "mailFolders.delete",
    (Endpoint.EVENTS, "GET"): "events.list",
    (Endpoint.EVENTS, "POST"): "events.create",
    (Endpoint.EVENTS_COUNT, "GET"): "events.count",
    (Endpoint.CALENDAR_VIEW_DELTA, "GET"): "events.delta",
    (Endpoint.EVENT, "GET"): "events.get",
    (Endpoint.EVENT, "PATCH"): "events.update",
    (Endpoint.EVENT, "DELETE"): "events.delete",
    (Endpoint.CALENDARS, "GET"): "calendars.list",
    (Endpoint.CALENDARS, "POST"): "calendars.create",
    (Endpoint.CALENDARS_COUNT, "GET"): "calendars.count",
    (Endpoint.CALENDAR, "GET"): "calendars.get",
    (Endpoint.CALENDAR, "PATCH"): "calendars.update",
    (Endpoint.CALENDAR, "DELETE"): "calendars.delete",
    (Endpoint.CALENDAR_GROUPS, "GET"): "calendarGroups.list",
    (Endpoint.CALENDAR_GROUPS, "POST"): "calendarGroups.create",
    (Endpoint.CALENDAR_GROUPS_COUNT, "GET"): "calendarGroups.count",
    (Endpoint.CALENDAR_GROUP, "GET"): "calendarGroups.get",
    (Endpoint.ATTACHMENTS, "GET"): "attachments.list",
    (Endpoint.ATTACHMENTS, "POST"): "attachments.create",
    (Endpoint.ATTACHMENTS_COUNT, "GET"): "attachments.count",
    (Endpoint.ATTACHMENT, "GET"): "attachments.get",
    (Endpoint.ATTACHMENT, "PATCH"): "attachments.update",
    (Endpoint.ATTACHMENT, "DELETE"): "attachments.delete",
    (Endpoint.ATTACHMENT_VALUE, "GET"): "attachments.value",
    (Endpoint.CREATE_UPLOAD_SESSION, "POST"): "attachments.createUploadSession",
    (Endpoint.SUBSCRIPTIONS, "GET"): "subscriptions.list",
    (Endpoint.SUBSCRIPTIONS, "POST"): "subscriptions.create",
    (Endpoint.SUBSCRIPTION, "GET"): "subscriptions.get",
    (Endpoint.SUBSCRIPTION, "PATCH"): "subscriptions.update",
    (Endpoint.SUBSCRIPTION, "DELETE"): "subscriptions.delete",
    (Endpoint.SUBSCRIPTION_REAUTHORIZE, "POST"): "subscriptions.reauthorize",
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
