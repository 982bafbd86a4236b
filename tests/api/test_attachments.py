"""Attachments on messages and events over HTTP: add, list, get, $value, delete, the documented examples."""

from __future__ import annotations

import base64
import email
import email.policy
import uuid
from typing import Any

import pytest

from tests.api.attachment_support import (
    EVENT,
    FILE,
    ITEM,
    REFERENCE,
    attach,
    attachment_ids,
    file_payload,
    new_event,
    new_message,
    sha256,
)
from tests.helpers import ADELE, ALEX, Graph, assert_graph_error

SEED_003_ITEM = {
    "@odata.type": "#microsoft.graph.itemAttachment",
    "name": "Holiday event",
    "item": {
        "@odata.type": "microsoft.graph.event",
        "subject": "Discuss gifts for children",
        "body": {"contentType": "HTML", "content": "Let's look for funding!"},
        "start": {"dateTime": "2016-12-02T18:00:00", "timeZone": "Pacific Standard Time"},
        "end": {"dateTime": "2016-12-02T19:00:00", "timeZone": "Pacific Standard Time"},
    },
}
SEED_003_REFERENCE = {
    "@odata.type": "#microsoft.graph.referenceAttachment",
    "name": "Personal pictures",
    "sourceUrl": "https://contoso.com/personal/mario_contoso_net/Documents/Pics",
    "providerType": "oneDriveConsumer",
    "permission": "Edit",
    "isFolder": "True",
}


async def _me_id(graph: Graph, user: str = ADELE) -> str:
    return str((await graph.get(f"/users/{user}", user=user)).json()["id"])


# ------------------------------------------------------------------------------------------------
# the documented examples


async def test_seed_003_file_attachment_on_event_in_beta(graph: Graph) -> None:
    event = await new_event(graph)
    response = await graph.post(
        f"/me/events/{event['id']}/attachments",
        version="beta",
        json={
            "@odata.type": "#microsoft.graph.fileAttachment",
            "name": "menu.txt",
            "contentBytes": "bWFjIGFuZCBjaGVlc2UgdG9kYXk=",
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert list(body) == [
        "@odata.context",
        "@odata.type",
        "id",
        "lastModifiedDateTime",
        "name",
        "contentType",
        "size",
        "isInline",
        "contentId",
        "contentLocation",
        "contentBytes",
    ]
    me = await _me_id(graph)
    encoded_event_id = event["id"].replace("=", "%3D")
    assert body["@odata.context"] == (
        f"{graph.root}/beta/$metadata#users('{me}')/events('{encoded_event_id}')/attachments/$entity"
    )
    assert body["@odata.type"] == "#microsoft.graph.fileAttachment"
    assert body["name"] == "menu.txt" and body["contentType"] == "text/plain"
    assert body["size"] == 178
    assert body["isInline"] is False and body["contentId"] is None and body["contentLocation"] is None
    assert body["contentBytes"] == "bWFjIGFuZCBjaGVlc2UgdG9kYXk="
    stamp = body["lastModifiedDateTime"]
    assert len(stamp) == 20 and stamp.endswith("Z")  # 2017-04-15T03:21:49Z: whole seconds, UTC


async def test_seed_003_item_attachment_on_event_in_beta(graph: Graph) -> None:
    event = await new_event(graph)
    response = await graph.post(f"/me/events/{event['id']}/attachments", version="beta", json=SEED_003_ITEM)
    assert response.status_code == 201, response.text
    body = response.json()
    assert list(body) == [
        "@odata.context",
        "@odata.type",
        "@odata.id",
        "id",
        "lastModifiedDateTime",
        "name",
        "contentType",
        "size",
        "isInline",
    ]
    assert body["@odata.type"] == "#microsoft.graph.itemAttachment"
    assert body["@odata.id"].endswith(f"/events('{event['id']}')/attachments('{body['id']}')")
    assert body["@odata.id"].startswith(f"{graph.root}/beta/users('")
    assert body["name"] == "Holiday event" and body["contentType"] is None and body["isInline"] is False
    assert isinstance(body["size"], int) and body["size"] > 0


async def test_seed_003_reference_attachment_on_event_in_beta(graph: Graph) -> None:
    event = await new_event(graph)
    response = await graph.post(f"/me/events/{event['id']}/attachments", version="beta", json=SEED_003_REFERENCE)
    assert response.status_code == 201, response.text
    body = response.json()
    assert list(body) == [
        "@odata.context",
        "@odata.type",
        "id",
        "lastModifiedDateTime",
        "name",
        "contentType",
        "size",
        "isInline",
        "sourceUrl",
        "providerType",
        "thumbnailUrl",
        "previewUrl",
        "permission",
        "isFolder",
    ]
    assert body["@odata.type"] == "#microsoft.graph.referenceAttachment"
    assert body["sourceUrl"] == "https://contoso.com/personal/mario_contoso_net/Documents/Pics"
    assert body["providerType"] == "oneDriveConsumer"
    assert body["permission"] == "edit" and body["isFolder"] is True
    assert body["thumbnailUrl"] is None and body["previewUrl"] is None and body["contentType"] is None
    # read back in beta: the same properties; in v1.0 a reference attachment has none of its own
    beta = (await graph.get(f"/me/events/{event['id']}/attachments/{body['id']}", version="beta")).json()
    assert beta["permission"] == "edit" and beta["isFolder"] is True
    v1 = (await graph.get(f"/me/events/{event['id']}/attachments/{body['id']}")).json()
    assert "sourceUrl" not in v1 and v1["@odata.type"] == "#microsoft.graph.referenceAttachment"
    # $value of a reference attachment is a 405
    assert_graph_error(await graph.get(f"/me/events/{event['id']}/attachments/{body['id']}/$value"), 405)


async def test_reference_properties_are_refused_in_v1(graph: Graph) -> None:
    event = await new_event(graph)
    error = assert_graph_error(await graph.post(f"/me/events/{event['id']}/attachments", json=SEED_003_REFERENCE), 400)
    assert "referenceAttachment" in error["message"]
    plain = await attach(graph, f"/me/events/{event['id']}", {"@odata.type": REFERENCE, "name": "Link"})
    assert plain["@odata.type"] == REFERENCE and "sourceUrl" not in plain
    assert await attachment_ids(graph, f"/me/events/{event['id']}") == [plain["id"]]


async def test_seed_004_file_and_item_attachments_on_v1(graph: Graph) -> None:
    message = await new_message(graph)
    response = await graph.post(
        f"/me/messages/{message['id']}/attachments",
        json={"@odata.type": "#microsoft.graph.fileAttachment", "name": "name-value", "contentBytes": "Y29udGVudA=="},
    )
    # The old page shows "HTTP 200 OK"; the service answers 201 Created (message-post-attachments).
    assert response.status_code == 201
    assert response.json()["@odata.type"] == FILE and response.json()["contentBytes"] == "Y29udGVudA=="
    event = await new_event(graph)
    item = await graph.post(
        f"/me/events/{event['id']}/attachments",
        json={
            "@odata.type": "#microsoft.graph.itemAttachment",
            "name": "name-value",
            "item": {"@odata.type": "#microsoft.graph.message", "subject": "Embedded"},
        },
    )
    assert item.status_code == 201, item.text
    assert item.json()["@odata.type"] == ITEM
    # the seed's literal placeholder "message or event entity" is not an item
    bad = await graph.post(
        f"/me/events/{event['id']}/attachments",
        json={
            "@odata.type": "#microsoft.graph.itemAttachment",
            "name": "name-value",
            "item": "message or event entity",
        },
    )
    assert_graph_error(bad, 400)
    assert len(await attachment_ids(graph, f"/me/events/{event['id']}")) == 1


async def test_seed_000_select_shape(graph: Graph) -> None:
    message = await new_message(graph)
    created = await attach(
        graph, f"/me/messages/{message['id']}", file_payload("flower", b"\xff\xd8jpeg", contentType="image/jpeg")
    )
    response = await graph.get(
        f"/users/{ADELE}/messages/{message['id']}/attachments/{created['id']}"
        "?$select=lastModifiedDateTime,name,contentType,size,isInline"
    )
    assert response.status_code == 200
    body = response.json()
    assert list(body) == [
        "@odata.context",
        "@odata.type",
        "@odata.mediaContentType",
        "id",
        "lastModifiedDateTime",
        "name",
        "contentType",
        "size",
        "isInline",
    ]
    assert body["@odata.mediaContentType"] == "image/jpeg" and body["contentType"] == "image/jpeg"
    assert body["@odata.context"] == (
        f"{graph.v1}/$metadata#users('adele%40contoso.onmicrosoft.com')/messages('{message['id'].replace('=', '%3D')}')"
        "/attachments/$entity"
    )
    # O365 sends the query percent-encoded
    encoded = await graph.get(f"/me/messages/{message['id']}/attachments/{created['id']}?%24select=id%2Cname%2Csize")
    assert set(encoded.json()) == {"@odata.context", "@odata.type", "@odata.mediaContentType", "id", "name", "size"}


# ------------------------------------------------------------------------------------------------
# every URL form


async def _created(graph: Graph, path: str, body: dict[str, Any]) -> str:
    response = await graph.post(path, json=body)
    assert response.status_code == 201, (path, response.text)
    return str(response.json()["id"])


async def _url_forms(graph: Graph) -> list[tuple[str, str]]:
    """(kind, item URL) pairs covering the message and event path forms."""
    me = await _me_id(graph)
    forms: list[tuple[str, str]] = []
    message = await new_message(graph)
    forms += [
        ("message", f"/me/messages/{message['id']}"),
        ("message", f"/users/{ADELE}/messages/{message['id']}"),
        ("message", f"/users/{me}/messages/{message['id']}"),
        ("message", f"/me/mailFolders/drafts/messages/{message['id']}"),
        ("message", f"/me/MailFolders('Drafts')/Messages('{message['id']}')"),
        ("message", f"/users/{ADELE}/mailFolders/{message['parentFolderId']}/messages/{message['id']}"),
    ]
    inbox_message = await new_message(graph, folder="inbox")
    forms.append(("message", f"/me/mailFolders/inbox/messages/{inbox_message['id']}"))
    # childFolders at any depth, starting from a well-known name or an id
    suffix = uuid.uuid4().hex[:8]
    child = await _created(graph, "/me/mailFolders/inbox/childFolders", {"displayName": f"c1-{suffix}"})
    grandchild = await _created(graph, f"/me/mailFolders/{child}/childFolders", {"displayName": f"c2-{suffix}"})
    nested = await new_message(graph, folder=grandchild)
    forms += [
        ("message", f"/me/mailFolders/inbox/childFolders/{child}/childFolders/{grandchild}/messages/{nested['id']}"),
        ("message", f"/users/{ADELE}/mailFolders/{grandchild}/messages/{nested['id']}"),
        (
            "message",
            f"/users/{me}/mailFolders/Inbox/childFolders/{child}/childFolders/{grandchild}/messages/{nested['id']}",
        ),
    ]
    event = await new_event(graph)
    forms += [
        ("event", f"/me/events/{event['id']}"),
        ("event", f"/users/{ADELE}/events/{event['id']}"),
        ("event", f"/me/calendar/events/{event['id']}"),
        ("event", f"/users/{me}/calendar/events/{event['id']}"),
    ]
    calendar = await _created(graph, "/me/calendars", {"name": f"Cal {suffix}"})
    in_calendar = await _created(graph, f"/me/calendars/{calendar}/events", EVENT)
    forms += [
        ("event", f"/me/calendars/{calendar}/events/{in_calendar}"),
        ("event", f"/users/{ADELE}/calendars/{calendar}/events/{in_calendar}"),
    ]
    group = await _created(graph, "/me/calendarGroups", {"name": f"Group {suffix}"})
    grouped_calendar = await _created(graph, f"/me/calendarGroups/{group}/calendars", {"name": f"Grouped {suffix}"})
    grouped = await _created(graph, f"/me/calendars/{grouped_calendar}/events", EVENT)
    forms += [
        ("event", f"/me/calendarGroups/{group}/calendars/{grouped_calendar}/events/{grouped}"),
        ("event", f"/users/{me}/calendarGroups/{group}/calendars/{grouped_calendar}/events/{grouped}"),
    ]
    return forms


async def test_every_url_form_adds_lists_gets_reads_and_deletes(graph: Graph) -> None:
    for kind, base in await _url_forms(graph):
        data = f"bytes for {base}".encode()
        created = await attach(graph, base, file_payload("note.txt", data))
        assert created["@odata.context"].endswith("/attachments/$entity"), base
        listed = await graph.get(f"{base}/attachments")
        assert listed.status_code == 200, (base, listed.text)
        assert created["id"] in [a["id"] for a in listed.json()["value"]]
        assert listed.json()["@odata.context"].endswith("/attachments")
        one = await graph.get(f"{base}/attachments/{created['id']}")
        assert one.status_code == 200 and base64.b64decode(one.json()["contentBytes"]) == data, base
        raw = await graph.get(f"{base}/attachments/{created['id']}/$value")
        assert raw.status_code == 200 and raw.content == data, base
        count = await graph.get(f"{base}/attachments/$count")
        assert (
            count.status_code == 200 and int(count.text) >= 1 and count.headers["content-type"].startswith("text/plain")
        )
        assert (await graph.delete(f"{base}/attachments/{created['id']}")).status_code == 204
        assert_graph_error(await graph.get(f"{base}/attachments/{created['id']}"), 404, "ErrorItemNotFound")
        assert_graph_error(await graph.get(f"{base}/attachments/{created['id']}/$value"), 404, "ErrorItemNotFound")
        assert_graph_error(await graph.delete(f"{base}/attachments/{created['id']}"), 404, "ErrorItemNotFound")
        assert kind in ("message", "event")


async def test_item_through_the_wrong_container_is_404(graph: Graph) -> None:
    message = await new_message(graph)  # in Drafts
    assert_graph_error(
        await graph.get(f"/me/mailFolders/inbox/messages/{message['id']}/attachments"), 404, "ErrorItemNotFound"
    )
    event = await new_event(graph)
    assert_graph_error(await graph.get(f"/me/messages/{event['id']}/attachments"), 404, "ErrorItemNotFound")
    assert_graph_error(await graph.get("/me/messages/not-an-id!/attachments"), 400, "ErrorInvalidIdMalformed")
    assert_graph_error(
        await graph.get(f"/me/messages/{message['id']}/attachments/bad!id"), 400, "ErrorInvalidIdMalformed"
    )


# ------------------------------------------------------------------------------------------------
# reads


async def test_list_includes_content_bytes_unless_selected_out(graph: Graph) -> None:
    message = await new_message(graph)
    base = f"/me/messages/{message['id']}"
    first = await attach(graph, base, file_payload("a.txt", b"first"))
    second = await attach(graph, base, file_payload("b.bin", b"\x00second", contentType="application/x-thing"))
    listed = (await graph.get(f"{base}/attachments")).json()["value"]
    assert [a["id"] for a in listed] == [first["id"], second["id"]]  # in the order they were added
    assert [base64.b64decode(a["contentBytes"]) for a in listed] == [b"first", b"\x00second"]
    assert all(a["@odata.type"] == FILE for a in listed)
    assert all("@odata.mediaContentType" not in a for a in listed)
    assert listed[1]["contentType"] == "application/x-thing"
    selected = (await graph.get(f"{base}/attachments?$select=name,size")).json()["value"]
    assert all(set(a) == {"@odata.type", "@odata.mediaContentType", "id", "name", "size"} for a in selected)
    with_bytes = (await graph.get(f"{base}/attachments?$select=name,contentBytes")).json()["value"]
    assert base64.b64decode(with_bytes[0]["contentBytes"]) == b"first"
    assert_graph_error(await graph.get(f"{base}/attachments?$select=colour"), 400)


async def test_top_skip_count_and_filter_on_the_list(graph: Graph) -> None:
    message = await new_message(graph)
    base = f"/me/messages/{message['id']}"
    ids = [(await attach(graph, base, file_payload(f"f{i}.txt", bytes([i]))))["id"] for i in range(3)]
    page = (await graph.get(f"{base}/attachments?$top=2&$count=true")).json()
    assert [a["id"] for a in page["value"]] == ids[:2]
    assert page["@odata.count"] == 3
    rest = (await graph.get(page["@odata.nextLink"])).json()
    assert [a["id"] for a in rest["value"]] == ids[2:] and "@odata.nextLink" not in rest
    skipped = (await graph.get(f"{base}/attachments?$skip=1")).json()
    assert [a["id"] for a in skipped["value"]] == ids[1:]
    # "/attachments endpoint does not support filters. If present, the $filter parameter is ignored."
    filtered = (await graph.get(f"{base}/attachments?$filter=name eq 'f0.txt'")).json()
    assert [a["id"] for a in filtered["value"]] == ids


async def test_expand_the_item_of_an_item_attachment(graph: Graph) -> None:
    message = await new_message(graph)
    base = f"/me/messages/{message['id']}"
    created = await attach(
        graph,
        base,
        {
            "@odata.type": ITEM,
            "name": "Reminder - please bring laptop",
            "item": {
                "@odata.type": "#microsoft.graph.message",
                "subject": "Reminder - please bring laptop",
                "body": {"contentType": "html", "content": "<p>laptop</p>"},
                "toRecipients": [{"emailAddress": {"name": "Alex", "address": ALEX}}],
                "attachments": [file_payload("inner.txt", b"inner bytes")],
            },
        },
    )
    plain = (await graph.get(f"{base}/attachments/{created['id']}")).json()
    assert "item" not in plain and "contentBytes" not in plain and plain["contentType"] is None
    for query in ("?$expand=microsoft.graph.itemattachment/item", "?$expand=microsoft.graph.itemAttachment/item"):
        for slash in ("", "/"):  # O365 writes .../attachments/{id}/?$expand=...
            response = await graph.get(f"{base}/attachments/{created['id']}{slash}{query}")
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["item@odata.context"].endswith(
                f"/attachments('{created['id'].replace('=', '%3D')}')/microsoft.graph.itemAttachment/item/$entity"
            )
            item = body["item"]
            assert item["@odata.type"] == "#microsoft.graph.message" and item["id"] == ""
            assert item["subject"] == "Reminder - please bring laptop"
            assert item["hasAttachments"] is True
            nested = item["attachments"][0]
            assert nested["@odata.type"] == FILE and base64.b64decode(nested["contentBytes"]) == b"inner bytes"
    listed = (await graph.get(f"{base}/attachments?$expand=microsoft.graph.itemAttachment/item")).json()
    assert listed["value"][0]["item"]["subject"] == "Reminder - please bring laptop"
    assert_graph_error(await graph.get(f"{base}/attachments/{created['id']}?$expand=item"), 400)


async def test_value_of_files_and_items(graph: Graph) -> None:
    message = await new_message(graph)
    base = f"/me/messages/{message['id']}"
    jpeg = await attach(graph, base, file_payload("flower", b"\xff\xd8\xff\xe0jpeg", contentType="image/jpeg"))
    text = await attach(graph, base, file_payload("notes.txt", b"plain words"))
    raw = await graph.get(f"{base}/attachments/{jpeg['id']}/$value")
    assert raw.content == b"\xff\xd8\xff\xe0jpeg"
    assert raw.headers["content-type"] == "image/jpeg" and raw.headers["content-length"] == "8"
    raw_text = await graph.get(f"{base}/attachments/{text['id']}/$value")
    assert raw_text.headers["content-type"] == "text/plain"  # the stored type, nothing added
    embedded = await attach(
        graph,
        base,
        {
            "@odata.type": ITEM,
            "name": "Lunch",
            "item": {
                "@odata.type": "microsoft.graph.message",
                "subject": "Let's go for lunch",
                "from": {"emailAddress": {"name": "Megan Bowen", "address": "megan@contoso.onmicrosoft.com"}},
                "toRecipients": [{"emailAddress": {"name": "Adele Vance", "address": ADELE}}],
                "body": {"contentType": "text", "content": "Does mid month work for you?"},
            },
        },
    )
    mime = await graph.get(f"{base}/attachments/{embedded['id']}/$value")
    assert mime.status_code == 200 and mime.headers["content-type"] == "message/rfc822"
    parsed = email.message_from_bytes(mime.content, policy=email.policy.default)
    assert parsed["Subject"] == "Let's go for lunch" and parsed["To"] == f"Adele Vance <{ADELE}>"
    assert parsed.get_content().strip() == "Does mid month work for you?"
    event_item = await attach(graph, base, {**SEED_003_ITEM})
    ics = await graph.get(f"{base}/attachments/{event_item['id']}/$value")
    assert ics.headers["content-type"].startswith("text/calendar")
    assert ics.text.startswith("BEGIN:VCALENDAR\r\nMETHOD:PUBLISH\r\n")
    assert "SUMMARY;LANGUAGE=en-US:Discuss gifts for children\r\n" in ics.text
    contact = await attach(
        graph,
        base,
        {
            "@odata.type": ITEM,
            "name": "Alex",
            "item": {
                "@odata.type": "#microsoft.graph.contact",
                "displayName": "Alex Wilber",
                "givenName": "Alex",
                "surname": "Wilber",
            },
        },
    )
    vcard = await graph.get(f"{base}/attachments/{contact['id']}/$value")
    assert vcard.headers["content-type"].startswith("text/vcard")
    assert vcard.text.startswith("BEGIN:VCARD\r\n") and "FN:Alex Wilber\r\n" in vcard.text


async def test_patch_on_an_attachment_is_refused(graph: Graph) -> None:
    message = await new_message(graph)
    base = f"/me/messages/{message['id']}"
    created = await attach(graph, base, file_payload(isInline=False))
    error = assert_graph_error(
        await graph.patch(f"{base}/attachments/{created['id']}", json={"contentId": "cid1", "isInline": True}), 405
    )
    assert "not allowed" in error["message"]
    after = (await graph.get(f"{base}/attachments/{created['id']}")).json()
    assert after["contentId"] is None and after["isInline"] is False
    assert_graph_error(await graph.put(f"{base}/attachments/{created['id']}", json={}), 405)
    assert_graph_error(await graph.delete(f"{base}/attachments"), 405)


# ------------------------------------------------------------------------------------------------
# hasAttachments and $expand=attachments on the item


async def test_has_attachments_follows_non_inline_attachments(graph: Graph) -> None:
    for kind, create in (("messages", new_message), ("events", new_event)):
        item = await create(graph)
        path = f"/me/{kind}/{item['id']}"
        assert (await graph.get(path)).json()["hasAttachments"] is False
        inline = await attach(graph, path, file_payload("logo.png", b"png", isInline=True, contentId="logo"))
        assert inline["isInline"] is True and inline["contentId"] == "logo"
        assert (await graph.get(path)).json()["hasAttachments"] is False  # inline only
        regular = await attach(graph, path, file_payload("report.pdf", b"%PDF"))
        assert (await graph.get(path)).json()["hasAttachments"] is True
        assert (await graph.delete(f"{path}/attachments/{regular['id']}")).status_code == 204
        assert (await graph.get(path)).json()["hasAttachments"] is False


async def test_expand_attachments_on_message_and_event(graph: Graph) -> None:
    message = await new_message(graph)
    created = await attach(graph, f"/me/messages/{message['id']}", file_payload("x.txt", b"expanded"))
    body = (await graph.get(f"/me/messages/{message['id']}?$expand=attachments")).json()
    assert [a["id"] for a in body["attachments"]] == [created["id"]]
    assert base64.b64decode(body["attachments"][0]["contentBytes"]) == b"expanded"
    assert body["attachments"][0]["@odata.type"] == FILE
    selected = (await graph.get(f"/me/messages/{message['id']}?$expand=attachments($select=name)")).json()
    assert set(selected["attachments"][0]) == {"@odata.type", "@odata.mediaContentType", "id", "name"}
    event = await new_event(graph)
    await attach(graph, f"/me/events/{event['id']}", SEED_003_ITEM)
    expanded = (await graph.get(f"/me/events/{event['id']}?$expand=attachments")).json()
    assert expanded["attachments"][0]["@odata.type"] == ITEM and "item" not in expanded["attachments"][0]


# ------------------------------------------------------------------------------------------------
# permissions


async def test_read_and_write_permissions(graph: Graph) -> None:
    message = await new_message(graph)
    event = await new_event(graph)
    mbase, ebase = f"/me/messages/{message['id']}", f"/me/events/{event['id']}"
    m_att = await attach(graph, mbase, file_payload())
    e_att = await attach(graph, ebase, file_payload())
    read_mail = {"scopes": ["Mail.Read"]}
    assert (await graph.get(f"{mbase}/attachments", **read_mail)).status_code == 200
    assert (await graph.get(f"{mbase}/attachments/{m_att['id']}/$value", **read_mail)).status_code == 200
    assert_graph_error(
        await graph.post(f"{mbase}/attachments", json=file_payload(), **read_mail), 403, "ErrorAccessDenied"
    )
    assert_graph_error(await graph.delete(f"{mbase}/attachments/{m_att['id']}", **read_mail), 403, "ErrorAccessDenied")
    assert_graph_error(await graph.get(f"{ebase}/attachments", **read_mail), 403, "ErrorAccessDenied")
    read_cal = {"scopes": ["Calendars.Read"]}
    assert (await graph.get(f"{ebase}/attachments/{e_att['id']}", **read_cal)).status_code == 200
    assert_graph_error(await graph.post(f"{ebase}/attachments", json=file_payload(), **read_cal), 403)
    assert_graph_error(await graph.get(f"{mbase}/attachments", **read_cal), 403)
    write_cal = {"scopes": ["Calendars.ReadWrite"]}
    assert (await graph.post(f"{ebase}/attachments", json=file_payload(), **write_cal)).status_code == 201
    assert_graph_error(await graph.post(f"{mbase}/attachments", json=file_payload(), **write_cal), 403)
    # nothing was added by the refused calls
    assert await attachment_ids(graph, mbase) == [m_att["id"]]


async def test_app_tokens_and_other_mailboxes(graph: Graph) -> None:
    alex_message = await new_message(graph, ALEX)
    alex_base = f"/users/{ALEX}/messages/{alex_message['id']}"
    # an app with Mail.ReadWrite on /users/{upn}
    created = await attach(
        graph, alex_base, file_payload("app.txt", b"from an app"), app=True, roles=["Mail.ReadWrite"]
    )
    assert created["@odata.context"].startswith(f"{graph.v1}/$metadata#users('alex%40contoso.onmicrosoft.com')/")
    assert_graph_error(
        await graph.post(f"{alex_base}/attachments", json=file_payload(), app=True, roles=["Calendars.ReadWrite"]), 403
    )
    assert (await graph.get(f"{alex_base}/attachments", app=True, roles=["Mail.Read"])).status_code == 200
    # app tokens cannot use /me
    assert_graph_error(await graph.get(f"/me/messages/{alex_message['id']}/attachments", app=True), 400, "BadRequest")
    # Adele's delegated token on Alex's mailbox: 403, nothing added
    assert_graph_error(await graph.post(f"{alex_base}/attachments", json=file_payload()), 403, "ErrorAccessDenied")
    assert_graph_error(await graph.get(f"{alex_base}/attachments/{created['id']}/$value"), 403, "ErrorAccessDenied")
    # Alex's item id under Adele's own mailbox: not found there
    assert_graph_error(
        await graph.post(f"/me/messages/{alex_message['id']}/attachments", json=file_payload()),
        404,
        "ErrorItemNotFound",
    )
    assert await attachment_ids(graph, alex_base, user=ALEX) == [created["id"]]


# ------------------------------------------------------------------------------------------------
# bad input: a Graph error and nothing stored


BAD_PAYLOADS: list[tuple[Any, int, str]] = [
    ({"@odata.type": FILE, "name": "a.txt", "contentBytes": "not base64!"}, 400, "BadRequest"),
    ({"@odata.type": FILE, "name": "a.txt", "contentBytes": "YWJj="}, 400, "BadRequest"),
    ({"name": "a.txt", "contentBytes": "YWJj"}, 422, "UnprocessableType"),
    ({"@odata.type": "#microsoft.graph.attachment", "name": "a.txt", "contentBytes": "YWJj"}, 422, "UnprocessableType"),
    ({"@odata.type": "#microsoft.graph.notAnAttachment", "name": "a.txt"}, 400, "BadRequest"),
    ({"@odata.type": FILE, "contentBytes": "YWJj"}, 400, "BadRequest"),
    ({"@odata.type": FILE, "name": "a.txt"}, 400, "BadRequest"),
    ({"@odata.type": FILE, "name": "a.txt", "contentBytes": "YWJj", "unknownProperty": 1}, 400, "BadRequest"),
    ({"@odata.type": FILE, "name": ["a"], "contentBytes": "YWJj"}, 400, "BadRequest"),
    ({"@odata.type": ITEM, "name": "x", "item": {"subject": "no type"}}, 422, "UnprocessableType"),
    ([file_payload()], 400, "BadRequest"),
]


@pytest.mark.parametrize(("payload", "status", "code"), BAD_PAYLOADS)
async def test_bad_payloads_store_nothing(graph: Graph, payload: Any, status: int, code: str) -> None:
    message = await new_message(graph)
    base = f"/me/messages/{message['id']}"
    kept = await attach(graph, base, file_payload("kept.txt"))
    blobs_before = [k async for k in graph.ctx.blobs.keys()] if graph.ctx is not None else None
    assert_graph_error(await graph.post(f"{base}/attachments", json=payload), status, code)
    assert await attachment_ids(graph, base) == [kept["id"]]
    if graph.ctx is not None:
        assert [k async for k in graph.ctx.blobs.keys()] == blobs_before


@pytest.mark.parametrize(
    "raw",
    [
        b'{"@odata.type": "#microsoft.graph.fileAttachment", "name": "a", "name": "b", "contentBytes": "YWJj"}',
        b'{"@odata.type": "#microsoft.graph.fileAttachment", "name": "a", "Name": "b", "contentBytes": "YWJj"}',
        b'{"@odata.type": "#microsoft.graph.fileAttachment", "name": "a", "contentBytes": "YWJj"',
        b"",
        b"\xff\xfe{}",
    ],
)
async def test_malformed_and_duplicate_json_stores_nothing(graph: Graph, raw: bytes) -> None:
    message = await new_message(graph)
    base = f"/me/messages/{message['id']}"
    response = await graph.post(f"{base}/attachments", content=raw, headers={"Content-Type": "application/json"})
    assert_graph_error(response, 400, "BadRequest")
    assert await attachment_ids(graph, base) == []


async def test_names_with_separators_and_control_characters_are_kept_verbatim(graph: Graph) -> None:
    message = await new_message(graph)
    base = f"/me/messages/{message['id']}"
    names = [
        "../../etc/passwd",
        "..\\..\\boot.ini",
        "a/b\\c:d*?<>|.txt",
        "tab\tnew\nline\x01\x1f\x7f.txt",
        "é 中文 🙂.txt",
    ]
    created = [await attach(graph, base, file_payload(name, name.encode())) for name in names]
    assert [c["name"] for c in created] == names
    listed = (await graph.get(f"{base}/attachments?$select=name")).json()["value"]
    assert [a["name"] for a in listed] == names
    for attachment, name in zip(created, names, strict=True):
        raw = await graph.get(f"{base}/attachments/{attachment['id']}/$value")
        assert raw.content == name.encode()
    if graph.ctx is not None:  # blob keys are ours, never derived from the name
        keys = [k async for k in graph.ctx.blobs.keys()]
        assert not any(".." in k or "passwd" in k for k in keys)


async def test_content_type_is_inferred_or_defaulted(graph: Graph) -> None:
    message = await new_message(graph)
    base = f"/me/messages/{message['id']}"
    docx = await attach(graph, base, file_payload("report.docx", b"PK"))
    assert docx["contentType"] == "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    unknown = await attach(graph, base, file_payload("README", b"?"))
    assert unknown["contentType"] == "application/octet-stream"
    given = await attach(graph, base, file_payload("x.txt", b"?", contentType="application/json"))
    assert given["contentType"] == "application/json"
    empty = await attach(graph, base, file_payload("empty.txt", b""))
    assert empty["contentBytes"] == "" and (await graph.get(f"{base}/attachments/{empty['id']}/$value")).content == b""


async def test_identical_bytes_round_trip(graph: Graph) -> None:
    message = await new_message(graph)
    base = f"/me/messages/{message['id']}"
    data = bytes(range(256)) * 257
    created = await attach(graph, base, file_payload("all-bytes.bin", data))
    one = (await graph.get(f"{base}/attachments/{created['id']}")).json()
    assert sha256(base64.b64decode(one["contentBytes"])) == sha256(data)
    assert sha256((await graph.get(f"{base}/attachments/{created['id']}/$value")).content) == sha256(data)
