"""The route table: every endpoint the path parser can produce has a handler, and the reverse."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphattach.api.graph import ENDPOINTS, ROUTES
from graphattach.protocol.endpoints import Endpoint
from graphattach.protocol.operations import GRAPH_OPERATIONS
from graphattach.protocol.paths import parse_graph_path

#: One URL per endpoint (under /v1.0); the examples must cover every ``Endpoint``.
EXAMPLES: dict[str, str] = {
    "users": "/users",
    "user": "/users/adele@contoso.onmicrosoft.com",
    "messages": "/me/messages",
    "messages.count": "/me/messages/$count",
    "message": "/me/messages/M1",
    "message.send": "/me/messages/M1/send",
    "sendMail": "/me/sendMail",
    "mailFolders": "/me/mailFolders",
    "mailFolders.count": "/me/mailFolders/$count",
    "mailFolder": "/me/mailFolders/inbox",
    "events": "/me/events",
    "events.count": "/me/events/$count",
    "event": "/me/events/E1",
    "calendars": "/me/calendars",
    "calendars.count": "/me/calendars/$count",
    "calendar": "/me/calendar",
    "calendarGroups": "/me/calendarGroups",
    "calendarGroups.count": "/me/calendarGroups/$count",
    "calendarGroup": "/me/calendarGroups/G1",
    "attachments": "/me/messages/M1/attachments",
    "attachments.count": "/me/messages/M1/attachments/$count",
    "attachment": "/me/messages/M1/attachments/A1",
    "attachment.value": "/me/messages/M1/attachments/A1/$value",
    "attachments.createUploadSession": "/me/messages/M1/attachments/createUploadSession",
    "messages.delta": "/me/messages/delta",
    "calendarView.delta": "/me/calendarView/delta",
    "message.move": "/me/messages/M1/move",
    "message.copy": "/me/messages/M1/copy",
    "message.createReply": "/me/messages/M1/createReply",
    "message.createReplyAll": "/me/messages/M1/createReplyAll",
    "message.createForward": "/me/messages/M1/createForward",
    "message.reply": "/me/messages/M1/reply",
    "message.replyAll": "/me/messages/M1/replyAll",
    "message.forward": "/me/messages/M1/forward",
    "subscriptions": "/subscriptions",
    "subscription": "/subscriptions/S1",
    "subscription.reauthorize": "/subscriptions/S1/reauthorize",
}
ARCHITECTURE = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"


def test_the_examples_cover_every_endpoint() -> None:
    assert set(EXAMPLES) == {e.value for e in Endpoint}


@pytest.mark.parametrize(("endpoint", "url"), EXAMPLES.items())
def test_the_parser_produces_each_endpoint(endpoint: str, url: str) -> None:
    parsed = parse_graph_path("v1.0", url)
    assert parsed.endpoint is Endpoint(endpoint)


def test_every_endpoint_the_parser_can_produce_has_a_handler() -> None:
    assert set(ENDPOINTS) == set(Endpoint)


def test_every_handler_is_for_an_endpoint_the_parser_produces() -> None:
    for endpoint, method in ROUTES:
        assert isinstance(endpoint, Endpoint), (endpoint, method)  # keyed by the enum: grep-able
        assert method in ("GET", "POST", "PATCH", "PUT", "DELETE")


def test_operations_and_handlers_have_the_same_keys() -> None:
    assert set(GRAPH_OPERATIONS) == set(ROUTES)


def test_docs_architecture_lists_every_route() -> None:
    text = ARCHITECTURE.read_text()
    for (endpoint, method), handler in ROUTES.items():
        row = f"| `{method}` | `{endpoint.value}` | `{handler.__module__.removeprefix('graphattach.')}.{handler.__qualname__}` |"
        assert row in text, row
