"""The Graph route table's keys: every endpoint ``protocol/paths.py`` can produce.

A Graph URL is parsed (``paths.parse_graph_path``) into a ``GraphPath`` whose ``endpoint`` is one
of these; the handler of ``(endpoint, method)`` is in the ``ROUTES`` of one ``api`` module
(grep ``Endpoint.MESSAGE`` to find it), its operation name in ``protocol/operations.py``.
docs/architecture.md has the whole table. Tests keep the three in step
(tests/protocol/test_endpoints.py).
"""

from __future__ import annotations

from enum import StrEnum


class Endpoint(StrEnum):
    """What a Graph path addresses; ``.count`` is its collection's ``$count``."""

    USERS = "users"
    USER = "user"
    MESSAGES = "messages"
    MESSAGES_COUNT = "messages.count"
    MESSAGE = "message"
    MESSAGE_SEND = "message.send"
    SEND_MAIL = "sendMail"
    MAIL_FOLDERS = "mailFolders"
    MAIL_FOLDERS_COUNT = "mailFolders.count"
    MAIL_FOLDER = "mailFolder"
    EVENTS = "events"
    EVENTS_COUNT = "events.count"
    EVENT = "event"
    CALENDARS = "calendars"
    CALENDARS_COUNT = "calendars.count"
    CALENDAR = "calendar"
    CALENDAR_GROUPS = "calendarGroups"
    CALENDAR_GROUPS_COUNT = "calendarGroups.count"
    CALENDAR_GROUP = "calendarGroup"
    ATTACHMENTS = "attachments"
    ATTACHMENTS_COUNT = "attachments.count"
    ATTACHMENT = "attachment"
    ATTACHMENT_VALUE = "attachment.value"
    CREATE_UPLOAD_SESSION = "attachments.createUploadSession"
    MESSAGES_DELTA = "messages.delta"
    CALENDAR_VIEW_DELTA = "calendarView.delta"
    MESSAGE_MOVE = "message.move"
    MESSAGE_COPY = "message.copy"
    MESSAGE_CREATE_REPLY = "message.createReply"
    MESSAGE_CREATE_REPLY_ALL = "message.createReplyAll"
    MESSAGE_CREATE_FORWARD = "message.createForward"
    MESSAGE_REPLY = "message.reply"
    MESSAGE_REPLY_ALL = "message.replyAll"
    MESSAGE_FORWARD = "message.forward"
    SUBSCRIPTIONS = "subscriptions"
    SUBSCRIPTION = "subscription"
    SUBSCRIPTION_REAUTHORIZE = "subscription.reauthorize"

    def counted(self) -> Endpoint:
        """The ``$count`` endpoint of this collection."""
        return Endpoint(f"{self.value}.count")
