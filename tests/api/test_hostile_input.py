"""Input that used to answer 500 or be stored wrongly (issue 14, items 3 and 4): each is a
Graph-shaped 4xx now, or works, and never leaves an unreadable record behind."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import httpx
import pytest

from graphattach.settings import Settings
from tests.api.attachment_support import file_payload, new_message
from tests.conftest import inprocess
from tests.helpers import ADELE, Graph, assert_graph_error


def _token_url(graph: Graph, tenant: str = "common") -> str:
    return f"{graph.root}/{tenant}/oauth2/v2.0/token"


async def test_non_ascii_client_secret_and_password_are_refused_not_crashed(graph: Graph) -> None:
    secret = await graph.http.post(
        _token_url(graph),
        data={
            "grant_type": "client_credentials",
            "client_id": str(uuid.uuid4()),
            "client_secret": "sécret-ключ-🔑",
            "scope": "https://graph.microsoft.com/.default",
        },
    )
    assert secret.status_code == 401, secret.text
    assert secret.json()["error"] == "invalid_client"
    password = await graph.http.post(
        _token_url(graph),
        data={
            "grant_type": "password",
            "client_id": str(uuid.uuid4()),
            "username": ADELE,
            "password": "pässwörd-密码",
            "scope": "Mail.Read",
        },
    )
    assert password.status_code == 400, password.text
    assert password.json()["error"] == "invalid_grant"


async def test_non_ascii_admin_key_is_refused_not_crashed(settings: Settings) -> None:
    async with inprocess(dataclasses.replace(settings, admin_key="the-key")) as graph:
        response = await graph.admin("GET", "/info", headers={"X-Graphattach-Admin-Key": "clé".encode()})
        assert_graph_error(response, 403)
        ok = await graph.admin("GET", "/info", headers={"X-Graphattach-Admin-Key": "the-key"})
        assert ok.status_code == 200


@pytest.mark.parametrize(
    "content_type",
    ["text/plain\r\nX-Injected: 1", "text/plain\nx", "text/plain; name=\u65e5\u672c", "a/" + "b" * 100_000, "\x00"],
    ids=["crlf", "lf", "non-latin-1", "100k", "nul"],
)
async def test_a_content_type_that_cannot_be_a_header_is_refused(graph: Graph, content_type: str) -> None:
    base = f"/me/messages/{(await new_message(graph))['id']}"
    response = await graph.post(f"{base}/attachments", json=file_payload("a.txt", contentType=content_type))
    assert_graph_error(response, 400)
    listed = await graph.get(f"{base}/attachments")
    assert listed.status_code == 200 and listed.json()["value"] == []


async def test_a_stored_unsafe_content_type_stays_readable(inprocess_graph: Graph) -> None:
    """Records written before the check (or by another tool) are still served, with a safe type."""
    graph = inprocess_graph
    base = f"/me/messages/{(await new_message(graph))['id']}"
    created = (await graph.post(f"{base}/attachments", json=file_payload("a.txt", b"hello"))).json()
    user = await graph.ctx.metadata.get_user_by_upn(ADELE)
    stored = await graph.ctx.metadata.get_attachment(user.id, created["id"].split("/")[-1], created["id"])
    if stored is None:  # the attachment id is the key of the record; find it by listing
        items, _ = await graph.ctx.metadata.list_items(user.id, "message", None)
        for item in items:
            for attachment in await graph.ctx.metadata.list_attachments(user.id, item.id):
                if attachment.id == created["id"]:
                    stored = attachment
    assert stored is not None
    freed = await graph.ctx.metadata.delete_attachment(user.id, stored.item_id, stored.id)
    assert freed == [stored.blob_key]
    stored.content_type = "text/plain\r\nX-Injected: 1\u65e5"
    await graph.ctx.metadata.add_attachment(stored)
    value = await graph.get(f"{base}/attachments/{created['id']}/$value")
    assert value.status_code == 200, value.text
    assert value.content == b"hello"
    assert "x-injected" not in value.headers
    assert "\r" not in value.headers["content-type"] and "\n" not in value.headers["content-type"]


async def test_deeply_nested_json_is_a_400(graph: Graph) -> None:
    base = f"/me/messages/{(await new_message(graph))['id']}"
    for depth in (950, 1000, 1023, 5000):
        body = '{"@odata.type": "#microsoft.graph.fileAttachment", "name": "a", "x": ' + "[" * depth + "]" * depth + "}"
        response = await graph.post(
            f"{base}/attachments", content=body.encode(), headers={"Content-Type": "application/json"}
        )
        assert_graph_error(response, 400)


@pytest.mark.parametrize(
    "expression",
    [
        "(" * 500 + "isRead eq true" + ")" * 500,
        " or ".join(["isRead eq true"] * 2000),
        " and ".join(["isRead eq true"] * 2000),
        "not " * 2000 + "isRead",
    ],
    ids=["500-parentheses", "2000-or", "2000-and", "2000-not"],
)
async def test_pathological_filters_are_a_400(graph: Graph, expression: str) -> None:
    response = await graph.get("/me/messages", params={"$filter": expression})
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        assert_graph_error(response, 400)


async def test_a_lone_surrogate_in_a_name_is_a_400(graph: Graph) -> None:
    base = f"/me/messages/{(await new_message(graph))['id']}"
    body = b'{"@odata.type": "#microsoft.graph.fileAttachment", "name": "\\ud800x", "contentBytes": "aGk="}'
    response = await graph.post(f"{base}/attachments", content=body, headers={"Content-Type": "application/json"})
    assert_graph_error(response, 400)
    subject = b'{"subject": "\\udfffx"}'
    created = await graph.post("/me/messages", content=subject, headers={"Content-Type": "application/json"})
    assert_graph_error(created, 400)


@pytest.mark.parametrize(
    "body",
    [
        {"advanceSeconds": 1e308},
        {"advanceSeconds": 10**30},
        {"advanceSeconds": True},
        {"advanceSeconds": -1},
        {"advanceSeconds": "60"},
    ],
    ids=["1e308", "10**30", "true", "negative", "string"],
)
async def test_bad_clock_moves_are_400_and_move_nothing(graph: Graph, body: dict[str, Any]) -> None:
    before = (await graph.admin("GET", "/clock")).json()["offsetSeconds"]
    response = await graph.admin("POST", "/clock", json=body)
    assert_graph_error(response, 400)
    assert (await graph.admin("GET", "/clock")).json()["offsetSeconds"] == before


def _new_upn() -> str:
    return f"u{uuid.uuid4().hex[:12]}@contoso.onmicrosoft.com"


@pytest.mark.parametrize(
    "extra",
    [
        {"maxMessageSize": 2**63},
        {"maxMessageSize": True},
        {"maxMessageSize": 0},
        {"maxMessageSize": 1.5},
        {"id": {"x": 1}},
        {"id": 7},
        {"displayName": ["a", "b"]},
        {"displayName": {"a": 1}},
        {"password": 12},
    ],
    ids=["2**63", "true", "zero", "float", "id-object", "id-number", "name-list", "name-object", "password-number"],
)
async def test_bad_user_properties_are_400_and_create_nothing(graph: Graph, extra: dict[str, Any]) -> None:
    upn = _new_upn()
    response = await graph.admin("POST", "/users", json={"userPrincipalName": upn, **extra})
    assert_graph_error(response, 400)
    users = (await graph.admin("GET", "/users")).json()["value"]
    assert upn not in [u["userPrincipalName"] for u in users]


@pytest.mark.parametrize("extra", [{"maxMessageSize": 2**63}, {"maxMessageSize": True}, {"displayName": ["x"]}])
async def test_bad_user_updates_are_400_and_change_nothing(graph: Graph, extra: dict[str, Any]) -> None:
    upn = _new_upn()
    created = await graph.admin("POST", "/users", json={"userPrincipalName": upn, "maxMessageSize": 1000})
    assert created.status_code == 201, created.text
    response = await graph.admin("PATCH", f"/users/{upn}", json=extra)
    assert_graph_error(response, 400)
    (user,) = [u for u in (await graph.admin("GET", "/users")).json()["value"] if u["userPrincipalName"] == upn]
    assert user["maxMessageSize"] == 1000


async def test_a_duplicate_user_id_is_reported_as_such(graph: Graph) -> None:
    user_id = str(uuid.uuid4())
    first = await graph.admin("POST", "/users", json={"userPrincipalName": _new_upn(), "id": user_id})
    assert first.status_code == 201, first.text
    again = await graph.admin("POST", "/users", json={"userPrincipalName": _new_upn(), "id": user_id})
    error = assert_graph_error(again, 400)
    assert "property id" in error["message"]


async def test_token_lifetime_must_be_a_sane_integer(graph: Graph) -> None:
    for lifetime in (True, 10**30, 0, "60"):
        response = await graph.admin("POST", "/token", json={"user": ADELE, "lifetime": lifetime})
        assert_graph_error(response, 400)


def test_httpx_sends_raw_header_bytes() -> None:
    # the admin-key test above relies on it: httpx passes bytes header values through unchanged
    request = httpx.Request("GET", "http://x/", headers={"k": "é".encode()})
    assert request.headers.raw[-1][1] == "é".encode()


async def test_a_client_that_disconnects_mid_body_is_one_info_line(
    inprocess_graph: Graph, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 14, item 5: it was an unhandled error with a traceback."""
    from graphattach.api.app import build_app

    app = build_app(inprocess_graph.ctx)
    token = await inprocess_graph.token()
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": b'{"subject": "cut', "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1.0/me/messages",
        "raw_path": b"/v1.0/me/messages",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"content-length", b"1000"),
            (b"authorization", f"Bearer {token}".encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8765),
    }
    with caplog.at_level("DEBUG", logger="graphattach"):
        await app(scope, receive, send)
    records = [r for r in caplog.records if r.name.startswith("graphattach")]
    assert [r.levelname for r in records] == ["INFO"]
    assert "disconnected" in records[0].getMessage()
    assert records[0].exc_info is None
