"""The request journal (``/_graphattach/requests``), its HAR export and the least-privilege report."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from graphattach.services.journal import minimal_permissions
from graphattach.testing import ADELE, CLIENT_SECRET, GraphServer
from graphattach.testing.server import HELPER_APP_ID

START = datetime(2026, 3, 1, 9, 0, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def server() -> Iterator[GraphServer]:
    with GraphServer(frozen_clock=START) as graph:
        yield graph


@pytest.fixture
def graph(server: GraphServer) -> GraphServer:
    server.reset()
    return server


def _scripted_session(graph: GraphServer) -> dict[str, httpx.Response]:
    """A draft, an attachment, an upload session with its PUT, an admin API token and a
    client-credentials token."""
    seen: dict[str, httpx.Response] = {}
    with graph.httpx_client(headers={"client-request-id": "my-correlation"}) as client:
        seen["draft"] = draft = client.post("me/messages", json={"subject": "journal"})
        message = draft.json()["id"]
        seen["attach"] = client.post(
            f"me/messages/{message}/attachments",
            json={"@odata.type": "#microsoft.graph.fileAttachment", "name": "a.txt", "contentBytes": "aGVsbG8="},
        )
        seen["session"] = session = client.post(
            f"me/messages/{message}/attachments/createUploadSession",
            json={"AttachmentItem": {"attachmentType": "file", "name": "big.bin", "size": 3_000_000}},
        )
    seen["put"] = httpx.put(
        session.json()["uploadUrl"],
        content=b"x" * 1000,
        headers={"Content-Range": "bytes 0-999/3000000", "Content-Type": "application/octet-stream"},
    )
    # A token from the admin API over HTTP, as `graphattach token` gets one (graph.token() signs
    # in-process, with no request).
    seen["admin_token"] = httpx.post(f"{graph.root_url}/_graphattach/token", json={"user": ADELE})
    seen["token"] = httpx.post(
        graph.token_endpoint,
        data={
            "grant_type": "client_credentials",
            "client_id": "my-daemon",
            "client_secret": CLIENT_SECRET,
            "scope": "https://graph.microsoft.com/.default",
        },
    )
    return seen


def test_every_kind_of_request_is_journaled(graph: GraphServer) -> None:
    seen = _scripted_session(graph)
    records = graph.requests
    by_operation = {r.operation: r for r in records}
    assert [r.operation for r in records if not r.operation.startswith("admin.")] == [
        "messages.create",
        "attachments.create",
        "attachments.createUploadSession",
        "uploadSession.put",
        "oauth.token",
    ]
    assert [r.seq for r in records] == sorted(r.seq for r in records)
    assert [r.operation for r in records if r.operation.startswith("admin.")] == ["admin.token"]
    assert by_operation["admin.token"].status == seen["admin_token"].status_code == 200

    create = by_operation["attachments.create"]
    assert (create.method, create.status, create.user, create.caller) == ("POST", 201, ADELE, "delegated")
    assert create.permission == "Mail.ReadWrite" and "Mail.ReadWrite" in create.granted_permissions
    assert create.request_id == seen["attach"].headers["request-id"]
    assert create.client_request_id == "my-correlation"
    assert create.bytes_in == len(seen["attach"].request.content)
    assert create.bytes_out == len(seen["attach"].content)
    assert create.time == START  # the server's (frozen) clock
    assert create.duration_ms > 0
    assert by_operation["messages.create"].path == "/v1.0/me/messages"

    put = by_operation["uploadSession.put"]
    assert (put.status, put.caller, put.bytes_in) == (200, "upload", 1000)
    assert put.user_id == graph.user(ADELE).id
    assert "authtoken=REDACTED" in put.query
    token = by_operation["oauth.token"]
    assert token.status == 200 and token.method == "POST" and token.caller is None


def test_filters_and_following(graph: GraphServer) -> None:
    _scripted_session(graph)
    with graph.httpx_client() as client:
        assert client.get("me/messages/AAMkAGI2THVSAAA=").status_code == 404
    assert [r.operation for r in graph.requests_matching(operation="attachments.")] == [
        "attachments.create",
        "attachments.createUploadSession",
    ]
    assert [r.status for r in graph.requests_matching(status="4xx")] == [404]
    assert [r.operation for r in graph.requests_matching(status=404)] == ["messages.get"]
    assert {r.user for r in graph.requests_matching(user=ADELE.upper())} == {ADELE}
    assert [r.method for r in graph.requests_matching(method="put")] == ["PUT"]
    assert len(graph.requests_matching(path="/oauth2/")) == 1
    newest = graph.requests_matching(limit=2)
    assert len(newest) == 2 and newest[-1].operation == "messages.get"
    last = graph.requests[-1].seq
    assert graph.requests_matching(since=last) == []
    graph.clock.advance(1)
    assert [r.operation for r in graph.requests_matching(since=last)] == ["admin.clock"]
    bad = httpx.get(f"{graph.root_url}/_graphattach/requests", params={"status": "teapot"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "BadRequest"


def test_reading_the_journal_is_not_journaled_and_reset_empties_it(graph: GraphServer) -> None:
    graph.requests  # noqa: B018 - reading is the point
    graph.har()
    graph.permissions_report()
    assert graph.requests == []
    _scripted_session(graph)
    graph.reset()
    assert [r.operation for r in graph.requests] == []


def test_the_journal_is_a_bounded_ring() -> None:
    with GraphServer(journal_size=3) as small:
        for _ in range(5):
            small.clock.now()
        records = small.requests
        assert len(records) == 3 and all(r.operation == "admin.clock" for r in records)
        assert records[-1].seq - records[0].seq == 2
    with GraphServer(journal_size=0) as none:
        none.clock.now()
        assert none.requests == []


def test_har_export_is_har_1_2_with_credentials_redacted(graph: GraphServer) -> None:
    seen = _scripted_session(graph)
    response = httpx.get(f"{graph.root_url}/_graphattach/requests.har")
    assert response.status_code == 200
    assert "graphattach.har" in response.headers["content-disposition"]
    har = response.json()
    text = response.text
    assert har["log"]["version"] == "1.2" and har["log"]["creator"]["name"] == "graphattach"
    entries = har["log"]["entries"]
    graph_entries = [e for e in entries if e["_graphattach"]["operation"] == "attachments.create"]
    (entry,) = graph_entries
    request, answer = entry["request"], entry["response"]
    assert request["method"] == "POST" and request["url"].endswith(
        "/v1.0/me/messages/" + seen["draft"].json()["id"] + "/attachments"
    )
    assert json.loads(request["postData"]["text"])["name"] == "a.txt"
    assert answer["status"] == 201 and answer["statusText"] == "Created"
    assert json.loads(answer["content"]["text"])["name"] == "a.txt"
    assert {"name": "authorization", "value": "Bearer REDACTED"} in request["headers"]
    assert entry["startedDateTime"] == "2026-03-01T09:00:00.000Z"
    for key in ("cache", "timings", "time"):
        assert key in entry
    # no credential of the session is in the file
    assert CLIENT_SECRET not in text
    assert seen["token"].json()["access_token"] not in text
    assert seen["session"].json()["uploadUrl"].split("authtoken=")[1] not in text
    put = next(e for e in entries if e["_graphattach"]["operation"] == "uploadSession.put")
    assert (
        put["request"]["bodySize"] == 1000
        and "text" not in put["request"]["postData"]
        or not put["request"]["postData"]["text"]
    )
    # the same filters as the journal
    only = httpx.get(f"{graph.root_url}/_graphattach/requests.har", params={"operation": "oauth.token"}).json()
    assert [e["_graphattach"]["operation"] for e in only["log"]["entries"]] == ["oauth.token"]


def test_permissions_report_gives_the_least_privileged_set(graph: GraphServer) -> None:
    reader = graph.token(ADELE, scopes="Mail.Read Mail.ReadWrite Calendars.ReadWrite User.Read", app_id="reader-app")
    headers = {"Authorization": f"Bearer {reader}"}
    assert httpx.get(f"{graph.url}/me/messages", headers=headers).status_code == 200
    assert httpx.get(f"{graph.url}/me/mailFolders/inbox", headers=headers).status_code == 200
    daemon = graph.app_token(roles=["Mail.ReadWrite", "User.Read.All"], app_id="daemon-app")
    app_headers = {"Authorization": f"Bearer {daemon}"}
    assert (
        httpx.post(f"{graph.url}/users/{ADELE}/messages", json={"subject": "x"}, headers=app_headers).status_code == 201
    )
    assert httpx.get(f"{graph.url}/users/{ADELE}/messages", headers=app_headers).status_code == 200
    assert httpx.get(f"{graph.url}/users/{ADELE}/events", headers=app_headers).status_code == 403
    graph.send_mail(subject="helper")

    report = graph.permissions_report()
    groups = {(g["caller"], g["appId"]): g for g in report["value"]}
    read = groups[("delegated", "reader-app")]
    assert read["minimalPermissions"] == ["Mail.Read"]
    assert read["excessPermissions"] == ["Calendars.ReadWrite", "Mail.ReadWrite", "User.Read"]
    assert read["operations"] == {"mailFolders.get": "Mail.Read", "messages.list": "Mail.Read"}
    app = groups[("app", "daemon-app")]
    assert app["minimalPermissions"] == ["Calendars.Read", "Mail.ReadWrite"]
    assert app["denied"] == 1 and app["excessPermissions"] == ["User.Read.All"]
    assert groups[("delegated", HELPER_APP_ID)]["minimalPermissions"] == ["Mail.Send"]


@pytest.mark.parametrize(
    ("needs", "caller", "expected"),
    [
        ([], "delegated", []),
        ([("Mail.Read", "Mail.ReadWrite")], "delegated", ["Mail.Read"]),
        ([("Mail.Read", "Mail.ReadWrite"), ("Mail.ReadWrite",)], "delegated", ["Mail.ReadWrite"]),
        ([("Mail.Read", "Mail.ReadWrite"), ("Mail.Send",)], "delegated", ["Mail.Read", "Mail.Send"]),
        (
            [("Mail.Read", "Mail.ReadWrite", "Mail.Read.Shared"), ("Calendars.Read", "Calendars.ReadWrite")],
            "app",
            ["Calendars.Read", "Mail.Read"],
        ),
        ([("Mail.Read.Shared",)], "app", []),
        (
            [("User.Read", "User.ReadBasic.All", "User.Read.All"), ("User.ReadBasic.All", "User.Read.All")],
            "delegated",
            ["User.ReadBasic.All"],
        ),
    ],
)
def test_minimal_permissions(needs: list[tuple[str, ...]], caller: str, expected: list[str]) -> None:
    assert minimal_permissions(needs, caller) == expected
