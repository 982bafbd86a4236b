"""Move and copy of messages: POST .../messages/{id}/move and .../copy (message-move.md, message-copy.md)."""

from __future__ import annotations

import base64
import os

from tests.api.test_messages import new_folder, unique
from tests.helpers import ADELE, ALEX, Graph, assert_graph_error


async def draft_with_file(graph: Graph, user: str = ADELE, size: int = 3000) -> tuple[dict, bytes]:
    """A draft in Drafts with one file attachment of ``size`` random bytes."""
    content = os.urandom(size)
    draft = (await graph.post(f"/users/{user}/messages", json={"subject": unique("mv")}, user=user)).json()
    response = await graph.post(
        f"/users/{user}/messages/{draft['id']}/attachments",
        json={
            "@odata.type": "#microsoft.graph.fileAttachment",
            "name": "data.bin",
            "contentBytes": base64.b64encode(content).decode(),
        },
        user=user,
    )
    assert response.status_code == 201, response.text
    return draft, content


async def attachment_bytes(graph: Graph, message_id: str, user: str = ADELE) -> list[bytes]:
    listed = (await graph.get(f"/users/{user}/messages/{message_id}/attachments", user=user)).json()["value"]
    out = []
    for attachment in listed:
        response = await graph.get(
            f"/users/{user}/messages/{message_id}/attachments/{attachment['id']}/$value", user=user
        )
        assert response.status_code == 200
        out.append(response.content)
    return out


async def folder_id(graph: Graph, name: str, user: str = ADELE) -> str:
    return str((await graph.get(f"/users/{user}/mailFolders/{name}", user=user)).json()["id"])


async def test_move_to_a_well_known_folder_gives_a_new_id_and_keeps_the_attachments(graph: Graph) -> None:
    draft, content = await draft_with_file(graph)
    response = await graph.post(f"/me/messages/{draft['id']}/move", json={"destinationId": "deleteditems"})
    assert response.status_code == 201, response.text
    moved = response.json()
    me = (await graph.get("/me")).json()
    assert moved["@odata.context"].endswith(f"/$metadata#users('{me['id']}')/messages/$entity")
    assert moved["id"] != draft["id"]
    assert moved["parentFolderId"] == await folder_id(graph, "deleteditems")
    assert moved["subject"] == draft["subject"]
    assert moved["hasAttachments"] is True
    assert moved["internetMessageId"] == draft["internetMessageId"]
    assert_graph_error(await graph.get(f"/me/messages/{draft['id']}"), 404, "ErrorItemNotFound")
    assert await attachment_bytes(graph, moved["id"]) == [content]
    listed = (await graph.get("/me/mailFolders/deleteditems/messages?$top=1000&$select=id")).json()["value"]
    assert moved["id"] in [m["id"] for m in listed]
    drafts = (await graph.get("/me/mailFolders/drafts/messages?$top=1000&$select=id")).json()["value"]
    assert draft["id"] not in [m["id"] for m in drafts]


async def test_move_through_users_and_folder_paths_with_an_app_token(graph: Graph) -> None:
    draft, content = await draft_with_file(graph, user=ALEX)
    target = await new_folder(graph, user=ALEX)
    response = await graph.post(
        f"/users/{ALEX}/mailFolders/drafts/messages/{draft['id']}/microsoft.graph.move",
        json={"DestinationId": target["id"]},  # msgraph-sdk-python's casing
        app=True,
    )
    assert response.status_code == 201, response.text
    moved = response.json()
    assert moved["parentFolderId"] == target["id"]
    assert await attachment_bytes(graph, moved["id"], user=ALEX) == [content]
    # the message is now addressed through its new folder, not the old one
    got = await graph.get(f"/users/{ALEX}/mailFolders/{target['id']}/messages/{moved['id']}", app=True)
    assert got.status_code == 200
    assert_graph_error(
        await graph.get(f"/users/{ALEX}/mailFolders/drafts/messages/{moved['id']}", app=True), 404, "ErrorItemNotFound"
    )


async def test_copy_keeps_the_original_and_the_bytes_survive_either_deletion(graph: Graph) -> None:
    draft, content = await draft_with_file(graph, size=200_000)
    response = await graph.post(f"/me/mailFolders/drafts/messages/{draft['id']}/copy", json={"destinationId": "inbox"})
    assert response.status_code == 201, response.text
    copy = response.json()
    assert copy["id"] != draft["id"]
    assert copy["parentFolderId"] == await folder_id(graph, "inbox")
    assert (await graph.get(f"/me/messages/{draft['id']}")).status_code == 200
    assert await attachment_bytes(graph, copy["id"]) == [content]
    # attachments are separate records: deleting the copy leaves the original's bytes whole
    assert (await graph.delete(f"/me/messages/{copy['id']}")).status_code == 204
    assert await attachment_bytes(graph, draft["id"]) == [content]
    # and the other way round
    second = (await graph.post(f"/me/messages/{draft['id']}/copy", json={"destinationId": "archive"})).json()
    assert (await graph.delete(f"/me/messages/{draft['id']}")).status_code == 204
    assert await attachment_bytes(graph, second["id"]) == [content]


async def test_a_failed_move_changes_nothing(graph: Graph) -> None:
    draft, content = await draft_with_file(graph)
    path = f"/me/messages/{draft['id']}/move"
    assert_graph_error(await graph.post(path, json={}), 400, "ErrorInvalidParameter")
    assert_graph_error(await graph.post(path, json={"destinationId": ""}), 400, "ErrorInvalidParameter")
    assert_graph_error(
        await graph.post(path, json={"destinationId": "no such folder!"}), 400, "ErrorInvalidIdMalformed"
    )
    assert_graph_error(await graph.post(path, json={"destinationId": "AAMkAGI2TAAAAAAAAAA="}), 404, "ErrorItemNotFound")
    # a folder of another mailbox is not a destination
    alex_inbox = await folder_id(graph, "inbox", user=ALEX)
    assert_graph_error(await graph.post(path, json={"destinationId": alex_inbox}), 404, "ErrorItemNotFound")
    assert_graph_error(await graph.post(path, json={"destinationId": 5}), 400, "RequestBodyRead")
    assert_graph_error(await graph.post(path, json={"destinationId": "inbox"}, scopes="Mail.Read"), 403)
    assert_graph_error(await graph.post("/me/messages/AAMkAGI2TAAAAAAAAAA=/move", json={"destinationId": "inbox"}), 404)
    still = (await graph.get(f"/me/messages/{draft['id']}")).json()
    assert still["parentFolderId"] == await folder_id(graph, "drafts")
    assert await attachment_bytes(graph, draft["id"]) == [content]


async def test_move_to_its_own_folder_keeps_it(graph: Graph) -> None:
    draft, _ = await draft_with_file(graph)
    moved = (await graph.post(f"/me/messages/{draft['id']}/move", json={"destinationId": "drafts"})).json()
    assert moved["id"] == draft["id"]
    assert (await graph.get(f"/me/messages/{draft['id']}")).status_code == 200


async def test_moved_received_message_keeps_its_properties(graph: Graph) -> None:
    subject = unique("received")
    sent = await graph.post(
        "/me/sendMail",
        json={"message": {"subject": subject, "toRecipients": [{"emailAddress": {"address": ALEX}}]}},
    )
    assert sent.status_code == 202
    inbox = (await graph.get("/me/mailFolders/inbox/messages?$top=1000", user=ALEX)).json()["value"]
    received = next(m for m in inbox if m["subject"] == subject)
    folder = await new_folder(graph, user=ALEX)
    moved = (
        await graph.post(f"/me/messages/{received['id']}/move", json={"destinationId": folder["id"]}, user=ALEX)
    ).json()
    for key in ("subject", "from", "receivedDateTime", "isRead", "isDraft", "conversationId", "body"):
        assert moved[key] == received[key], key
