"""The Graph path grammar (protocol/paths.py), with property tests for per-segment decoding."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from graphattach.domain.errors import GraphError
from graphattach.protocol.errors import BadRequest, ResourceNotFound
from graphattach.protocol.paths import _CANONICAL, Step, parse_graph_path


@pytest.mark.parametrize(
    ("raw", "endpoint", "item", "attachment"),
    [
        ("/me/messages/AAMk=/attachments", "attachments", ("message", "AAMk="), None),
        ("/me/messages/AAMk%3D/attachments/AT%3D", "attachment", ("message", "AAMk="), "AT="),
        ("/me/messages/M1/attachments/A1/$value", "attachment.value", ("message", "M1"), "A1"),
        ("/me/messages/M1/attachments/A1/", "attachment", ("message", "M1"), "A1"),
        ("/me/messages/M1/attachments/createUploadSession", "attachments.createUploadSession", ("message", "M1"), None),
        (
            "/me/messages/M1/attachments/microsoft.graph.createUploadSession",
            "attachments.createUploadSession",
            ("message", "M1"),
            None,
        ),
        ("/me/events/E1/attachments", "attachments", ("event", "E1"), None),
        ("/me/calendar/events/E1/attachments/A1", "attachment", ("event", "E1"), "A1"),
        ("/me/calendars/C1/events/E1/attachments", "attachments", ("event", "E1"), None),
        ("/me/calendarGroups/G1/calendars/C1/events/E1/attachments", "attachments", ("event", "E1"), None),
        (
            "/me/mailFolders/inbox/childFolders/F1/childFolders/F2/messages/M1/attachments",
            "attachments",
            ("message", "M1"),
            None,
        ),
        ("/Users('u@x.com')/Events('E1%3D')/Attachments('A1%3D')/$value", "attachment.value", ("event", "E1="), "A1="),
        ("/me/messages/M1/send", "message.send", ("message", "M1"), None),
        ("/me/sendMail", "sendMail", None, None),
        ("/me/messages/M1/attachments/$count", "attachments.count", ("message", "M1"), None),
    ],
)
def test_endpoints(raw: str, endpoint: str, item: tuple[str, str] | None, attachment: str | None) -> None:
    path = parse_graph_path("v1.0", raw)
    assert path.endpoint == endpoint
    assert path.item == item
    assert path.attachment_id == attachment


def test_users_key_forms_and_me() -> None:
    assert parse_graph_path("v1.0", "/users/alice%40example.com/messages").user == "alice@example.com"
    assert parse_graph_path("v1.0", "/users('alice@example.com')").endpoint == "user"
    me = parse_graph_path("v1.0", "/me/mailFolders/inbox/childFolders/X/messages")
    assert me.is_me and me.user is None
    assert me.containers == (Step("mailFolders", "inbox"), Step("childFolders", "X"))
    assert not parse_graph_path("v1.0", "/users").is_me


def test_plus_is_not_a_space_and_slash_stays_in_segment() -> None:
    path = parse_graph_path("v1.0", "/me/messages/a+b%2Fc/attachments")
    assert path.item == ("message", "a+b/c")


@pytest.mark.parametrize("raw", ["/me/nonsense", "/foo", "/me/messages/M1/bogus", "/me/calendarGroups/G/events"])
def test_unknown_segments(raw: str) -> None:
    with pytest.raises(GraphError) as raised:
        parse_graph_path("v1.0", raw)
    assert (
        (raised.value.status, raised.value.code)
        == (ResourceNotFound.status, ResourceNotFound.code)
        == (400, "BadRequest")
    )
    assert raised.value.message.startswith("Resource not found for the segment '")


def test_empty_segment_is_bad_request() -> None:
    with pytest.raises(GraphError) as raised:
        parse_graph_path("v1.0", "/me/messages//attachments")
    assert (raised.value.status, raised.value.code) == (BadRequest.status, BadRequest.code) == (400, "BadRequest")
    assert raised.value.message == "The request URL has an empty segment."


# Segment names are never taken for ids (the parser reads "calendar" after messages/ as a name).
_KEYWORDS = set(_CANONICAL)


@given(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40).filter(
        lambda k: k.lower().removeprefix("microsoft.graph.") not in _KEYWORDS
    )
)
def test_any_id_round_trips_through_percent_encoding(key: str) -> None:
    raw = f"/me/messages/{quote(key, safe='')}/attachments"
    path = parse_graph_path("v1.0", raw)
    assert path.item == ("message", key)
