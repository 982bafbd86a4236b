"""The pure pieces: targets, ranges, Retry-After, Location, error mapping, the exception tree."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

import graphattach.client as ga
from graphattach.client import Event, InvalidInput, Message, ProtocolError, RetryPolicy, UploadSession
from graphattach.client._core import Reply, error_from_reply, parse_retry_after
from graphattach.client._models import attachment_id_from_location, parse_range, target_path


def test_exports_are_sorted_and_complete() -> None:
    assert ga.__all__ == sorted(ga.__all__, key=lambda n: (not n.isupper(), n))
    for name in ga.__all__:
        assert hasattr(ga, name)


def test_exception_tree() -> None:
    assert issubclass(ga.UploadSessionExpired, ga.GraphError)
    assert issubclass(ga.FileChanged, ga.InvalidInput) and issubclass(ga.InvalidInput, ValueError)
    for cls in (ga.GraphError, ga.TransportError, ga.ProtocolError, ga.AuthError, ga.InvalidInput):
        assert issubclass(cls, ga.ClientError)
    for cls in (ga.BadRequest, ga.Unauthorized, ga.Forbidden, ga.NotFound, ga.Conflict, ga.Throttled, ga.ServerError):
        assert issubclass(cls, ga.GraphError)


@pytest.mark.parametrize(
    ("target", "path", "kind"),
    [
        (Message("AAMk="), "/me/messages/AAMk%3D", "message"),
        (Message("m", user="a@b.com"), "/users/a%40b.com/messages/m", "message"),
        (Message("m", folder="drafts"), "/me/mailFolders/drafts/messages/m", "message"),
        (
            Message("m", folder=["inbox", "c1", "c2"]),
            "/me/mailFolders/inbox/childFolders/c1/childFolders/c2/messages/m",
            "message",
        ),
        (Event("e"), "/me/events/e", "event"),
        (Event("e", calendar="default"), "/me/calendar/events/e", "event"),
        (Event("e", user="u", calendar="cal"), "/users/u/calendars/cal/events/e", "event"),
        (Event("e", calendar="cal", calendar_group="g"), "/me/calendarGroups/g/calendars/cal/events/e", "event"),
        ("me/messages/m", "/me/messages/m", "message"),
        ("/users/u/calendar/events/e/attachments", "/users/u/calendar/events/e", "event"),
        ("https://graph.microsoft.com/beta/me/events/e", "/me/events/e", "event"),
    ],
)
def test_target_paths(target: ga.Target, path: str, kind: str) -> None:
    assert target_path(target) == (path, kind)


@pytest.mark.parametrize("bad", ["", "/me", "/me/contacts/x", "/groups/g/events/e", "me/messages"])
def test_bad_target_paths(bad: str) -> None:
    with pytest.raises(InvalidInput):
        target_path(bad)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0-", (0, 99)),
        ("2097152", (2097152, 2097152 + 0)),
        ("40", (40, 99)),
        ("40-", (40, 99)),
        ("40-59", (40, 59)),
        ("40-500", (40, 99)),
    ],
)
def test_parse_range(text: str, expected: tuple[int, int]) -> None:
    total = 2097153 if text == "2097152" else 100
    assert parse_range(text, total) == expected


@pytest.mark.parametrize("text", ["", "abc", "-5", "100", "60-40"])
def test_parse_range_rejects(text: str) -> None:
    with pytest.raises(ProtocolError):
        parse_range(text, 100)


def test_upload_session_reads_both_casings() -> None:
    camel = UploadSession.from_json(
        {"ExpirationDateTime": "2019-09-25T01:09:30.7671707Z", "nextExpectedRanges": ["5"]}, "u"
    )
    pascal = UploadSession.from_json({"NextExpectedRanges": ["5"]}, "u")
    assert camel.next_expected_ranges == pascal.next_expected_ranges == ("5",)
    assert camel.expiration == datetime(2019, 9, 25, 1, 9, 30, 767170, tzinfo=UTC)
    with pytest.raises(ProtocolError):
        UploadSession.from_json({"nextExpectedRanges": ["0-"]})


@pytest.mark.parametrize(
    ("value", "seconds"), [("2", 2.0), ("2.128", 2.128), (" 0 ", 0.0), ("-1", None), ("soon", None), (None, None)]
)
def test_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value) == seconds


def test_retry_after_http_date() -> None:
    now = datetime(2026, 11, 22, 3, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Sun, 22 Nov 2026 03:00:05 GMT", now) == 5.0


def test_retry_policy_delays() -> None:
    policy = RetryPolicy(backoff=1, max_backoff=10, jitter=0)
    assert [policy.delay(n) for n in range(6)] == [1, 2, 4, 8, 10, 10]
    assert policy.delay(3, retry_after=2.128) == 2.128
    assert RetryPolicy(max_retry_after=60).delay(0, retry_after=3600) == 60


@pytest.mark.parametrize(
    ("location", "attachment_id"),
    [
        ("https://outlook.office.com/api/v2.0/Users('a@b')/Messages('M=')/Attachments('AAMkADI5=')", "AAMkADI5="),
        ("https://outlook.office.com/api/gv1.0/users('a@b')/events('E')/attachments('it''s')", "it's"),
        ("http://127.0.0.1:8765/v1.0/users/u/messages/m/attachments/AAMk%3D", "AAMk="),
        ("https://example.com/nothing", None),
    ],
)
def test_attachment_id_from_location(location: str, attachment_id: str | None) -> None:
    assert attachment_id_from_location(location) == attachment_id


def test_error_from_reply_reads_graph_errors() -> None:
    body = b'{"error":{"code":"ErrorItemNotFound","message":"gone","innerError":{"request-id":"rid-1"}}}'
    error = error_from_reply(Reply(404, httpx.Headers({"request-id": "hdr"}), body))
    assert isinstance(error, ga.NotFound)
    assert (error.code, error.message, error.status, error.request_id) == ("ErrorItemNotFound", "gone", 404, "rid-1")
    assert error.one_line() == "ErrorItemNotFound: gone (HTTP 404, request-id rid-1)"
    bare = error_from_reply(Reply(503, httpx.Headers({"request-id": "hdr"}), b""))
    assert isinstance(bare, ga.ServerError) and bare.code == "ServiceUnavailable" and bare.request_id == "hdr"
