"""Attachments travel: sendMail, sending a draft, and attendee copies of an event."""

from __future__ import annotations

import base64
import uuid
from typing import Any

from tests.api.attachment_support import (
    ITEM,
    REFERENCE,
    attach,
    attachment_ids,
    file_payload,
    new_event,
    new_message,
    sha256,
)
from tests.helpers import ADELE, ALEX, MEGAN, Graph, assert_graph_error


async def _find(graph: Graph, user: str, path: str, key: str, value: str) -> dict[str, Any] | None:
    """The newest item of ``path`` (as ``user``) whose ``key`` equals ``value``."""
    response = await graph.get(f"{path}?$top=100", user=user)
    assert response.status_code == 200, response.text
    for entity in response.json()["value"]:
        if entity.get(key) == value:
            return dict(entity)
    return None


async def _file_hashes(graph: Graph, user: str, base: str) -> dict[str, str]:
    """name → SHA-256 of the ``$value`` of every file attachment, read as ``user``."""
    listed = (await graph.get(f"{base}/attachments?$select=name", user=user)).json()["value"]
    hashes: dict[str, str] = {}
    for attachment in listed:
        if attachment["@odata.type"] == "#microsoft.graph.fileAttachment":
            raw = await graph.get(f"{base}/attachments/{attachment['id']}/$value", user=user)
            assert raw.status_code == 200
            hashes[attachment["name"]] = sha256(raw.content)
    return hashes


def _recipient(address: str) -> dict[str, Any]:
    return {"emailAddress": {"address": address}}


async def test_send_mail_with_attachments_delivers_identical_bytes(graph: Graph) -> None:
    subject = f"sendMail {uuid.uuid4().hex}"
    pdf = bytes(range(256)) * 40
    body = {
        "message": {
            "subject": subject,
            "body": {"contentType": "Text", "content": "See attached."},
            "toRecipients": [_recipient(ALEX), _recipient("someone@example.com")],
            "ccRecipients": [_recipient(MEGAN)],
            "attachments": [
                file_payload("report.pdf", pdf),
                file_payload("logo.png", b"\x89PNG", isInline=True, contentId="logo"),
            ],
        },
        "saveToSentItems": True,
    }
    response = await graph.post("/me/sendMail", json=body)
    assert response.status_code == 202, response.text
    assert response.content == b""
    expected = {"report.pdf": sha256(pdf), "logo.png": sha256(b"\x89PNG")}
    sent = await _find(graph, ADELE, "/me/mailFolders/sentitems/messages", "subject", subject)
    assert sent is not None and sent["hasAttachments"] is True
    assert await _file_hashes(graph, ADELE, f"/me/messages/{sent['id']}") == expected
    for recipient in (ALEX, MEGAN):
        received = await _find(graph, recipient, "/me/mailFolders/inbox/messages", "subject", subject)
        assert received is not None, recipient
        assert received["hasAttachments"] is True
        base = f"/me/messages/{received['id']}"
        assert await _file_hashes(graph, recipient, base) == expected
        listed = (await graph.get(f"{base}/attachments", user=recipient)).json()["value"]
        inline = next(a for a in listed if a["name"] == "logo.png")
        assert inline["isInline"] is True and inline["contentId"] == "logo"
        # new ids: nothing is shared with the sender's copy
        assert not set(await attachment_ids(graph, base, user=recipient)) & set(
            await attachment_ids(graph, f"/me/messages/{sent['id']}")
        )


async def test_send_mail_refuses_bad_attachments_and_sends_nothing(graph: Graph) -> None:
    subject = f"bad sendMail {uuid.uuid4().hex}"
    message = {"subject": subject, "toRecipients": [_recipient(ALEX)]}
    bad = await graph.post(
        "/me/sendMail",
        json={"message": {**message, "attachments": [file_payload(), {**file_payload(), "contentBytes": "%%%"}]}},
    )
    assert_graph_error(bad, 400, "BadRequest")
    untyped = await graph.post(
        "/me/sendMail", json={"message": {**message, "attachments": [{"name": "a", "contentBytes": "YQ=="}]}}
    )
    assert_graph_error(untyped, 422, "UnprocessableType")
    # the same 4 MiB request cap as a POST of one attachment
    big = base64.b64encode(b"z" * 3_200_000).decode()
    too_big = await graph.post(
        "/me/sendMail",
        json={
            "message": {
                **message,
                "attachments": [{"@odata.type": "#microsoft.graph.fileAttachment", "name": "big", "contentBytes": big}],
            }
        },
    )
    assert_graph_error(too_big, 413, "RequestEntityTooLarge")
    assert await _find(graph, ALEX, "/me/mailFolders/inbox/messages", "subject", subject) is None
    assert await _find(graph, ADELE, "/me/mailFolders/sentitems/messages", "subject", subject) is None
    assert await _find(graph, ADELE, "/me/mailFolders/drafts/messages", "subject", subject) is None


async def test_send_a_draft_with_attachments(graph: Graph) -> None:
    subject = f"draft send {uuid.uuid4().hex}"
    draft = await new_message(graph, subject=subject, toRecipients=[_recipient(ALEX)])
    base = f"/me/messages/{draft['id']}"
    data = bytes(reversed(range(256))) * 3000
    await attach(graph, base, file_payload("data.bin", data))
    await attach(
        graph,
        base,
        {"@odata.type": ITEM, "name": "Agenda", "item": {"@odata.type": "#microsoft.graph.event", "subject": "Agenda"}},
    )
    await attach(graph, base, {"@odata.type": REFERENCE, "name": "Shared folder"})
    sent = await graph.post(f"{base}/send")
    assert sent.status_code == 202, sent.text
    in_sent = await _find(graph, ADELE, "/me/mailFolders/sentitems/messages", "subject", subject)
    assert in_sent is not None and in_sent["isDraft"] is False
    sent_base = f"/me/messages/{in_sent['id']}"
    assert await _file_hashes(graph, ADELE, sent_base) == {"data.bin": sha256(data)}
    received = await _find(graph, ALEX, "/me/mailFolders/inbox/messages", "subject", subject)
    assert received is not None and received["hasAttachments"] is True
    received_base = f"/me/messages/{received['id']}"
    assert await _file_hashes(graph, ALEX, received_base) == {"data.bin": sha256(data)}
    kinds = {
        a["name"]: a["@odata.type"]
        for a in (await graph.get(f"{received_base}/attachments", user=ALEX)).json()["value"]
    }
    assert kinds == {"data.bin": "#microsoft.graph.fileAttachment", "Agenda": ITEM, "Shared folder": REFERENCE}
    # the recipient's copy is independent: deleting it leaves the sender's intact
    for attachment_id in await attachment_ids(graph, received_base, user=ALEX):
        assert (await graph.delete(f"{received_base}/attachments/{attachment_id}", user=ALEX)).status_code == 204
    assert await _file_hashes(graph, ADELE, sent_base) == {"data.bin": sha256(data)}


async def test_sending_needs_mail_send(graph: Graph) -> None:
    subject = f"no send {uuid.uuid4().hex}"
    draft = await new_message(graph, subject=subject, toRecipients=[_recipient(ALEX)])
    await attach(graph, f"/me/messages/{draft['id']}", file_payload())
    refused = await graph.post(f"/me/messages/{draft['id']}/send", scopes=["Mail.ReadWrite"])
    assert_graph_error(refused, 403, "ErrorAccessDenied")
    assert await _find(graph, ALEX, "/me/mailFolders/inbox/messages", "subject", subject) is None
    assert len(await attachment_ids(graph, f"/me/messages/{draft['id']}")) == 1


async def _attendee_copy(graph: Graph, user: str, ical_uid: str) -> dict[str, Any]:
    copy = await _find(graph, user, "/me/events", "iCalUId", ical_uid)
    assert copy is not None, user
    return copy


async def test_attendees_see_the_organizers_current_attachments(graph: Graph) -> None:
    event = await new_event(
        graph,
        subject=f"Review {uuid.uuid4().hex}",
        attendees=[{"emailAddress": {"address": ALEX}, "type": "required"}],
    )
    base = f"/me/events/{event['id']}"
    agenda = b"agenda bytes " * 1000
    first = await attach(graph, base, file_payload("agenda.txt", agenda))
    # adding an attachment alone does not notify; the organizer's next update does
    patched = await graph.patch(base, json={"subject": event["subject"] + " (updated)"})
    assert patched.status_code == 200, patched.text
    copy = await _attendee_copy(graph, ALEX, event["iCalUId"])
    copy_base = f"/me/events/{copy['id']}"
    assert copy["hasAttachments"] is True
    assert await _file_hashes(graph, ALEX, copy_base) == {"agenda.txt": sha256(agenda)}
    # a second file and a removal reach the copy on the next update, without duplicates
    slides = b"slides" * 5000
    await attach(graph, base, file_payload("slides.pptx", slides))
    assert (await graph.delete(f"{base}/attachments/{first['id']}")).status_code == 204
    assert (await graph.patch(base, json={})).status_code == 200
    assert await _file_hashes(graph, ALEX, copy_base) == {"slides.pptx": sha256(slides)}
    assert len(await attachment_ids(graph, copy_base, user=ALEX)) == 1


async def test_event_patch_with_an_attachments_array_does_not_duplicate(graph: Graph) -> None:
    """O365's Event.save(): upload the file, then PATCH the event with the same file in ``attachments``."""
    event = await new_event(graph, attendees=[{"emailAddress": {"address": ALEX}, "type": "required"}])
    base = f"/users/{ADELE}/events/{event['id']}"
    payload = file_payload("minutes.txt", b"minutes of the meeting")
    await attach(graph, base, payload)
    patched = await graph.patch(base, json={"attachments": [payload]})
    assert patched.status_code == 200, patched.text
    assert len(await attachment_ids(graph, base)) == 1
    assert (await graph.patch(base, json={"attachments": [payload]})).status_code == 200
    assert len(await attachment_ids(graph, base)) == 1
    copy = await _attendee_copy(graph, ALEX, event["iCalUId"])
    assert await _file_hashes(graph, ALEX, f"/me/events/{copy['id']}") == {
        "minutes.txt": sha256(b"minutes of the meeting")
    }
