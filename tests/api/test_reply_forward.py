"""Reply and forward: createReply, createReplyAll, createForward, reply, replyAll, forward
(message-createreply.md, message-reply.md, message-forward.md...)."""

from __future__ import annotations

import base64
import os

from tests.api.test_messages import find_in_inbox, unique
from tests.api.test_move_copy import attachment_bytes, folder_id
from tests.helpers import ADELE, ALEX, MEGAN, Graph, assert_graph_error


def to(*addresses: str) -> list[dict]:
    return [{"emailAddress": {"address": a}} for a in addresses]


def addresses(recipients: list[dict]) -> list[str]:
    return [r["emailAddress"]["address"].lower() for r in recipients]


async def received_with_file(graph: Graph, cc: tuple[str, ...] = (MEGAN,)) -> tuple[dict, bytes]:
    """Adele sends Alex (cc Megan) a message with a file; returns Alex's received copy and the bytes."""
    content = os.urandom(5000)
    subject = unique("report")
    message = {
        "subject": subject,
        "body": {"contentType": "text", "content": "The numbers <are> in."},
        "toRecipients": to(ALEX),
        "ccRecipients": to(*cc),
        "attachments": [
            {
                "@odata.type": "#microsoft.graph.fileAttachment",
                "name": "numbers.bin",
                "contentBytes": base64.b64encode(content).decode(),
            }
        ],
    }
    assert (await graph.post("/me/sendMail", json={"message": message})).status_code == 202
    inbox = (await graph.get("/me/mailFolders/inbox/messages?$top=1000", user=ALEX)).json()["value"]
    return next(m for m in inbox if m["subject"] == subject), content


async def test_create_reply_is_a_draft_in_drafts_without_the_attachments(graph: Graph) -> None:
    received, _ = await received_with_file(graph)
    response = await graph.post(f"/me/messages/{received['id']}/createReply", json={"comment": "Thanks!"}, user=ALEX)
    assert response.status_code == 201, response.text
    draft = response.json()
    assert draft["isDraft"] is True
    assert draft["parentFolderId"] == await folder_id(graph, "drafts", user=ALEX)
    assert draft["subject"] == "RE: " + received["subject"]
    assert draft["conversationId"] == received["conversationId"]
    assert addresses(draft["toRecipients"]) == [ADELE]
    assert draft["ccRecipients"] == []
    assert draft["hasAttachments"] is False
    assert draft["body"]["contentType"] == "html"
    assert "Thanks!" in draft["body"]["content"]
    assert "The numbers &lt;are&gt; in." in draft["body"]["content"]  # the quoted original, escaped
    assert draft["body"]["content"].index("Thanks!") < draft["body"]["content"].index("The numbers")
    # message.body takes the comment's place, HTML kept
    html_reply = await graph.post(
        f"/me/messages/{received['id']}/createReply",
        json={"message": {"body": {"contentType": "html", "content": "<p><b>Bold</b> answer</p>"}}},
        user=ALEX,
    )
    content = html_reply.json()["body"]["content"]
    assert "<b>Bold</b> answer" in content and content.index("Bold") < content.index("The numbers")
    # no body at all is allowed ("does not require a request body")
    bare = await graph.post(f"/me/messages/{received['id']}/createReply", user=ALEX)
    assert bare.status_code == 201, bare.text


async def test_create_reply_all_and_forward(graph: Graph) -> None:
    received, content = await received_with_file(graph)
    reply_all = (await graph.post(f"/me/messages/{received['id']}/createReplyAll", json={}, user=ALEX)).json()
    assert addresses(reply_all["toRecipients"]) == [ADELE]  # Alex (To) is the replier: left out
    assert addresses(reply_all["ccRecipients"]) == [MEGAN]
    forward = await graph.post(
        f"/users/{ALEX}/mailFolders/inbox/messages/{received['id']}/createForward",
        json={"Comment": "FYI", "ToRecipients": to(MEGAN)},  # msgraph-sdk-python's casing
        user=ALEX,
    )
    assert forward.status_code == 201, forward.text
    draft = forward.json()
    assert draft["subject"] == "FW: " + received["subject"]
    assert addresses(draft["toRecipients"]) == [MEGAN]
    assert draft["hasAttachments"] is True
    assert await attachment_bytes(graph, draft["id"], user=ALEX) == [content]


async def test_forward_delivers_the_attachments_byte_identical(graph: Graph) -> None:
    received, content = await received_with_file(graph)
    response = await graph.post(
        f"/me/messages/{received['id']}/forward",
        json={"comment": "See attached", "toRecipients": to(MEGAN, "someone@example.com")},
        user=ALEX,
    )
    assert response.status_code == 202, response.text
    assert response.content == b""
    subject = "FW: " + received["subject"]
    inbox = (await graph.get("/me/mailFolders/inbox/messages?$top=1000", user=MEGAN)).json()["value"]
    got = next(m for m in inbox if m["subject"] == subject)
    assert got["from"]["emailAddress"]["address"] == ALEX
    assert got["hasAttachments"] is True
    assert await attachment_bytes(graph, got["id"], user=MEGAN) == [content]
    sent = (await graph.get("/me/mailFolders/sentitems/messages?$top=1000", user=ALEX)).json()["value"]
    kept = next(m for m in sent if m["subject"] == subject)
    assert await attachment_bytes(graph, kept["id"], user=ALEX) == [content]
    # no draft is left behind
    drafts = (await graph.get("/me/mailFolders/drafts/messages?$top=1000", user=ALEX)).json()["value"]
    assert subject not in [m["subject"] for m in drafts]


async def test_reply_with_message_and_new_attachment(graph: Graph) -> None:
    received, _ = await received_with_file(graph)
    extra = os.urandom(700)
    response = await graph.post(
        f"/users/{ALEX}/messages/{received['id']}/reply",
        json={
            "message": {
                "toRecipients": to(ADELE),
                "ccRecipients": to(MEGAN),
                "attachments": [
                    {
                        "@odata.type": "#microsoft.graph.fileAttachment",
                        "name": "answer.bin",
                        "contentBytes": base64.b64encode(extra).decode(),
                    }
                ],
            },
            "comment": "Here is mine.",
        },
        app=True,
    )
    assert response.status_code == 202, response.text
    subject = "RE: " + received["subject"]
    inbox = (await graph.get("/me/mailFolders/inbox/messages?$top=1000")).json()["value"]
    got = next(m for m in inbox if m["subject"] == subject)
    names = [a["name"] for a in (await graph.get(f"/me/messages/{got['id']}/attachments")).json()["value"]]
    assert names == ["answer.bin"]  # the reply does not carry the original's file
    assert await attachment_bytes(graph, got["id"]) == [extra]
    assert got["conversationId"] == received["conversationId"]
    megan = (await graph.get("/me/mailFolders/inbox/messages?$top=1000", user=MEGAN)).json()["value"]
    assert subject in [m["subject"] for m in megan]


async def test_reply_all_reaches_everyone_but_the_replier(graph: Graph) -> None:
    received, _ = await received_with_file(graph)
    response = await graph.post(f"/me/messages/{received['id']}/replyAll", json={"comment": "All"}, user=ALEX)
    assert response.status_code == 202
    sent = (await graph.get("/me/mailFolders/sentitems/messages?$top=1000", user=ALEX)).json()["value"]
    kept = next(m for m in sent if m["subject"] == "RE: " + received["subject"])
    await find_in_inbox(graph, ADELE, kept["internetMessageId"])
    await find_in_inbox(graph, MEGAN, kept["internetMessageId"])


async def test_reply_and_forward_errors(graph: Graph) -> None:
    received, _ = await received_with_file(graph)
    base = f"/me/messages/{received['id']}"
    both = {"comment": "x", "message": {"body": {"contentType": "text", "content": "y"}}}
    assert_graph_error(await graph.post(f"{base}/reply", json=both, user=ALEX), 400, "ErrorInvalidParameter")
    assert_graph_error(await graph.post(f"{base}/createReply", json=both, user=ALEX), 400, "ErrorInvalidParameter")
    assert_graph_error(
        await graph.post(f"{base}/forward", json={"comment": "x"}, user=ALEX), 400, "ErrorInvalidParameter"
    )
    twice = {"toRecipients": to(MEGAN), "message": {"toRecipients": to(MEGAN)}}
    assert_graph_error(await graph.post(f"{base}/forward", json=twice, user=ALEX), 400, "ErrorInvalidParameter")
    assert_graph_error(await graph.post(f"{base}/reply", json={"comment": 5}, user=ALEX), 400, "RequestBodyRead")
    assert_graph_error(await graph.post(f"{base}/reply", content=b"{", user=ALEX), 400)
    # permissions: the create actions need Mail.ReadWrite, the sending ones Mail.Send
    assert_graph_error(await graph.post(f"{base}/createReply", json={}, user=ALEX, scopes="Mail.Send"), 403)
    assert_graph_error(await graph.post(f"{base}/reply", json={}, user=ALEX, scopes="Mail.ReadWrite"), 403)
    # another user's message is not reachable with a delegated token
    assert_graph_error(await graph.post(f"/users/{ALEX}/messages/{received['id']}/reply", json={}), 403)
    assert_graph_error(await graph.post("/me/messages/AAMkAGI2TAAAAAAAAAA=/createReply", json={}), 404)
    # a recipient that does not resolve: 400, and no draft or sent copy is left behind
    before = (await graph.get("/me/mailFolders/drafts/messages/$count", user=ALEX)).text
    bad = {"toRecipients": to("not-an-address")}
    assert_graph_error(await graph.post(f"{base}/forward", json=bad, user=ALEX), 400, "ErrorInvalidRecipients")
    assert (await graph.get("/me/mailFolders/drafts/messages/$count", user=ALEX)).text == before
