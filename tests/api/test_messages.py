"""Messages: create drafts, get, list and page, PATCH, DELETE, on /me and /users/{id|upn}."""

from __future__ import annotations

import uuid

import pytest

from tests.helpers import ADELE, ALEX, Graph, assert_graph_error

MESSAGE_KEYS = [
    "@odata.context",
    "@odata.etag",
    "id",
    "createdDateTime",
    "lastModifiedDateTime",
    "changeKey",
    "categories",
    "receivedDateTime",
    "sentDateTime",
    "hasAttachments",
    "internetMessageId",
    "subject",
    "bodyPreview",
    "importance",
    "parentFolderId",
    "conversationId",
    "conversationIndex",
    "isDeliveryReceiptRequested",
    "isReadReceiptRequested",
    "isRead",
    "isDraft",
    "webLink",
    "inferenceClassification",
    "body",
    "sender",
    "from",
    "toRecipients",
    "ccRecipients",
    "bccRecipients",
    "replyTo",
    "flag",
]


async def find_in_inbox(graph: Graph, user: str, internet_message_id: str) -> dict:
    """The message with this internetMessageId in ``user``'s Inbox (following nextLinks)."""
    link: str | None = "/me/mailFolders/inbox/messages?$top=50"
    while link:
        page = (await graph.get(link, user=user)).json()
        for message in page["value"]:
            if message["internetMessageId"] == internet_message_id:
                return message
        link = page.get("@odata.nextLink")
    raise AssertionError(f"{internet_message_id} is not in {user}'s Inbox")


def unique(prefix: str = "m") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def new_folder(graph: Graph, parent: str | None = None, user: str = ADELE) -> dict:
    path = f"/users/{user}/mailFolders" + (f"/{parent}/childFolders" if parent else "")
    response = await graph.post(path, json={"displayName": unique("folder")}, user=user)
    assert response.status_code == 201, response.text
    return response.json()


async def test_create_draft_lands_in_drafts_with_full_shape(graph: Graph) -> None:
    response = await graph.post(
        "/me/messages",
        json={
            "subject": "Quarterly report",
            "body": {"contentType": "HTML", "content": "<p>Numbers <b>inside</b> &amp; more</p>"},
            "toRecipients": [{"emailAddress": {"address": ALEX}}],
            "ccRecipients": [{"emailAddress": {"address": "carol@example.com", "name": "Carol"}}],
            "importance": "High",
            "categories": ["Blue category"],
        },
    )
    assert response.status_code == 201, response.text
    message = response.json()
    assert list(message) == MESSAGE_KEYS
    me = (await graph.get("/me")).json()
    drafts = (await graph.get("/me/mailFolders/drafts")).json()
    assert message["@odata.context"] == f"{graph.v1}/$metadata#users('{me['id']}')/messages/$entity"
    assert message["@odata.etag"] == f'W/"{message["changeKey"]}"'
    assert response.headers["etag"] == message["@odata.etag"]
    assert message["parentFolderId"] == drafts["id"]
    assert message["isDraft"] is True and message["isRead"] is True
    assert message["subject"] == "Quarterly report"
    assert message["body"] == {"contentType": "html", "content": "<p>Numbers <b>inside</b> &amp; more</p>"}
    assert message["bodyPreview"] == "Numbers inside & more"
    assert message["toRecipients"] == [{"emailAddress": {"name": ALEX, "address": ALEX}}]
    assert message["ccRecipients"] == [{"emailAddress": {"name": "Carol", "address": "carol@example.com"}}]
    assert message["bccRecipients"] == [] and message["replyTo"] == []
    assert message["from"] is None and message["sender"] is None
    assert message["hasAttachments"] is False
    assert message["importance"] == "high"
    assert message["categories"] == ["Blue category"]
    assert message["sentDateTime"] == message["createdDateTime"] == message["receivedDateTime"]
    assert message["createdDateTime"].endswith("Z") and len(message["createdDateTime"]) == 20
    assert message["flag"] == {"flagStatus": "notFlagged"}
    assert message["inferenceClassification"] == "focused"
    assert message["internetMessageId"].startswith("<") and message["internetMessageId"].endswith(">")
    assert "ItemID=" in message["webLink"]


async def test_draft_without_body_has_an_empty_text_body(graph: Graph) -> None:
    message = (await graph.post("/me/messages", json={})).json()
    assert message["body"] == {"contentType": "text", "content": ""}
    assert message["subject"] is None and message["bodyPreview"] == ""


async def test_get_message_on_me_and_users(graph: Graph) -> None:
    created = (await graph.post("/me/messages", json={"subject": "hello"})).json()
    mine = await graph.get(f"/me/messages/{created['id']}")
    assert mine.status_code == 200
    assert mine.json() == created
    by_upn = await graph.get(f"/users/{ADELE}/messages/{created['id']}")
    assert by_upn.status_code == 200
    assert by_upn.json()["@odata.context"].endswith("users('adele%40contoso.onmicrosoft.com')/messages/$entity")
    me = (await graph.get("/me")).json()
    by_id = await graph.get(f"/users/{me['id']}/messages/{created['id']}", app=True)
    assert by_id.json()["id"] == created["id"]
    key_syntax = await graph.get(f"/me/messages('{created['id']}')")
    assert key_syntax.json()["id"] == created["id"]


async def test_create_with_users_path_and_app_token(graph: Graph) -> None:
    response = await graph.post(f"/users/{ALEX}/messages", json={"subject": "from the app"}, app=True)
    assert response.status_code == 201
    message = response.json()
    mine = await graph.get(f"/me/messages/{message['id']}", user=ALEX)
    assert mine.json()["subject"] == "from the app"
    # the draft belongs to Alex's mailbox, not Adele's
    assert_graph_error(await graph.get(f"/me/messages/{message['id']}"), 404, "ErrorItemNotFound")


async def test_create_under_a_folder_path_lands_in_that_folder(graph: Graph) -> None:
    parent = await new_folder(graph)
    child = await new_folder(graph, parent["id"])
    grandchild = await new_folder(graph, child["id"])
    path = f"/me/mailFolders/{parent['id']}/childFolders/{child['id']}/childFolders/{grandchild['id']}/messages"
    response = await graph.post(path, json={"subject": "deep"})
    assert response.status_code == 201, response.text
    message = response.json()
    assert message["parentFolderId"] == grandchild["id"]
    assert message["@odata.context"].endswith(
        f"/mailFolders('{parent['id'].replace('=', '%3D')}')/childFolders('{child['id'].replace('=', '%3D')}')"
        f"/childFolders('{grandchild['id'].replace('=', '%3D')}')/messages/$entity"
    )
    got = await graph.get(f"{path}/{message['id']}")
    assert got.status_code == 200
    listed = (await graph.get(path)).json()
    assert [m["id"] for m in listed["value"]] == [message["id"]]
    inbox = await graph.post("/me/mailFolders/Inbox/messages", json={"subject": "straight to inbox"})
    inbox_id = (await graph.get("/me/mailFolders/inbox")).json()["id"]
    assert inbox.json()["parentFolderId"] == inbox_id


async def test_message_through_the_wrong_folder_is_404(graph: Graph) -> None:
    message = (await graph.post("/me/messages", json={"subject": "in drafts"})).json()
    assert (await graph.get(f"/me/mailFolders/drafts/messages/{message['id']}")).status_code == 200
    assert_graph_error(await graph.get(f"/me/mailFolders/inbox/messages/{message['id']}"), 404, "ErrorItemNotFound")
    # a folder's child addressed under another parent
    parent = await new_folder(graph)
    child = await new_folder(graph, parent["id"])
    assert_graph_error(
        await graph.get(f"/me/mailFolders/inbox/childFolders/{child['id']}/messages"), 404, "ErrorItemNotFound"
    )


async def test_unknown_and_malformed_message_ids(graph: Graph) -> None:
    assert_graph_error(await graph.get("/me/messages/AAMkAGI2TAAA="), 404, "ErrorItemNotFound")
    assert_graph_error(await graph.get("/me/messages/bad!id"), 400, "ErrorInvalidIdMalformed")
    assert_graph_error(await graph.patch("/me/messages/bad!id", json={}), 400, "ErrorInvalidIdMalformed")
    assert_graph_error(await graph.delete("/me/messages/AAMkAGI2TAAA="), 404, "ErrorItemNotFound")
    assert_graph_error(await graph.get("/me/mailFolders/AAMkAGI2TAAA=/messages"), 404, "ErrorItemNotFound")
    assert_graph_error(await graph.post("/me/mailFolders/no!pe/messages", json={}), 400, "ErrorInvalidIdMalformed")
    # an event id is not a message
    event = await graph.post(
        "/me/events",
        json={
            "start": {"dateTime": "2030-01-01T10:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2030-01-01T11:00:00", "timeZone": "UTC"},
        },
    )
    assert_graph_error(await graph.get(f"/me/messages/{event.json()['id']}"), 404, "ErrorItemNotFound")


# ---- validation -----------------------------------------------------------------------------------------


async def count_drafts(graph: Graph) -> int:
    response = await graph.get("/me/mailFolders/drafts/messages/$count")
    assert response.status_code == 200
    return int(response.text)


@pytest.mark.parametrize(
    ("body", "code", "named"),
    [
        ({"subject": "x", "colour": "blue"}, "RequestBodyRead", "colour"),
        ({"subject": 5}, "RequestBodyRead", "subject"),
        ({"isRead": "yes"}, "RequestBodyRead", "isRead"),
        ({"toRecipients": "alex@contoso.onmicrosoft.com"}, "RequestBodyRead", "toRecipients"),
        ({"toRecipients": [{"address": "alex@contoso.onmicrosoft.com"}]}, "RequestBodyRead", "address"),
        ({"toRecipients": [{"emailAddress": {"name": "no address"}}]}, "RequestBodyRead", "toRecipients[0]"),
        ({"toRecipients": [{"emailAddress": {"address": 7}}]}, "RequestBodyRead", "address"),
        ({"body": {"contentType": "markdown", "content": "x"}}, "RequestBodyRead", "markdown"),
        ({"body": "plain"}, "RequestBodyRead", "body"),
        ({"importance": "urgent"}, "RequestBodyRead", "urgent"),
        ({"categories": "one"}, "RequestBodyRead", "categories"),
        ({"flag": {"flagStatus": "maybe"}}, "RequestBodyRead", "maybe"),
        ({"id": "AAMkAGI2TAAA="}, "ErrorInvalidPropertySet", "id"),
        ({"createdDateTime": "2020-01-01T00:00:00Z"}, "ErrorInvalidPropertySet", "createdDateTime"),
        ({"isDraft": False}, "ErrorInvalidPropertySet", "isDraft"),
        ({"@odata.type": "#microsoft.graph.event"}, "RequestBodyRead", "microsoft.graph.event"),
        ({"attachments": "nope"}, "RequestBodyRead", "attachments"),
    ],
)
async def test_create_rejects_bad_bodies_and_stores_nothing(graph: Graph, body: dict, code: str, named: str) -> None:
    before = await count_drafts(graph)
    error = assert_graph_error(await graph.post("/me/messages", json=body), 400, code)
    assert named in error["message"]
    assert await count_drafts(graph) == before


async def test_create_rejects_non_object_and_invalid_json(graph: Graph) -> None:
    assert_graph_error(await graph.post("/me/messages", json=[1, 2]), 400, "BadRequest")
    bad = await graph.post("/me/messages", content=b"{not json", headers={"Content-Type": "application/json"})
    assert_graph_error(bad, 400, "BadRequest")


@pytest.mark.parametrize(
    "raw",
    [
        b'{"subject": "a", "subject": "b"}',
        b'{"subject": "a", "Subject": "b"}',
        b'{"body": {"content": "a", "Content": "b"}}',
    ],
)
async def test_duplicate_properties_are_refused_as_on_attachments(graph: Graph, raw: bytes) -> None:
    """One JSON reader for every body: OData refuses a property given twice (docs/fidelity.md)."""
    before = await count_drafts(graph)
    response = await graph.post("/me/messages", content=raw, headers={"Content-Type": "application/json"})
    error = assert_graph_error(response, 400, "BadRequest")
    assert "Multiple properties with the name" in error["message"]
    assert await count_drafts(graph) == before


async def test_odata_type_and_annotations_are_accepted(graph: Graph) -> None:
    response = await graph.post(
        "/me/messages",
        json={"@odata.type": "#microsoft.graph.message", "@odata.etag": 'W/"x"', "subject": "typed"},
    )
    assert response.status_code == 201
    assert response.json()["subject"] == "typed"


async def test_property_names_match_case_insensitively(graph: Graph) -> None:
    response = await graph.post("/me/messages", json={"Subject": "cased", "ToRecipients": []})
    assert response.status_code == 201
    assert response.json()["subject"] == "cased"


# ---- list and paging ---------------------------------------------------------------------------------


async def test_list_is_newest_first_with_paging_links_that_work(graph: Graph) -> None:
    folder = await new_folder(graph)
    base = f"/me/mailFolders/{folder['id']}/messages"
    ids = []
    for i in range(5):
        response = await graph.post(base, json={"subject": f"n{i}"})
        ids.append(response.json()["id"])
    first = await graph.get(f"{base}?$top=2&$count=true")
    assert first.status_code == 200
    body = first.json()
    assert body["@odata.count"] == 5
    assert body["@odata.context"].endswith(f"/mailFolders('{folder['id'].replace('=', '%3D')}')/messages")
    seen = [m["id"] for m in body["value"]]
    link = body["@odata.nextLink"]
    pages = 1
    while link:
        assert link.startswith(graph.root)
        page = (await graph.get(link)).json()
        assert page["@odata.count"] == 5
        seen += [m["id"] for m in page["value"]]
        link = page.get("@odata.nextLink")
        pages += 1
    assert pages == 3
    assert seen == list(reversed(ids))


async def test_default_page_size_is_ten(graph: Graph) -> None:
    folder = await new_folder(graph)
    base = f"/me/mailFolders/{folder['id']}/messages"
    for i in range(12):
        await graph.post(base, json={"subject": f"p{i}"})
    body = (await graph.get(base)).json()
    assert len(body["value"]) == 10
    assert "@odata.count" not in body
    rest = (await graph.get(body["@odata.nextLink"])).json()
    assert len(rest["value"]) == 2 and "@odata.nextLink" not in rest
    skipped = (await graph.get(f"{base}?$skip=11")).json()
    assert [m["subject"] for m in skipped["value"]] == ["p0"]


async def test_list_select_keeps_id_and_etag(graph: Graph) -> None:
    folder = await new_folder(graph)
    base = f"/me/mailFolders/{folder['id']}/messages"
    await graph.post(base, json={"subject": "pick me"})
    body = (await graph.get(f"{base}?$select=subject,hasAttachments")).json()
    assert set(body["value"][0]) == {"@odata.etag", "id", "subject", "hasAttachments"}
    one = await graph.get(f"/me/messages/{body['value'][0]['id']}?$select=subject")
    assert set(one.json()) == {"@odata.context", "@odata.etag", "id", "subject"}
    assert_graph_error(await graph.get(f"{base}?$select=nonsense"), 400, "BadRequest")


async def test_me_messages_spans_folders(graph: Graph) -> None:
    folder = await new_folder(graph)
    message = (await graph.post(f"/me/mailFolders/{folder['id']}/messages", json={"subject": "anywhere"})).json()
    body = (await graph.get("/me/messages?$top=1")).json()
    assert body["value"][0]["id"] == message["id"]


async def test_top_above_limit_and_negative_skip(graph: Graph) -> None:
    error = assert_graph_error(await graph.get("/me/messages?$top=1001"), 400, "BadRequest")
    assert "1000" in error["message"]
    assert_graph_error(await graph.get("/me/messages?$skip=-1"), 400, "BadRequest")


async def test_search_is_refused_where_graph_has_none(graph: Graph) -> None:
    # messages take $search (tests/api/test_search.py); mail folders do not
    error = assert_graph_error(await graph.get('/me/mailFolders?$search="report"'), 400, "BadRequest")
    assert "$search" in error["message"]


async def test_filter_and_orderby(graph: Graph) -> None:
    folder = await new_folder(graph)
    base = f"/me/mailFolders/{folder['id']}/messages"
    specs = [
        ("Alpha report", False, "high", [ALEX]),
        ("beta notes", True, "normal", ["carol@example.com"]),
        ("Gamma REPORT", False, "low", ["dave@example.com", ALEX]),
    ]
    for subject, read, importance, recipients in specs:
        body = {
            "subject": subject,
            "isRead": read,
            "importance": importance,
            "toRecipients": [{"emailAddress": {"address": a}} for a in recipients],
        }
        assert (await graph.post(base, json=body)).status_code == 201

    async def subjects(query: str) -> list[str]:
        response = await graph.get(f"{base}?{query}")
        assert response.status_code == 200, response.text
        return [m["subject"] for m in response.json()["value"]]

    assert await subjects("$filter=isRead eq false&$orderby=subject") == ["Alpha report", "Gamma REPORT"]
    assert await subjects("$filter=contains(subject, 'report') and importance ne 'high'") == ["Gamma REPORT"]
    assert await subjects(f"$filter=toRecipients/any(r: r/emailAddress/address eq '{ALEX}')&$orderby=subject desc") == [
        "Gamma REPORT",
        "Alpha report",
    ]
    assert await subjects("$filter=not (isRead eq false) or startswith(subject,'gam')&$orderby=subject") == [
        "beta notes",
        "Gamma REPORT",
    ]
    assert await subjects(
        "$filter=createdDateTime ge 2000-01-01T00:00:00Z and hasAttachments eq false&$orderby=subject"
    ) == [
        "Alpha report",
        "beta notes",
        "Gamma REPORT",
    ]
    paged = (await graph.get(f"{base}?$filter=isDraft eq true&$orderby=subject&$top=2&$count=true")).json()
    assert paged["@odata.count"] == 3 and [m["subject"] for m in paged["value"]] == ["Alpha report", "beta notes"]
    rest = (await graph.get(paged["@odata.nextLink"])).json()
    assert [m["subject"] for m in rest["value"]] == ["Gamma REPORT"]
    error = assert_graph_error(await graph.get(f"{base}?$filter=colour eq 'red'"), 400, "BadRequest")
    assert "colour" in error["message"]
    assert_graph_error(await graph.get(f"{base}?$filter=subject eq"), 400, "BadRequest")
    assert_graph_error(await graph.get(f"{base}?$orderby=subject sideways"), 400, "BadRequest")


async def test_count_endpoint_is_plain_text(graph: Graph) -> None:
    folder = await new_folder(graph)
    await graph.post(f"/me/mailFolders/{folder['id']}/messages", json={})
    response = await graph.get(f"/me/mailFolders/{folder['id']}/messages/$count")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == "1"


async def test_expand_attachments(graph: Graph) -> None:
    message = (await graph.post("/me/messages", json={"subject": "expand"})).json()
    response = await graph.get(f"/me/messages/{message['id']}?$expand=attachments")
    assert response.status_code == 200
    assert isinstance(response.json()["attachments"], list)
    assert_graph_error(await graph.get(f"/me/messages/{message['id']}?$expand=nope"), 400, "BadRequest")


# ---- PATCH ---------------------------------------------------------------------------------------------------


async def test_patch_a_draft(graph: Graph) -> None:
    message = (await graph.post("/me/messages", json={"subject": "before"})).json()
    response = await graph.patch(
        f"/me/messages/{message['id']}",
        json={
            "subject": "after",
            "body": {"contentType": "text", "content": "new body"},
            "toRecipients": [{"emailAddress": {"address": ALEX, "name": "Alex"}}],
            "bccRecipients": [{"emailAddress": {"address": "hidden@example.com"}}],
            "isRead": False,
            "flag": {"flagStatus": "flagged"},
        },
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["subject"] == "after"
    assert updated["bodyPreview"] == "new body"
    assert updated["toRecipients"] == [{"emailAddress": {"name": "Alex", "address": ALEX}}]
    assert updated["bccRecipients"][0]["emailAddress"]["address"] == "hidden@example.com"
    assert updated["isRead"] is False
    assert updated["flag"] == {"flagStatus": "flagged"}
    assert updated["changeKey"] != message["changeKey"]
    assert updated["createdDateTime"] == message["createdDateTime"]
    again = (await graph.get(f"/me/messages/{message['id']}")).json()
    assert again == updated


async def test_patch_with_attachments_is_refused(graph: Graph) -> None:
    message = (await graph.post("/me/messages", json={"subject": "keep"})).json()
    body = {
        "subject": "changed",
        "attachments": [{"@odata.type": "#microsoft.graph.fileAttachment", "name": "a.txt", "contentBytes": "aGk="}],
    }
    error = assert_graph_error(await graph.patch(f"/me/messages/{message['id']}", json=body), 400)
    assert "attachments" in error["message"]
    assert (await graph.get(f"/me/messages/{message['id']}")).json()["subject"] == "keep"


async def test_patch_read_only_and_unknown_properties(graph: Graph) -> None:
    message = (await graph.post("/me/messages", json={"subject": "ro"})).json()
    path = f"/me/messages/{message['id']}"
    assert_graph_error(await graph.patch(path, json={"changeKey": "x"}), 400, "ErrorInvalidPropertySet")
    assert_graph_error(await graph.patch(path, json={"parentFolderId": "x"}), 400, "ErrorInvalidPropertySet")
    error = assert_graph_error(await graph.patch(path, json={"subjekt": "typo"}), 400, "RequestBodyRead")
    assert "subjekt" in error["message"]
    assert_graph_error(await graph.patch(path, json={"subject": "ok", "isRead": 1}), 400, "RequestBodyRead")
    # nothing of a refused PATCH is kept
    assert (await graph.get(path)).json()["changeKey"] == message["changeKey"]


async def test_patch_draft_only_fields_on_a_received_message(graph: Graph) -> None:
    draft = (
        await graph.post(
            "/me/messages", json={"subject": "hi Alex", "toRecipients": [{"emailAddress": {"address": ALEX}}]}
        )
    ).json()
    assert (await graph.post(f"/me/messages/{draft['id']}/send")).status_code == 202
    received = await find_in_inbox(graph, ALEX, draft["internetMessageId"])
    path = f"/me/messages/{received['id']}"
    for field, value in [
        ("subject", "rewritten"),
        ("body", {"content": "x"}),
        ("toRecipients", []),
        ("ccRecipients", []),
        ("bccRecipients", []),
        ("replyTo", []),
    ]:
        error = assert_graph_error(
            await graph.patch(path, json={field: value}, user=ALEX), 400, "ErrorInvalidPropertyUpdateSentMessage"
        )
        assert field in error["message"]
    error = assert_graph_error(
        await graph.patch(path, json={"from": {"emailAddress": {"address": ALEX}}}, user=ALEX),
        400,
        "ErrorInvalidPropertySet",
    )
    assert error["message"] == "Message is not draft."
    # always-updatable properties
    response = await graph.patch(
        path,
        json={"isRead": True, "categories": ["Red category"], "importance": "low", "flag": {"flagStatus": "complete"}},
        user=ALEX,
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["isRead"] is True and updated["categories"] == ["Red category"]
    assert updated["importance"] == "low" and updated["flag"]["flagStatus"] == "complete"
    assert updated["subject"] == "hi Alex"


async def test_loose_mode_ignores_unknown_properties(inprocess_graph: Graph) -> None:
    import dataclasses

    from tests.conftest import inprocess

    settings = dataclasses.replace(inprocess_graph.ctx.settings, strict=False)
    async with inprocess(settings) as loose:
        response = await loose.post("/me/messages", json={"subject": "loose", "colour": "blue"})
        assert response.status_code == 201
        assert "colour" not in response.json()
        # wrong types and read-only properties are still refused
        assert_graph_error(await loose.post("/me/messages", json={"subject": 1}), 400, "RequestBodyRead")
        assert_graph_error(await loose.post("/me/messages", json={"id": "x"}), 400, "ErrorInvalidPropertySet")
        assert (await loose.get('/me/messages?$search="x"')).status_code == 200


# ---- DELETE ----------------------------------------------------------------------------------------------------


async def test_delete_message(graph: Graph) -> None:
    message = (await graph.post("/me/messages", json={"subject": "doomed"})).json()
    response = await graph.delete(f"/me/messages/{message['id']}")
    assert response.status_code == 204 and response.content == b""
    assert_graph_error(await graph.get(f"/me/messages/{message['id']}"), 404, "ErrorItemNotFound")
    assert_graph_error(await graph.delete(f"/me/messages/{message['id']}"), 404, "ErrorItemNotFound")


async def test_delete_frees_attachment_bytes(inprocess_graph: Graph) -> None:
    """The blob keys the store returns on delete are handed to ``ctx.free_blobs``."""
    from graphattach.domain.models import Attachment

    graph = inprocess_graph
    message = (await graph.post("/me/messages", json={"subject": "with bytes"})).json()
    ctx = graph.ctx
    me = (await graph.get("/me")).json()

    async def chunks():
        yield b"hello"

    await ctx.blobs.write("blob-for-delete", chunks())
    await ctx.metadata.add_attachment(
        Attachment(
            id="AAMkATTACHMENT01=",
            user_id=me["id"],
            item_id=message["id"],
            kind="file",
            name="a.txt",
            content_type="text/plain",
            size=163,
            content_length=5,
            blob_key="blob-for-delete",
            last_modified=ctx.clock.now(),
        )
    )
    assert (await graph.get(f"/me/messages/{message['id']}")).json()["hasAttachments"] is True
    assert await ctx.blobs.size("blob-for-delete") == 5
    assert (await graph.delete(f"/me/messages/{message['id']}")).status_code == 204
    assert await ctx.blobs.size("blob-for-delete") is None


# ---- permissions ----------------------------------------------------------------------------------------------


async def test_permissions_on_messages(graph: Graph) -> None:
    message = (await graph.post("/me/messages", json={"subject": "perm"})).json()
    path = f"/me/messages/{message['id']}"
    read_only = {"scopes": "Mail.Read"}
    assert (await graph.get(path, **read_only)).status_code == 200
    assert (await graph.get("/me/messages", **read_only)).status_code == 200
    assert_graph_error(await graph.post("/me/messages", json={}, **read_only), 403, "ErrorAccessDenied")
    assert_graph_error(await graph.patch(path, json={"isRead": False}, **read_only), 403, "ErrorAccessDenied")
    assert_graph_error(await graph.delete(path, **read_only), 403, "ErrorAccessDenied")
    calendars_only = {"scopes": "Calendars.ReadWrite"}
    assert_graph_error(await graph.get(path, **calendars_only), 403, "ErrorAccessDenied")
    assert_graph_error(await graph.get("/me/messages", **calendars_only), 403, "ErrorAccessDenied")
    # delegated tokens reach only their own mailbox
    assert_graph_error(await graph.get(f"/users/{ALEX}/messages"), 403, "ErrorAccessDenied")
    assert_graph_error(await graph.post(f"/users/{ALEX}/messages", json={}), 403, "ErrorAccessDenied")
    # app tokens need the role
    assert_graph_error(
        await graph.get(f"/users/{ADELE}/messages", app=True, roles="Calendars.Read"), 403, "ErrorAccessDenied"
    )
    assert (await graph.get(f"/users/{ADELE}/messages", app=True, roles="Mail.Read")).status_code == 200
    assert_graph_error(
        await graph.get("/users/nobody@contoso.onmicrosoft.com/messages", app=True), 404, "ErrorInvalidUser"
    )


async def test_o365_draft_body_is_accepted(graph: Graph) -> None:
    """The body O365's Message.save_draft() POSTs (O365 message.py ``to_api_data``)."""
    body = {
        "subject": "O365 draft",
        "body": {"contentType": "HTML", "content": "<p>x</p>"},
        "importance": "normal",
        "flag": {"flagStatus": "notFlagged"},
        "isReadReceiptRequested": False,
        "isDeliveryReceiptRequested": False,
        "toRecipients": [{"emailAddress": {"address": ALEX, "name": "Alex"}}],
        "ccRecipients": [],
        "bccRecipients": [],
        "replyTo": [],
        "internetMessageHeaders": [{"name": "x-custom", "value": "1"}],
        "singleValueExtendedProperties": [
            {"id": "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name Tag", "value": "t"}
        ],
    }
    response = await graph.post(f"/users/{ADELE}/messages", json=body)
    assert response.status_code == 201, response.text
    message = response.json()
    headers = await graph.get(f"/me/messages/{message['id']}?$select=internetMessageHeaders")
    assert headers.json()["internetMessageHeaders"] == [{"name": "x-custom", "value": "1"}]
    expanded = (await graph.get(f"/me/messages/{message['id']}?$expand=singleValueExtendedProperties")).json()
    assert expanded["singleValueExtendedProperties"][0]["value"] == "t"


async def test_create_with_attachments_and_rollback_on_a_bad_one(graph: Graph) -> None:
    good = {"@odata.type": "#microsoft.graph.fileAttachment", "name": "a.txt", "contentBytes": "aGVsbG8="}
    response = await graph.post("/me/messages", json={"subject": "attached", "attachments": [good]})
    assert response.status_code == 201, response.text
    assert response.json()["hasAttachments"] is True
    names = (await graph.get(f"/me/messages/{response.json()['id']}/attachments")).json()["value"]
    assert [a["name"] for a in names] == ["a.txt"]
    before = await count_drafts(graph)
    untyped = {"name": "b.txt", "contentBytes": "aGVsbG8="}
    refused = await graph.post("/me/messages", json={"subject": "half", "attachments": [good, untyped]})
    assert refused.status_code in (400, 422), refused.text
    assert await count_drafts(graph) == before
