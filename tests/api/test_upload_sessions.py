"""createUploadSession: every URL form, the request body as real clients send it, validation."""

from __future__ import annotations

import re
import uuid
from datetime import datetime

import pytest

from graphattach.domain.models import Folder, Item
from tests.helpers import ADELE, ALEX, Graph, assert_graph_error
from tests.upload_helpers import MiB, collection, create_session, new_item, payload, upload_all

UPLOAD_URL = re.compile(
    r"^http://localhost:\d+/api/gv1\.0/users\('(?P<uid>[0-9a-f-]{36})@(?P<tid>[0-9a-f-]{36})'\)"
    r"/(?P<items>messages|events)\('(?P<item>[A-Za-z0-9_=-]+)'\)"
    r"/AttachmentSessions\('(?P<sid>[A-Za-z0-9_=-]+)'\)\?authtoken=[A-Za-z0-9_.-]+$"
)
DATETIME_7 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$")


@pytest.mark.parametrize("kind", ["message", "event"])
async def test_create_session_answers_201_with_the_documented_shape(graph: Graph, kind: str) -> None:
    item_id = await new_item(graph, kind)
    response = await create_session(graph, item_id, 3_483_322, kind=kind)
    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert list(body) == ["@odata.context", "uploadUrl", "expirationDateTime", "nextExpectedRanges"]
    assert body["@odata.context"] == f"{graph.v1}/$metadata#microsoft.graph.uploadSession"
    assert body["nextExpectedRanges"] == ["0-"]
    assert DATETIME_7.match(body["expirationDateTime"]), body["expirationDateTime"]
    now = await graph.admin("GET", "/clock")
    assert datetime.fromisoformat(body["expirationDateTime"]) > datetime.fromisoformat(now.json()["now"])
    match = UPLOAD_URL.match(body["uploadUrl"])
    assert match, body["uploadUrl"]
    assert match["items"] == collection(kind)
    assert match["item"] == item_id
    me = (await graph.get("/me")).json()
    assert match["uid"] == me["id"]


@pytest.mark.parametrize("key", ["AttachmentItem", "attachmentItem", "ATTACHMENTITEM"])
async def test_parameter_name_is_case_insensitive_and_content_type_optional(graph: Graph, key: str) -> None:
    item_id = await new_item(graph)
    response = await graph.post(
        f"/me/messages/{item_id}/attachments/createUploadSession",
        json={key: {"attachmentType": "file", "name": "big.bin", "size": 4 * MiB}},
    )
    assert response.status_code == 201, response.text
    # the session is usable, and without a contentType the attachment gets the guessed one
    data = payload(4 * MiB, seed=7)
    assert (await upload_all(graph, response.json()["uploadUrl"], data, 2 * MiB)).status_code == 201
    [attachment] = (await graph.get(f"/me/messages/{item_id}/attachments")).json()["value"]
    assert (attachment["name"], attachment["contentType"]) == ("big.bin", "application/octet-stream")
    assert (await graph.get(f"/me/messages/{item_id}/attachments/{attachment['id']}/$value")).content == data


async def test_inline_attachment_properties_and_the_namespaced_action(graph: Graph) -> None:
    item_id = await new_item(graph)
    item = {
        "@odata.type": "#microsoft.graph.attachmentItem",
        "attachmentType": "file",
        "name": "flower.jpg",
        "size": 3 * MiB,
        "contentType": "image/jpeg",
        "isInline": True,
        "contentId": "my_inline_picture",
    }
    response = await graph.post(
        f"/me/messages/{item_id}/attachments/microsoft.graph.createUploadSession", json={"AttachmentItem": item}
    )
    assert response.status_code == 201, response.text
    # the inline properties reach the attachment the session creates
    data = payload(3 * MiB, seed=8)
    assert (await upload_all(graph, response.json()["uploadUrl"], data, 2 * MiB)).status_code == 201
    [attachment] = (await graph.get(f"/me/messages/{item_id}/attachments")).json()["value"]
    assert attachment["name"] == "flower.jpg" and attachment["contentType"] == "image/jpeg"
    assert attachment["isInline"] is True and attachment["contentId"] == "my_inline_picture"


@pytest.mark.parametrize("attachment_type", ["item", "reference", "Item"])
async def test_only_file_attachments_take_a_session(graph: Graph, attachment_type: str) -> None:
    item_id = await new_item(graph)
    response = await create_session(
        graph, item_id, 0, item={"attachmentType": attachment_type, "name": "x", "size": 3 * MiB}
    )
    error = assert_graph_error(response, 405, "ErrorAttachmentSessionIsSupportedOnlyForFileAttachments")
    assert error["message"] == (
        "Unsupported Attachment type specified. Only File attachments can be uploaded using an Upload Session."
    )


async def test_size_window_is_2_mib_to_150_mib(graph: Graph) -> None:
    item_id = await new_item(graph)
    assert (await create_session(graph, item_id, 2 * MiB)).status_code == 201
    assert (await create_session(graph, item_id, 150 * MiB)).status_code == 201
    below = await create_session(graph, item_id, 2 * MiB - 1)
    assert_graph_error(below, 400, "ErrorAttachmentSizeShouldNotBeLessThanMinimumSize")
    above = await create_session(graph, item_id, 150 * MiB + 1)
    error = assert_graph_error(above, 400, "ErrorMessageSizeExceeded")
    assert "innerError" not in error  # Exchange's own error
    assert error["message"] == "The message exceeds the maximum supported size."


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"AttachmentItem": None},
        {"AttachmentItem": "file"},
        {"AttachmentItem": {"name": "x", "size": 3 * MiB}},
        {"AttachmentItem": {"attachmentType": "folder", "name": "x", "size": 3 * MiB}},
        {"AttachmentItem": {"attachmentType": "file", "size": 3 * MiB}},
        {"AttachmentItem": {"attachmentType": "file", "name": "", "size": 3 * MiB}},
        {"AttachmentItem": {"attachmentType": "file", "name": "x"}},
        {"AttachmentItem": {"attachmentType": "file", "name": "x", "size": "3145728"}},
        {"AttachmentItem": {"attachmentType": "file", "name": "x", "size": 3.5}},
        {"AttachmentItem": {"attachmentType": "file", "name": "x", "size": 3 * MiB, "isInline": "yes"}},
        {"AttachmentItem": {"attachmentType": "file", "name": "x", "size": 3 * MiB, "colour": "red"}},
        {"AttachmentItem": {"attachmentType": "file", "name": "x", "size": 3 * MiB}, "extra": 1},
    ],
)
async def test_invalid_bodies_are_400(graph: Graph, body: dict[str, object]) -> None:
    item_id = await new_item(graph)
    response = await graph.post(f"/me/messages/{item_id}/attachments/createUploadSession", json=body)
    assert_graph_error(response, 400)


async def test_delegated_token_on_another_users_mailbox_is_403(graph: Graph) -> None:
    item_id = await new_item(graph, user=ALEX)
    # Alex may; Adele, signed in, may not touch Alex's item (Outlook's known issue for this action)
    assert (await create_session(graph, item_id, 3 * MiB, user=ALEX, token=await graph.token(ALEX))).status_code == 201
    response = await create_session(graph, item_id, 3 * MiB, user=ALEX)
    assert_graph_error(response, 403, "ErrorAccessDenied")


async def test_application_permission_and_scopes(graph: Graph) -> None:
    message_id = await new_item(graph)
    event_id = await new_item(graph, "event")
    app = await create_session(graph, message_id, 3 * MiB, app=True, roles=["Mail.ReadWrite"])
    assert app.status_code == 201, app.text
    read_only = await create_session(graph, message_id, 3 * MiB, scopes=["Mail.Read"])
    assert_graph_error(read_only, 403, "ErrorAccessDenied")
    mail_scope_on_event = await create_session(graph, event_id, 3 * MiB, kind="event", scopes=["Mail.ReadWrite"])
    assert_graph_error(mail_scope_on_event, 403, "ErrorAccessDenied")
    calendar_scope = await create_session(graph, event_id, 3 * MiB, kind="event", scopes=["Calendars.ReadWrite"])
    assert calendar_scope.status_code == 201, calendar_scope.text


async def test_unknown_item_is_404(graph: Graph) -> None:
    response = await create_session(graph, "AAMkAGI2TG93AAA=", 3 * MiB)
    assert_graph_error(response, 404, "ErrorItemNotFound")
    event = await create_session(graph, await new_item(graph), 3 * MiB, kind="event")  # a message id as event
    assert_graph_error(event, 404, "ErrorItemNotFound")


async def test_every_url_form_of_the_attachments_collection(inprocess_graph: Graph) -> None:
    graph = inprocess_graph
    ctx = graph.ctx
    me = await ctx.metadata.get_user_by_upn(ADELE)
    drafts = await ctx.metadata.get_well_known_folder(me.id, "mail", "drafts")
    child = Folder(
        id=f"AAMkAGNoaWxk{uuid.uuid4().hex}=",
        user_id=me.id,
        kind="mail",
        display_name="C",
        parent_id=drafts.id,
        created=ctx.clock.now(),
    )
    await ctx.metadata.add_folder(child)
    now = ctx.clock.now()
    nested = Item(
        id=f"AAMkAG5lc3Q{uuid.uuid4().hex}=",
        user_id=me.id,
        kind="message",
        folder_id=child.id,
        created=now,
        last_modified=now,
    )
    await ctx.metadata.add_item(nested)
    calendar = await ctx.metadata.get_well_known_folder(me.id, "calendar", "calendar")
    message_id = await new_item(graph)
    event_id = await new_item(graph, "event")
    forms = [
        f"/me/messages/{message_id}",
        f"/users/{ADELE}/messages/{message_id}",
        f"/users/{me.id}/messages('{message_id}')",
        f"/me/mailFolders/drafts/messages/{message_id}",
        f"/me/mailFolders/{drafts.id}/messages/{message_id}",
        f"/me/mailFolders/drafts/childFolders/{child.id}/messages/{nested.id}",
        f"/users/{ADELE}/mailFolders/{drafts.id}/childFolders/{child.id}/messages/{nested.id}",
        f"/me/events/{event_id}",
        f"/users/{ADELE}/events/{event_id}",
        f"/me/calendar/events/{event_id}",
        f"/me/calendars/{calendar.id}/events/{event_id}",
        f"/me/calendarGroups/{calendar.parent_id}/calendars/{calendar.id}/events/{event_id}",
        f"/users/{ADELE}/calendarGroups/{calendar.parent_id}/calendars/{calendar.id}/events/{event_id}",
    ]
    for form in forms:
        for version in ("v1.0", "beta"):
            for action in ("createUploadSession", "microsoft.graph.createUploadSession"):
                response = await graph.post(
                    f"{form}/attachments/{action}",
                    version=version,
                    json={"AttachmentItem": {"attachmentType": "file", "name": "a.bin", "size": 3 * MiB}},
                )
                assert response.status_code == 201, (form, version, action, response.text)
                assert response.json()["@odata.context"].startswith(f"{graph.root}/{version}/$metadata#")
    # an item through a folder it is not in
    wrong = await graph.post(
        f"/me/mailFolders/inbox/messages/{message_id}/attachments/createUploadSession",
        json={"AttachmentItem": {"attachmentType": "file", "name": "a.bin", "size": 3 * MiB}},
    )
    assert_graph_error(wrong, 404, "ErrorItemNotFound")
