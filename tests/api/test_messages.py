"""Messages: create drafts, get, list, update, delete, on /me and /users/{id|upn}."""

from __future__ import annotations

from tests.helpers import ADELE, ALEX, Graph, assert_graph_error


async def test_create_draft_lands_in_drafts_with_full_shape(graph: Graph) -> None:
    response = await graph.post(
        "/me/messages",
        json={
            "subject": "Quarterly report",
            "body": {"contentType": "HTML", "content": "<p>Numbers <b>inside</b></p>"},
            "toRecipients": [{"emailAddress": {"address": ALEX}}],
        },
    )
    assert response.status_code == 201, response.text
    message = response.json()
    me = (await graph.get("/me")).json()
    assert message["@odata.context"] == f"{graph.v1}/$metadata#users('{me['id']}')/messages/$entity"
    assert message["@odata.etag"] == f'W/"{message["changeKey"]}"'
    assert message["isDraft"] is True
    assert message["subject"] == "Quarterly report"
    assert message["body"] == {"contentType": "html", "content": "<p>Numbers <b>inside</b></p>"}
    assert message["bodyPreview"] == "Numbers inside"
    assert message["toRecipients"] == [{"emailAddress": {"name": ALEX, "address": ALEX}}]
    assert message["from"] is None and message["sender"] is None
    assert message["hasAttachments"] is False
    assert message["sentDateTime"] == message["createdDateTime"] == message["receivedDateTime"]
    assert message["flag"] == {"flagStatus": "notFlagged"}
    for key in (
        "id",
        "lastModifiedDateTime",
        "categories",
        "internetMessageId",
        "importance",
        "parentFolderId",
        "conversationId",
        "isDeliveryReceiptRequested",
        "isReadReceiptRequested",
        "isRead",
        "webLink",
        "inferenceClassification",
        "ccRecipients",
        "bccRecipients",
        "replyTo",
    ):
        assert key in message, key


async def test_get_message_on_me_and_users(graph: Graph) -> None:
    created = (await graph.post("/me/messages", json={"subject": "hello"})).json()
    mine = await graph.get(f"/me/messages/{created['id']}")
    assert mine.status_code == 200
    assert mine.json()["subject"] == "hello"
    by_upn = await graph.get(f"/users/{ADELE}/messages/{created['id']}")
    assert by_upn.status_code == 200
    assert by_upn.json()["@odata.context"].endswith("users('adele%40contoso.onmicrosoft.com')/messages/$entity")
    as_app = await graph.get(f"/users/{ADELE}/messages/{created['id']}", app=True)
    assert as_app.json()["id"] == created["id"]


async def test_unknown_and_malformed_message_ids(graph: Graph) -> None:
    assert_graph_error(await graph.get("/me/messages/AAMkAGI2TAAA="), 404, "ErrorItemNotFound")
    assert_graph_error(await graph.get("/me/messages/bad!id"), 400, "ErrorInvalidIdMalformed")
