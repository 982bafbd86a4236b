"""Delta query on the messages of a folder (https://learn.microsoft.com/graph/delta-query-messages)."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from graphattach.settings import Settings
from tests.api.test_messages import new_folder, unique
from tests.conftest import inprocess
from tests.helpers import ADELE, ALEX, Graph, ServerProcess, assert_graph_error


async def drain(
    graph: Graph, link: str, *, prefer: str | None = None, kind: str = "message", **kwargs: Any
) -> tuple[list[dict], str, int]:
    """Follow nextLinks from ``link``; returns every value, the deltaLink and the number of pages."""
    values: list[dict] = []
    pages = 0
    headers = {"Prefer": prefer} if prefer else None
    while True:
        response = await graph.get(link, headers=headers, **kwargs)
        assert response.status_code == 200, response.text
        body = response.json()
        pages += 1
        assert body["@odata.context"].endswith(f"/$metadata#Collection({kind})")
        values += body["value"]
        if "@odata.deltaLink" in body:
            assert "@odata.nextLink" not in body
            return values, body["@odata.deltaLink"], pages
        link = body["@odata.nextLink"]
        assert "$skiptoken=" in link


async def draft_in(graph: Graph, folder: dict, subject: str | None = None, user: str | None = None) -> dict:
    kwargs: dict[str, Any] = {"user": user} if user else {}
    response = await graph.post(
        f"/me/mailFolders/{folder['id']}/messages", json={"subject": subject or unique("d")}, **kwargs
    )
    assert response.status_code == 201
    return response.json()


async def test_first_round_pages_then_later_rounds_return_exactly_the_changes(graph: Graph) -> None:
    folder = await new_folder(graph)
    other = await new_folder(graph)
    drafts = [await draft_in(graph, folder) for _ in range(5)]
    first = await graph.get(
        f"/me/mailFolders/{folder['id']}/messages/delta?$select=subject,isRead",
        headers={"Prefer": "odata.maxpagesize=2"},
    )
    assert first.status_code == 200
    assert first.headers["preference-applied"] == "odata.maxpagesize=2"
    body = first.json()
    assert len(body["value"]) == 2 and "@odata.nextLink" in body
    values, delta_link, pages = await drain(graph, body["@odata.nextLink"], prefer="odata.maxpagesize=2")
    values = body["value"] + values
    assert pages == 2
    assert sorted(v["id"] for v in values) == sorted(d["id"] for d in drafts)
    for value in values:
        assert set(value) == {"@odata.type", "@odata.etag", "id", "subject", "isRead"}
        assert value["@odata.type"] == "#microsoft.graph.message"
    assert "$deltatoken=" in delta_link

    # nothing changed: an empty page and a new deltaLink
    unchanged, delta_link, _ = await drain(graph, delta_link)
    assert unchanged == []

    created = await draft_in(graph, folder)
    edited, deleted, moved, attached, untouched = drafts
    assert (await graph.patch(f"/me/messages/{edited['id']}", json={"subject": "edited"})).status_code == 200
    assert (await graph.delete(f"/me/messages/{deleted['id']}")).status_code == 204
    move = await graph.post(f"/me/messages/{moved['id']}/move", json={"destinationId": other["id"]})
    assert move.status_code == 201
    attachment = {
        "@odata.type": "#microsoft.graph.fileAttachment",
        "name": "a.bin",
        "contentBytes": base64.b64encode(os.urandom(100)).decode(),
    }
    assert (await graph.post(f"/me/messages/{attached['id']}/attachments", json=attachment)).status_code == 201
    await draft_in(graph, other)  # another folder's change is not this folder's

    changes, delta_link, _ = await drain(graph, delta_link, prefer="odata.maxpagesize=3")
    by_id = {c["id"]: c for c in changes}
    assert set(by_id) == {created["id"], edited["id"], deleted["id"], moved["id"], attached["id"]}
    assert untouched["id"] not in by_id
    assert by_id[deleted["id"]] == {
        "@odata.type": "#microsoft.graph.message",
        "id": deleted["id"],
        "@removed": {"reason": "deleted"},
    }
    assert by_id[moved["id"]]["@removed"] == {"reason": "deleted"}
    assert by_id[edited["id"]]["subject"] == "edited"
    assert set(by_id[created["id"]]) == {"@odata.type", "@odata.etag", "id", "subject", "isRead"}  # $select kept

    # removing an attachment is an update too
    listed = (await graph.get(f"/me/messages/{attached['id']}/attachments")).json()["value"]
    assert (await graph.delete(f"/me/messages/{attached['id']}/attachments/{listed[0]['id']}")).status_code == 204
    changes, delta_link, _ = await drain(graph, delta_link)
    assert [c["id"] for c in changes] == [attached["id"]]


async def test_delta_through_users_paths_and_well_known_names(graph: Graph) -> None:
    folder = await new_folder(graph, user=ALEX)
    made = await draft_in(graph, folder, user=ALEX)
    values, link, _ = await drain(
        graph, f"/users/{ALEX}/mailFolders/{folder['id']}/messages/microsoft.graph.delta", user=ALEX
    )
    assert [v["id"] for v in values] == [made["id"]]
    assert "subject" in values[0] and "body" in values[0]  # no $select: the default properties
    app_values, _, _ = await drain(graph, f"/users/{ALEX}/mailFolders/drafts/messages/delta?$select=id", app=True)
    assert app_values == [] or all(set(v) <= {"@odata.type", "@odata.etag", "id"} for v in app_values)


async def test_received_filter(graph: Graph) -> None:
    folder = await new_folder(graph)
    made = await draft_in(graph, folder)
    base = f"/me/mailFolders/{folder['id']}/messages/delta"
    values, _, _ = await drain(graph, f"{base}?$filter=receivedDateTime ge 2000-01-01T00:00:00Z")
    assert [v["id"] for v in values] == [made["id"]]
    values, _, _ = await drain(graph, f"{base}?$filter=receivedDateTime gt 2999-01-01T00:00:00Z")
    assert values == []
    error = assert_graph_error(await graph.get(f"{base}?$filter=subject eq 'x'"), 400, "ErrorInvalidUrlQuery")
    assert "only a value of 'receivedDateTime ge value' is supported" in error["message"]


async def test_bad_tokens_and_options(graph: Graph) -> None:
    folder = await new_folder(graph)
    second = await new_folder(graph)
    await draft_in(graph, folder)
    base = f"/me/mailFolders/{folder['id']}/messages/delta"
    _, link, _ = await drain(graph, base)
    token = link.split("$deltatoken=", 1)[1]
    tampered = token[:5] + ("A" if token[5] != "A" else "B") + token[6:]
    assert_graph_error(await graph.get(f"{base}?$deltatoken={tampered}"), 400, "ErrorInvalidSyncStateData")
    assert_graph_error(await graph.get(f"{base}?$skiptoken=garbage"), 400, "ErrorInvalidSyncStateData")
    assert_graph_error(
        await graph.get(f"/me/mailFolders/{second['id']}/messages/delta?$deltatoken={token}"),
        400,
        "ErrorInvalidSyncStateData",
    )
    # another user with their own folder, and the app path to this user's folder with the token
    alex_folder = await new_folder(graph, user=ALEX)
    assert_graph_error(
        await graph.get(f"/me/mailFolders/{alex_folder['id']}/messages/delta?$deltatoken={token}", user=ALEX),
        400,
        "ErrorInvalidSyncStateData",
    )
    assert_graph_error(await graph.get(f'{base}?$search="x"'), 400, "ErrorInvalidUrlQuery")
    assert_graph_error(await graph.get(f"{base}?$orderby=subject"), 400, "ErrorInvalidUrlQuery")
    assert (await graph.get(f"{base}?$orderby=receivedDateTime desc")).status_code == 200
    assert_graph_error(await graph.get("/me/messages/delta"), 400, "ErrorInvalidUrlQuery")
    assert_graph_error(await graph.get(f"{base}?$select=nope"), 400)
    assert_graph_error(await graph.get(base, scopes="Calendars.Read"), 403)
    assert_graph_error(await graph.get(f"/users/{ALEX}/mailFolders/inbox/messages/delta"), 403)


@pytest.mark.slow
async def test_tokens_survive_a_restart(data_dir: Path) -> None:
    server = ServerProcess(data_dir).start()
    try:
        async with httpx.AsyncClient(timeout=60) as http:
            graph = Graph(http, server.root, "server")
            folder = await new_folder(graph)
            await draft_in(graph, folder)
            _, link, _ = await drain(graph, f"/me/mailFolders/{folder['id']}/messages/delta")
        server.stop()
        server.start()
        async with httpx.AsyncClient(timeout=60) as http:
            graph = Graph(http, server.root, "server")
            later = await draft_in(graph, folder)
            values, _, _ = await drain(graph, link)
            assert [v["id"] for v in values] == [later["id"]]
    finally:
        server.stop()


@pytest.mark.parametrize("store", ["memory", "sqlite"])
async def test_a_token_from_before_a_reset_is_gone(store: str, settings: Settings, tmp_path: Path) -> None:
    """After a reset the change numbers start again: a token of the old state is answered as Graph
    answers one whose sync state is gone (410 SyncStateNotFound, and a Location that starts a new
    full round: delta-query-overview, "Synchronization reset"), never with an empty page."""
    if store == "sqlite":
        settings = Settings(data_dir=tmp_path / "data", sweep_interval=0)
    async with inprocess(settings) as graph:
        base = "/me/mailFolders/inbox/messages/delta"
        for subject in ("one", "two"):
            sent = await graph.post(
                "/me/sendMail",
                json={"message": {"subject": unique(subject), "toRecipients": [{"emailAddress": {"address": ADELE}}]}},
            )
            assert sent.status_code == 202, sent.text
        first = await graph.get(f"{base}?$select=subject", headers={"Prefer": "odata.maxpagesize=1"})
        next_link = first.json()["@odata.nextLink"]
        _, delta_link, _ = await drain(graph, next_link)
        assert (await graph.get(delta_link)).status_code == 200  # valid before the reset

        assert (await graph.admin("POST", "/reset")).status_code == 204
        after = await graph.post("/me/messages", json={"subject": unique("after")})
        moved = await graph.post(f"/me/messages/{after.json()['id']}/move", json={"destinationId": "inbox"})
        assert moved.status_code == 201, moved.text

        for link in (delta_link, next_link):
            response = await graph.get(link)
            error = assert_graph_error(response, 410, "SyncStateNotFound")
            assert "sync state" in error["message"]
            location = response.headers["Location"]
            assert location.startswith(f"{graph.v1}{base}?") and location.endswith("$deltatoken=")
            assert "$select=subject" in location
        values, new_link, _ = await drain(graph, location)
        assert [v["id"] for v in values] == [moved.json()["id"]]
        assert set(values[0]) == {"@odata.type", "@odata.etag", "id", "subject"}
        assert (await graph.get(new_link)).status_code == 200
