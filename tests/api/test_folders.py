"""Mail folders: list, get by id or well-known name, create, rename, delete, childFolders at any depth."""

from __future__ import annotations

import pytest

from tests.api.test_messages import new_folder, unique
from tests.helpers import ALEX, Graph, assert_graph_error

FOLDER_KEYS = [
    "id",
    "displayName",
    "parentFolderId",
    "childFolderCount",
    "unreadItemCount",
    "totalItemCount",
    "isHidden",
]


async def test_top_level_folders_are_children_of_the_root(graph: Graph) -> None:
    root = (await graph.get("/me/mailFolders/msgfolderroot")).json()
    body = (await graph.get("/me/mailFolders?$top=100&$count=true")).json()
    names = {f["displayName"] for f in body["value"]}
    assert {"Inbox", "Drafts", "Sent Items", "Deleted Items", "Junk Email", "Archive", "Outbox"} <= names
    assert all(f["parentFolderId"] == root["id"] for f in body["value"])
    assert body["@odata.count"] == len(body["value"])
    me = (await graph.get("/me")).json()
    assert body["@odata.context"] == f"{graph.v1}/$metadata#users('{me['id']}')/mailFolders"
    assert list(body["value"][0]) == FOLDER_KEYS


@pytest.mark.parametrize(
    ("name", "display"),
    [
        ("inbox", "Inbox"),
        ("Drafts", "Drafts"),
        ("sentitems", "Sent Items"),
        ("deleteditems", "Deleted Items"),
        ("junkemail", "Junk Email"),
        ("archive", "Archive"),
        ("outbox", "Outbox"),
        ("msgfolderroot", "Top of Information Store"),
    ],
)
async def test_well_known_names(graph: Graph, name: str, display: str) -> None:
    response = await graph.get(f"/me/mailFolders/{name}")
    assert response.status_code == 200
    folder = response.json()
    assert folder["displayName"] == display
    assert folder["@odata.context"].endswith("/mailFolders/$entity")
    by_id = (await graph.get(f"/me/mailFolders/{folder['id']}")).json()
    assert by_id["id"] == folder["id"]


async def test_create_get_rename_and_counts(graph: Graph) -> None:
    name = unique("Projects")
    response = await graph.post("/me/mailFolders", json={"displayName": name})
    assert response.status_code == 201, response.text
    folder = response.json()
    root = (await graph.get("/me/mailFolders/msgfolderroot")).json()
    assert folder["parentFolderId"] == root["id"]
    assert folder["displayName"] == name
    assert (folder["childFolderCount"], folder["totalItemCount"], folder["unreadItemCount"]) == (0, 0, 0)
    assert folder["isHidden"] is False
    assert folder["@odata.context"].endswith("/mailFolders/$entity")
    await graph.post(f"/me/mailFolders/{folder['id']}/messages", json={"subject": "a"})
    await graph.post(f"/me/mailFolders/{folder['id']}/messages", json={"subject": "b", "isRead": False})
    child = await graph.post(f"/me/mailFolders/{folder['id']}/childFolders", json={"displayName": "Sub"})
    assert child.status_code == 201
    assert child.json()["parentFolderId"] == folder["id"]
    assert child.json()["@odata.context"].endswith(
        f"/mailFolders('{folder['id'].replace('=', '%3D')}')/childFolders/$entity"
    )
    got = (await graph.get(f"/me/mailFolders/{folder['id']}")).json()
    assert (got["childFolderCount"], got["totalItemCount"], got["unreadItemCount"]) == (1, 2, 1)
    renamed = await graph.patch(f"/me/mailFolders/{folder['id']}", json={"displayName": name + " (old)"})
    assert renamed.status_code == 200
    assert renamed.json()["displayName"] == name + " (old)"
    assert (await graph.get(f"/me/mailFolders/{folder['id']}")).json()["displayName"] == name + " (old)"


async def test_child_folders_at_any_depth(graph: Graph) -> None:
    top = await new_folder(graph)
    chain = [top]
    for _ in range(4):
        chain.append(await new_folder(graph, chain[-1]["id"]))
    path = "/me/mailFolders/" + "/childFolders/".join(f["id"] for f in chain)
    got = await graph.get(path)
    assert got.status_code == 200 and got.json()["id"] == chain[-1]["id"]
    listing = (
        await graph.get("/me/mailFolders/" + "/childFolders/".join(f["id"] for f in chain[:-1]) + "/childFolders")
    ).json()
    assert [f["id"] for f in listing["value"]] == [chain[-1]["id"]]
    # childFolders under the wrong parent
    assert_graph_error(
        await graph.get(f"/me/mailFolders/{top['id']}/childFolders/{chain[2]['id']}"), 404, "ErrorItemNotFound"
    )
    count = await graph.get(f"/me/mailFolders/{top['id']}/childFolders/$count")
    assert count.text == "1"


async def test_child_folder_paging(graph: Graph) -> None:
    parent = await new_folder(graph)
    for _ in range(3):
        await new_folder(graph, parent["id"])
    first = (await graph.get(f"/me/mailFolders/{parent['id']}/childFolders?$top=2")).json()
    assert len(first["value"]) == 2
    second = (await graph.get(first["@odata.nextLink"])).json()
    assert len(second["value"]) == 1 and "@odata.nextLink" not in second


async def test_duplicate_names_conflict_under_the_same_parent(graph: Graph) -> None:
    name = unique("Dup")
    assert (await graph.post("/me/mailFolders", json={"displayName": name})).status_code == 201
    error = assert_graph_error(
        await graph.post("/me/mailFolders", json={"displayName": name.upper()}), 409, "ErrorFolderExists"
    )
    assert error["message"] == "A folder with the specified name already exists."
    # the same name elsewhere is fine
    assert (await graph.post("/me/mailFolders/inbox/childFolders", json={"displayName": name})).status_code == 201
    other = await new_folder(graph)
    assert_graph_error(
        await graph.patch(f"/me/mailFolders/{other['id']}", json={"displayName": name}), 409, "ErrorFolderExists"
    )


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 400, "ErrorInvalidRequest"),
        ({"displayName": ""}, 400, "ErrorInvalidFolderName"),
        ({"displayName": 3}, 400, "RequestBodyRead"),
        ({"displayName": "x", "color": "red"}, 400, "RequestBodyRead"),
        ({"displayName": "x", "totalItemCount": 3}, 400, "ErrorInvalidPropertySet"),
        ({"displayName": "x", "id": "AAMk="}, 400, "ErrorInvalidPropertySet"),
    ],
)
async def test_create_folder_validation(graph: Graph, body: dict, status: int, code: str) -> None:
    before = (await graph.get("/me/mailFolders/$count")).text
    assert_graph_error(await graph.post("/me/mailFolders", json=body), status, code)
    assert (await graph.get("/me/mailFolders/$count")).text == before


async def test_hidden_folders_are_not_listed(graph: Graph) -> None:
    parent = await new_folder(graph)
    hidden = await graph.post(
        f"/me/mailFolders/{parent['id']}/childFolders", json={"displayName": "h", "isHidden": True}
    )
    assert hidden.status_code == 201 and hidden.json()["isHidden"] is True
    listing = (await graph.get(f"/me/mailFolders/{parent['id']}/childFolders")).json()
    assert listing["value"] == []
    assert (await graph.get(f"/me/mailFolders/{hidden.json()['id']}")).status_code == 200
    assert_graph_error(
        await graph.patch(f"/me/mailFolders/{parent['id']}", json={"isHidden": True}), 400, "ErrorInvalidPropertySet"
    )


async def test_delete_custom_folder_with_contents(graph: Graph) -> None:
    parent = await new_folder(graph)
    child = await new_folder(graph, parent["id"])
    message = (await graph.post(f"/me/mailFolders/{child['id']}/messages", json={"subject": "inside"})).json()
    response = await graph.delete(f"/me/mailFolders/{parent['id']}")
    assert response.status_code == 204
    assert_graph_error(await graph.get(f"/me/mailFolders/{parent['id']}"), 404, "ErrorItemNotFound")
    assert_graph_error(await graph.get(f"/me/mailFolders/{child['id']}"), 404, "ErrorItemNotFound")
    assert_graph_error(await graph.get(f"/me/messages/{message['id']}"), 404, "ErrorItemNotFound")


@pytest.mark.parametrize("name", ["inbox", "drafts", "sentitems", "deleteditems", "msgfolderroot"])
async def test_well_known_folders_cannot_be_deleted_or_renamed(graph: Graph, name: str) -> None:
    error = assert_graph_error(await graph.delete(f"/me/mailFolders/{name}"), 403, "ErrorDeleteDistinguishedFolder")
    assert "Distinguished" in error["message"]
    assert_graph_error(
        await graph.patch(f"/me/mailFolders/{name}", json={"displayName": "Mine"}), 403, "ErrorAccessDenied"
    )
    assert (await graph.get(f"/me/mailFolders/{name}")).status_code == 200


async def test_folder_ids_and_permissions(graph: Graph) -> None:
    assert_graph_error(await graph.get("/me/mailFolders/AAMkAGI2TAAA="), 404, "ErrorItemNotFound")
    assert_graph_error(await graph.get("/me/mailFolders/not*an*id"), 400, "ErrorInvalidIdMalformed")
    calendar = (await graph.get("/me/calendar")).json()
    assert_graph_error(await graph.get(f"/me/mailFolders/{calendar['id']}"), 404, "ErrorItemNotFound")
    assert (await graph.get("/me/mailFolders", scopes="Mail.Read")).status_code == 200
    assert_graph_error(
        await graph.post("/me/mailFolders", json={"displayName": "x"}, scopes="Mail.Read"), 403, "ErrorAccessDenied"
    )
    assert_graph_error(await graph.get("/me/mailFolders", scopes="Calendars.Read"), 403, "ErrorAccessDenied")
    assert_graph_error(await graph.get(f"/users/{ALEX}/mailFolders/inbox"), 403, "ErrorAccessDenied")
    app = await graph.get(f"/users/{ALEX}/mailFolders/inbox", app=True)
    assert app.status_code == 200
    assert app.json()["@odata.context"].endswith("users('alex%40contoso.onmicrosoft.com')/mailFolders/$entity")
    created = await graph.post(f"/users/{ALEX}/mailFolders", json={"displayName": unique("app")}, app=True)
    assert created.status_code == 201
    assert (await graph.delete(f"/users/{ALEX}/mailFolders/{created.json()['id']}", app=True)).status_code == 204


async def test_filter_folders(graph: Graph) -> None:
    parent = await new_folder(graph)
    for name in ("Receipts", "Travel", "Taxes"):
        await graph.post(f"/me/mailFolders/{parent['id']}/childFolders", json={"displayName": name})
    body = (
        await graph.get(
            f"/me/mailFolders/{parent['id']}/childFolders?$filter=startswith(displayName,'t')&$orderby=displayName desc"
        )
    ).json()
    assert [f["displayName"] for f in body["value"]] == ["Travel", "Taxes"]
    inbox = (await graph.get("/me/mailFolders?$filter=displayName eq 'inbox'")).json()
    assert [f["displayName"] for f in inbox["value"]] == ["Inbox"]
