"""Sending: POST .../messages/{id}/send and POST /sendMail, delivery to users of this tenant."""

from __future__ import annotations

import pytest

from tests.api.test_messages import find_in_inbox, unique
from tests.helpers import ADELE, ALEX, MEGAN, Graph, assert_graph_error


def to(*addresses: str) -> list[dict]:
    return [{"emailAddress": {"address": a}} for a in addresses]


async def inbox_ids(graph: Graph, user: str) -> list[str]:
    """The internetMessageId of every message in ``user``'s Inbox (following nextLinks)."""
    ids: list[str] = []
    link: str | None = "/me/mailFolders/inbox/messages?$top=100&$select=internetMessageId"
    while link:
        page = (await graph.get(link, user=user)).json()
        ids += [m["internetMessageId"] for m in page["value"]]
        link = page.get("@odata.nextLink")
    return ids


async def test_send_moves_the_draft_to_sent_items_and_delivers(graph: Graph) -> None:
    subject = unique("hello")
    draft = (
        await graph.post(
            "/me/messages",
            json={
                "subject": subject,
                "body": {"contentType": "text", "content": "See you"},
                "toRecipients": to(ALEX.upper(), "someone@example.com"),
                "ccRecipients": to(ALEX),
                "bccRecipients": to(MEGAN),
            },
        )
    ).json()
    response = await graph.post(f"/me/messages/{draft['id']}/send")
    assert response.status_code == 202
    assert response.content == b""
    sent = (await graph.get(f"/me/messages/{draft['id']}")).json()
    sent_items = (await graph.get("/me/mailFolders/sentitems")).json()
    assert sent["parentFolderId"] == sent_items["id"]
    assert sent["isDraft"] is False
    assert sent["sentDateTime"] >= draft["createdDateTime"]
    me = (await graph.get("/me")).json()
    owner = {"emailAddress": {"name": me["displayName"], "address": ADELE}}
    assert sent["from"] == owner and sent["sender"] == owner
    assert sent["bccRecipients"] == to_named(MEGAN)
    # Alex is named twice (to, upper-case, and cc) and gets one copy
    alex_copy = await find_in_inbox(graph, ALEX, draft["internetMessageId"])
    alex_inbox = (await graph.get("/me/mailFolders/inbox", user=ALEX)).json()
    assert alex_copy["parentFolderId"] == alex_inbox["id"]
    assert alex_copy["id"] != draft["id"]
    assert alex_copy["subject"] == subject
    assert alex_copy["isDraft"] is False and alex_copy["isRead"] is False
    assert alex_copy["from"] == owner
    assert alex_copy["bccRecipients"] == []
    assert alex_copy["conversationId"] == sent["conversationId"]
    assert alex_copy["body"] == {"contentType": "text", "content": "See you"}
    assert (await inbox_ids(graph, ALEX)).count(draft["internetMessageId"]) == 1
    # the Bcc recipient gets a copy too
    megan_copy = await find_in_inbox(graph, MEGAN, draft["internetMessageId"])
    assert megan_copy["bccRecipients"] == []
    # the sender's copy is not in their own Inbox
    assert draft["internetMessageId"] not in await inbox_ids(graph, ADELE)


def to_named(address: str) -> list[dict]:
    return [{"emailAddress": {"name": address, "address": address}}]


async def test_send_through_users_path_with_app_token(graph: Graph) -> None:
    draft = (
        await graph.post(f"/users/{ALEX}/messages", json={"subject": "app send", "toRecipients": to(ADELE)}, app=True)
    ).json()
    response = await graph.post(f"/users/{ALEX}/mailFolders/drafts/messages/{draft['id']}/send", app=True)
    assert response.status_code == 202
    received = await find_in_inbox(graph, ADELE, draft["internetMessageId"])
    assert received["from"]["emailAddress"]["address"] == ALEX


async def test_send_only_drafts(graph: Graph) -> None:
    draft = (await graph.post("/me/messages", json={"subject": "once", "toRecipients": to(ALEX)})).json()
    assert (await graph.post(f"/me/messages/{draft['id']}/send")).status_code == 202
    assert_graph_error(await graph.post(f"/me/messages/{draft['id']}/send"), 400, "ErrorInvalidOperation")
    received = await find_in_inbox(graph, ALEX, draft["internetMessageId"])
    assert_graph_error(await graph.post(f"/me/messages/{received['id']}/send", user=ALEX), 400, "ErrorInvalidOperation")


async def test_send_needs_recipients_that_resolve(graph: Graph) -> None:
    draft = (await graph.post("/me/messages", json={"subject": "nobody"})).json()
    error = assert_graph_error(await graph.post(f"/me/messages/{draft['id']}/send"), 400, "ErrorInvalidRecipients")
    assert "At least one recipient" in error["message"]
    assert (await graph.get(f"/me/messages/{draft['id']}")).json()["isDraft"] is True
    bad = (await graph.post("/me/messages", json={"toRecipients": to("not-an-address")})).json()
    error = assert_graph_error(await graph.post(f"/me/messages/{bad['id']}/send"), 400, "ErrorInvalidRecipients")
    assert "not-an-address" in error["message"]


async def test_send_permissions(graph: Graph) -> None:
    draft = (await graph.post("/me/messages", json={"subject": "perm", "toRecipients": to(ALEX)})).json()
    assert_graph_error(
        await graph.post(f"/me/messages/{draft['id']}/send", scopes="Mail.ReadWrite"), 403, "ErrorAccessDenied"
    )
    assert_graph_error(
        await graph.post("/me/sendMail", json={"message": {"toRecipients": to(ALEX)}}, scopes="Mail.ReadWrite"),
        403,
        "ErrorAccessDenied",
    )
    assert_graph_error(await graph.post(f"/users/{ALEX}/sendMail", json={"message": {}}), 403, "ErrorAccessDenied")
    assert (await graph.post(f"/me/messages/{draft['id']}/send", scopes="Mail.Send")).status_code == 202
    assert_graph_error(await graph.post("/me/messages/AAMkAGI2TAAA=/send"), 404, "ErrorItemNotFound")


async def sent_subjects(graph: Graph, user: str = ADELE) -> list[str]:
    body = (await graph.get("/me/mailFolders/sentitems/messages?$top=1000&$select=subject", user=user)).json()
    return [m["subject"] for m in body["value"]]


async def test_send_mail_saves_to_sent_items_and_delivers(graph: Graph) -> None:
    subject = unique("sendMail")
    response = await graph.post(
        "/me/sendMail",
        json={
            "message": {
                "subject": subject,
                "body": {"contentType": "HTML", "content": "<b>hi</b>"},
                "toRecipients": to(ALEX),
            },
            "saveToSentItems": True,
        },
    )
    assert response.status_code == 202 and response.content == b""
    assert subject in await sent_subjects(graph)
    drafts = (await graph.get("/me/mailFolders/drafts/messages?$top=1000&$select=subject")).json()
    assert subject not in [m["subject"] for m in drafts["value"]]
    body = (await graph.get("/me/mailFolders/inbox/messages?$top=1000&$select=subject,isRead,from", user=ALEX)).json()
    received = [m for m in body["value"] if m["subject"] == subject]
    assert len(received) == 1 and received[0]["isRead"] is False
    assert received[0]["from"]["emailAddress"]["address"] == ADELE


async def test_send_mail_default_saves_and_false_does_not(graph: Graph) -> None:
    kept, dropped = unique("kept"), unique("dropped")
    assert (
        await graph.post("/me/sendMail", json={"message": {"subject": kept, "toRecipients": to(ALEX)}})
    ).status_code == 202
    response = await graph.post(
        "/me/sendMail", json={"Message": {"subject": dropped, "toRecipients": to(ALEX)}, "SaveToSentItems": False}
    )
    assert response.status_code == 202
    subjects = await sent_subjects(graph)
    assert kept in subjects and dropped not in subjects
    inbox = (await graph.get("/me/mailFolders/inbox/messages?$top=1000&$select=subject", user=ALEX)).json()
    assert dropped in [m["subject"] for m in inbox["value"]]


async def test_send_mail_delivers_its_attachments(graph: Graph) -> None:
    subject = unique("with-attachment")
    response = await graph.post(
        "/me/sendMail",
        json={
            "message": {
                "subject": subject,
                "toRecipients": to(ALEX),
                "attachments": [
                    {
                        "@odata.type": "#microsoft.graph.fileAttachment",
                        "name": "menu.txt",
                        "contentType": "text/plain",
                        "contentBytes": "bWFjIGFuZCBjaGVlc2UgdG9kYXk=",
                    }
                ],
            },
            "saveToSentItems": False,
        },
    )
    assert response.status_code == 202, response.text
    inbox = (
        await graph.get("/me/mailFolders/inbox/messages?$top=1000&$select=subject,hasAttachments", user=ALEX)
    ).json()
    received = [m for m in inbox["value"] if m["subject"] == subject]
    assert len(received) == 1 and received[0]["hasAttachments"] is True
    expanded = (await graph.get(f"/me/messages/{received[0]['id']}?$expand=attachments", user=ALEX)).json()
    assert [(a["name"], a["contentBytes"]) for a in expanded["attachments"]] == [
        ("menu.txt", "bWFjIGFuZCBjaGVlc2UgdG9kYXk=")
    ]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "ErrorInvalidParameter"),
        ({"message": None}, "ErrorInvalidParameter"),
        ({"message": {"toRecipients": to(ALEX)}, "urgent": True}, "RequestBodyRead"),
        ({"message": {"toRecipients": to(ALEX)}, "saveToSentItems": "yes"}, "RequestBodyRead"),
        ({"message": {"toRecipients": to(ALEX), "subjet": "typo"}}, "RequestBodyRead"),
        ({"message": {"toRecipients": "alex"}}, "RequestBodyRead"),
        ({"message": {"subject": "no one"}}, "ErrorInvalidRecipients"),
        ({"message": {"toRecipients": to("bad address@x")}}, "ErrorInvalidRecipients"),
        ({"message": "text"}, "RequestBodyRead"),
    ],
)
async def test_send_mail_validation_stores_nothing(graph: Graph, body: dict, code: str) -> None:
    drafts_before = (await graph.get("/me/mailFolders/drafts/messages/$count")).text
    sent_before = (await graph.get("/me/mailFolders/sentitems/messages/$count")).text
    assert_graph_error(await graph.post("/me/sendMail", json=body), 400, code)
    assert (await graph.get("/me/mailFolders/drafts/messages/$count")).text == drafts_before
    assert (await graph.get("/me/mailFolders/sentitems/messages/$count")).text == sent_before


async def test_send_mail_with_app_token(graph: Graph) -> None:
    subject = unique("app-sendMail")
    response = await graph.post(
        f"/users/{MEGAN}/sendMail", json={"message": {"subject": subject, "toRecipients": to(ALEX)}}, app=True
    )
    assert response.status_code == 202
    assert subject in await sent_subjects(graph, MEGAN)
    assert_graph_error(await graph.post("/me/sendMail", json={"message": {}}, app=True), 400, "BadRequest")
