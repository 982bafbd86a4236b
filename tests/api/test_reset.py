"""``POST /_graphattach/reset``: everything back to the seeded state, demo tenant included.

These tests run on a server of their own (in-process, on in-memory stores and on SQLite + files):
the session's shared server process must never be reset under the other tests.
"""

from __future__ import annotations

import base64
import dataclasses
from pathlib import Path
from typing import Any

from graphattach.composition import context_for
from graphattach.services import tenant
from graphattach.settings import Settings
from tests.conftest import inprocess
from tests.helpers import ADELE, ALEX, MEGAN, Graph


async def _state(graph: Graph) -> dict[str, Any]:
    """Users with their ids, and Adele's folders and calendars with theirs."""
    users = (await graph.admin("GET", "/users")).json()["value"]
    folders = (await graph.get("/me/mailFolders?$top=50")).json()["value"]
    calendars = (await graph.get("/me/calendars")).json()["value"]
    return {
        "users": sorted((u["userPrincipalName"], u["id"]) for u in users),
        "folders": sorted((f["displayName"], f["id"]) for f in folders),
        "calendars": sorted((c["name"], c["id"]) for c in calendars),
    }


async def _make_a_mess(graph: Graph) -> None:
    draft = await graph.post("/me/messages", json={"subject": "before the reset"})
    assert draft.status_code == 201, draft.text
    attach = await graph.post(
        f"/me/messages/{draft.json()['id']}/attachments",
        json={
            "@odata.type": "#microsoft.graph.fileAttachment",
            "name": "a.txt",
            "contentBytes": base64.b64encode(b"hello").decode(),
        },
    )
    assert attach.status_code == 201, attach.text
    session = await graph.post(
        f"/me/messages/{draft.json()['id']}/attachments/createUploadSession",
        json={"AttachmentItem": {"attachmentType": "file", "name": "big.bin", "size": 5_000_000}},
    )
    assert session.status_code == 201, session.text
    assert (await graph.post("/me/mailFolders", json={"displayName": "Projects"})).status_code == 201
    added = await graph.admin("POST", "/users", json={"userPrincipalName": "zoe@contoso.onmicrosoft.com"})
    assert added.status_code == 201
    assert (await graph.admin("PATCH", f"/users/{ALEX}", json={"displayName": "Somebody Else"})).status_code == 200
    assert (await graph.admin("POST", "/clock", json={"advanceSeconds": 7200})).status_code == 200


async def _assert_reset_restores(graph: Graph) -> None:
    seeded = await _state(graph)
    assert [upn for upn, _ in seeded["users"]] == [ADELE, ALEX, MEGAN]
    await _make_a_mess(graph)
    assert len((await graph.admin("GET", "/users")).json()["value"]) == 4

    reset = await graph.admin("POST", "/reset")
    assert reset.status_code == 204, reset.text

    # The demo tenant is back, with the same ids: tokens minted before the reset still work.
    assert await _state(graph) == seeded
    users = {u["userPrincipalName"]: u for u in (await graph.admin("GET", "/users")).json()["value"]}
    assert users[ALEX]["displayName"] == "Alex Wilber"
    assert (await graph.get("/me/messages")).json()["value"] == []
    assert (await graph.get("/me/events")).json()["value"] == []
    clock = (await graph.admin("GET", "/clock")).json()
    assert clock["offsetSeconds"] == 0
    # and a fresh token for every demo user works, as on first start
    graph.forget_tokens()
    for upn in (ADELE, ALEX, MEGAN):
        me = await graph.get("/me", user=upn)
        assert me.status_code == 200 and me.json()["userPrincipalName"] == upn


async def test_reset_restores_the_demo_tenant_in_memory(settings: Settings) -> None:
    async with inprocess(settings) as graph:
        await _assert_reset_restores(graph)
        # twice in a row is the same state again
        before = await _state(graph)
        assert (await graph.admin("POST", "/reset")).status_code == 204
        assert await _state(graph) == before


async def test_in_memory_a_reset_restores_the_copy_taken_after_seeding() -> None:
    """In memory, a reset unpickles the seeded stores; the state is the one seeding again gives.
    (The in-memory stores whatever stack the suite runs on: they are what this is about.)"""
    async with inprocess(Settings(in_memory=True, sweep_interval=0)) as graph:
        assert graph.ctx.seeded_checkpoint is not None  # taken when the stores were first seeded
        await _make_a_mess(graph)
        assert (await graph.admin("POST", "/reset")).status_code == 204
        restored = await _state(graph)
        everything = [u.id for u in await graph.ctx.metadata.list_users()]
        graph.ctx.seeded_checkpoint = None  # the slow way: empty the stores and seed again
        await _make_a_mess(graph)
        assert (await graph.admin("POST", "/reset")).status_code == 204
        assert await _state(graph) == restored
        assert [u.id for u in await graph.ctx.metadata.list_users()] == everything
        assert graph.ctx.seeded_checkpoint is not None  # and the copy is taken again


async def test_reset_restores_the_demo_tenant_on_sqlite_and_files(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", sweep_interval=0)
    async with inprocess(settings) as graph:
        await _assert_reset_restores(graph)
        seeded = await _state(graph)
        assert not any((tmp_path / "data" / "blobs").rglob("*.bin"))
    # a restart on the same data keeps the restored tenant (the bug: users were gone for good)
    async with inprocess(settings) as graph:
        assert await _state(graph) == seeded


async def test_the_seeded_ids_are_the_same_in_every_process_of_a_store(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", sweep_interval=0)
    async with context_for(settings) as ctx:
        first = sorted((u.user_principal_name, u.id) for u in await ctx.metadata.list_users())
        await tenant.reset(ctx)
        assert sorted((u.user_principal_name, u.id) for u in await ctx.metadata.list_users()) == first
    # --seed N gives the same tenant and users in two different stores
    seeded = dataclasses.replace(settings, seed=7)
    results = []
    for name in ("one", "two"):
        async with context_for(dataclasses.replace(seeded, data_dir=tmp_path / name)) as ctx:
            users = sorted((u.user_principal_name, u.id) for u in await ctx.metadata.list_users())
            results.append((ctx.tenant_id, users))
    assert results[0] == results[1]
    assert results[0][1] != first


async def test_reset_without_the_demo_tenant_leaves_no_users(settings: Settings) -> None:
    async with inprocess(dataclasses.replace(settings, demo_tenant=False)) as graph:
        assert (await graph.admin("GET", "/users")).json()["value"] == []
        await graph.admin("POST", "/users", json={"userPrincipalName": "zoe@contoso.onmicrosoft.com"})
        assert (await graph.admin("POST", "/reset")).status_code == 204
        assert (await graph.admin("GET", "/users")).json()["value"] == []


async def test_reset_runs_the_hooks_of_in_process_state(settings: Settings) -> None:
    async with inprocess(settings) as graph:
        called: list[str] = []

        async def async_hook() -> None:
            called.append("async")

        graph.ctx.reset_hooks.extend([lambda: called.append("sync"), async_hook])
        assert (await graph.admin("POST", "/reset")).status_code == 204
        assert called == ["sync", "async"]


async def test_reset_is_only_a_post(settings: Settings) -> None:
    async with inprocess(settings) as graph:
        response = await graph.admin("GET", "/reset")
        assert response.status_code == 405
        assert response.json()["error"]["code"] == "Request_BadRequest"
