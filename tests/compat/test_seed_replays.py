"""Raw HTTP replays of every request/response pair of the documented examples, on a message and on an event.

Seeds: 000 (concepts/outlook-large-attachments: createUploadSession, PUT ranges, $select, $value,
cancel), 003 (beta event-post-attachments: file, item and reference attachments) and 004 (the old
v1.0 message-post-attachments). Each replay checks the status, the headers the seed shows, and the
exact JSON keys with their casing; the conformance hook checks every v1.0 body against the metadata.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import httpx
import pytest
from tests.compat.clients import mint_token
from tests.helpers import ADELE, ServerProcess

SEED_SIZE = 3_483_322  # "flower" in the large-attachments walkthrough
FIRST = 2_097_152
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"
FLOWER = JPEG + bytes((i * 7919) % 251 for i in range(SEED_SIZE - len(JPEG)))
MENU_B64 = "bWFjIGFuZCBjaGVlc2UgdG9kYXk="  # the add-attachment examples' contentBytes ("mac and cheese today")
EXPIRY = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{7}Z$")


class Mailbox:
    """Adele's mailbox over raw HTTP: ``token``, her object id, the tenant id, a draft and an event."""

    def __init__(self, server: ServerProcess, http: httpx.Client) -> None:
        self.server, self.http = server, http
        self.token = mint_token(server.root, ADELE)
        self.auth = {"Authorization": f"Bearer {self.token}"}
        self.user_id = self.get("/me").json()["id"]
        self.tenant_id = http.get(f"{server.root}/_graphattach/info").json()["tenantId"]

    def url(self, path: str, version: str = "v1.0") -> str:
        return f"{self.server.root}/{version}{path}"

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(self.url(path), headers=self.auth, **kwargs)

    def post(self, path: str, body: Any, version: str = "v1.0") -> httpx.Response:
        return self.http.post(self.url(path, version), headers=self.auth, json=body)

    def new_item(self, kind: str) -> str:
        body: dict[str, Any] = {"subject": "seed replay"}
        if kind == "events":
            body |= {
                "start": {"dateTime": "2031-10-01T09:00:00", "timeZone": "UTC"},
                "end": {"dateTime": "2031-10-01T10:00:00", "timeZone": "UTC"},
            }
        response = self.post(f"/me/{kind}", body)
        assert response.status_code == 201, response.text
        item_id = response.json()["id"]
        assert isinstance(item_id, str)
        return item_id


@pytest.fixture
def mailbox(outlook_server: ServerProcess, raw: httpx.Client) -> Mailbox:
    return Mailbox(outlook_server, raw)


@pytest.fixture(params=["messages", "events"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def assert_graph_headers(response: httpx.Response) -> None:
    assert re.fullmatch(r"[0-9a-f-]{36}", response.headers["request-id"])
    assert response.headers["client-request-id"]
    if response.content:
        assert response.headers["content-type"].startswith("application/json")
        assert response.headers["odata-version"] == "4.0"


def create_session(mailbox: Mailbox, kind: str, item_id: str) -> dict[str, Any]:
    """Seed 000 step 1: ``POST .../attachments/createUploadSession``."""
    response = mailbox.post(
        f"/me/{kind}/{item_id}/attachments/createUploadSession",
        {"AttachmentItem": {"attachmentType": "file", "name": "flower", "size": SEED_SIZE}},
    )
    assert response.status_code == 201, response.text
    assert_graph_headers(response)
    body = response.json()
    assert list(body) == ["@odata.context", "uploadUrl", "expirationDateTime", "nextExpectedRanges"]
    assert body["@odata.context"] == mailbox.url("/$metadata#microsoft.graph.uploadSession")
    assert EXPIRY.match(body["expirationDateTime"])
    assert body["nextExpectedRanges"] == ["0-"]
    return body


def test_seed_000_upload_session_walkthrough(mailbox: Mailbox, raw: httpx.Client, kind: str) -> None:
    item_id = mailbox.new_item(kind)
    session = create_session(mailbox, kind, item_id)
    upload_url = session["uploadUrl"]
    segment = "messages" if kind == "messages" else "events"
    expected_path = (
        f"/api/gv1.0/users('{mailbox.user_id}@{mailbox.tenant_id}')/{segment}('{item_id}')/AttachmentSessions('"
    )
    assert unquote(urlsplit(upload_url).path).startswith(expected_path)
    assert "authtoken=" in urlsplit(upload_url).query

    # Step 2: the first range, no Authorization header.
    first = raw.put(
        upload_url,
        content=FLOWER[:FIRST],
        headers={"Content-Type": "application/octet-stream", "Content-Range": f"bytes 0-{FIRST - 1}/{SEED_SIZE}"},
    )
    assert first.status_code == 200, first.text
    assert first.headers["content-type"].startswith("application/json")
    body = first.json()
    assert list(body) == ["@odata.context", "ExpirationDateTime", "nextExpectedRanges"]  # Pascal + camel
    assert body["ExpirationDateTime"] == session["expirationDateTime"]
    assert body["nextExpectedRanges"] == [str(FIRST)]
    context_user = quote(f"{mailbox.user_id}@{mailbox.tenant_id}", safe="")
    assert body["@odata.context"].endswith(
        f"/api/gv1.0/$metadata#users('{context_user}')/{segment}('{quote(item_id, safe='')}')/AttachmentSessions/$entity"
    )

    # Step 3: the final range: 201, empty body, Location of the new attachment.
    final = raw.put(
        upload_url,
        content=FLOWER[FIRST:],
        headers={
            "Content-Type": "application/octet-stream",
            "Content-Range": f"bytes {FIRST}-{SEED_SIZE - 1}/{SEED_SIZE}",
        },
    )
    assert final.status_code == 201, final.text
    assert final.content == b"" and final.headers["content-length"] == "0"
    location = final.headers["location"]
    match = re.fullmatch(
        re.escape(f"/api/gv1.0/users('{mailbox.user_id}@{mailbox.tenant_id}')/{segment}('{item_id}')/Attachments('")
        + r"([A-Za-z0-9_=-]+)'\)",
        unquote(urlsplit(location).path),
    )
    assert match, location
    attachment_id = match.group(1)

    # Step 4: $select metadata, through the walkthrough's own URL form.
    walkthrough = f"/Users('{mailbox.user_id}@{mailbox.tenant_id}')/{segment.capitalize()}('{item_id}')/Attachments('{attachment_id}')"
    selected = mailbox.get(walkthrough, params={"$select": "lastModifiedDateTime,name,contentType,size,isInline"})
    assert selected.status_code == 200, selected.text
    assert_graph_headers(selected)
    meta = selected.json()
    assert list(meta) == [
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
    assert meta["@odata.type"] == "#microsoft.graph.fileAttachment"
    assert meta["@odata.mediaContentType"] == meta["contentType"] == "image/jpeg"  # sniffed: O365/SDK sent none
    assert (meta["id"], meta["name"], meta["size"], meta["isInline"]) == (attachment_id, "flower", 3_640_066, False)
    assert meta["@odata.context"].endswith(
        f"/v1.0/$metadata#users('{context_user}')/{segment}('{quote(item_id, safe='')}')/attachments/$entity"
    )

    # Step 4: the raw bytes.
    content = mailbox.get(walkthrough + "/$value")
    assert content.status_code == 200
    assert content.headers["content-type"] == "image/jpeg"
    assert content.headers["content-length"] == str(SEED_SIZE)
    assert content.content == FLOWER


def test_seed_000_cancel_the_upload_session(mailbox: Mailbox, raw: httpx.Client, kind: str) -> None:
    item_id = mailbox.new_item(kind)
    session = create_session(mailbox, kind, item_id)
    cancelled = raw.delete(session["uploadUrl"])
    assert cancelled.status_code == 204
    assert cancelled.content == b""
    gone = raw.put(
        session["uploadUrl"],
        content=FLOWER[:FIRST],
        headers={"Content-Type": "application/octet-stream", "Content-Range": f"bytes 0-{FIRST - 1}/{SEED_SIZE}"},
    )
    assert gone.status_code == 404
    assert mailbox.get(f"/me/{kind}/{item_id}/attachments").json()["value"] == []


def test_seed_000_session_smaller_than_the_minimum(mailbox: Mailbox, kind: str) -> None:
    """Seed 000 "Errors": ErrorAttachmentSizeShouldNotBeLessThanMinimumSize."""
    item_id = mailbox.new_item(kind)
    response = mailbox.post(
        f"/me/{kind}/{item_id}/attachments/createUploadSession",
        {"AttachmentItem": {"attachmentType": "file", "name": "small", "size": 1000}},
    )
    assert 400 <= response.status_code < 500
    assert response.json()["error"]["code"] == "ErrorAttachmentSizeShouldNotBeLessThanMinimumSize"


FILE_KEYS = [
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


@pytest.mark.parametrize("version", ["v1.0", "beta"])
def test_seed_003_004_post_file_attachment(mailbox: Mailbox, kind: str, version: str) -> None:
    """Seed 003 (event, beta) and 004 (message, v1.0): 201 + the attachment (004's "200 OK" is a doc error)."""
    item_id = mailbox.new_item(kind)
    response = mailbox.post(
        f"/me/{kind}/{item_id}/attachments",
        {"@odata.type": "#microsoft.graph.fileAttachment", "name": "menu.txt", "contentBytes": MENU_B64},
        version,
    )
    assert response.status_code == 201, response.text
    assert_graph_headers(response)
    body = response.json()
    assert list(body) == FILE_KEYS
    assert body["@odata.context"] == (
        f"{mailbox.server.root}/{version}/$metadata#users('{quote(mailbox.user_id, safe='')}')/"
        f"{kind}('{quote(item_id, safe='')}')/attachments/$entity"
    )
    assert body["@odata.type"] == "#microsoft.graph.fileAttachment"
    assert (body["name"], body["contentType"], body["size"], body["isInline"]) == ("menu.txt", "text/plain", 178, False)
    assert (body["contentId"], body["contentLocation"], body["contentBytes"]) == (None, None, MENU_B64)
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", body["lastModifiedDateTime"])


def test_seed_004_post_through_a_mail_folder(mailbox: Mailbox) -> None:
    """Seed 004's second URL form: ``/me/mailFolders/{id}/messages/{id}/attachments``."""
    item_id = mailbox.new_item("messages")
    response = mailbox.post(
        f"/me/mailFolders/drafts/messages/{item_id}/attachments",
        {"@odata.type": "#microsoft.graph.fileAttachment", "name": "name-value", "contentBytes": MENU_B64},
    )
    assert response.status_code == 201, response.text
    assert list(response.json()) == FILE_KEYS
    listed = mailbox.get(f"/me/messages/{item_id}/attachments").json()["value"]
    assert [a["name"] for a in listed] == ["name-value"]


def test_seed_003_post_item_attachment(mailbox: Mailbox, kind: str) -> None:
    item_id = mailbox.new_item(kind)
    response = mailbox.post(
        f"/me/{kind}/{item_id}/attachments",
        {
            "@odata.type": "#microsoft.graph.itemAttachment",
            "name": "Holiday event",
            "item": {
                "@odata.type": "microsoft.graph.event",
                "subject": "Discuss gifts for children",
                "body": {"contentType": "HTML", "content": "Let's look for funding!"},
                "start": {"dateTime": "2016-12-02T18:00:00", "timeZone": "Pacific Standard Time"},
                "end": {"dateTime": "2016-12-02T19:00:00", "timeZone": "Pacific Standard Time"},
            },
        },
    )
    assert response.status_code == 201, response.text
    assert_graph_headers(response)
    body = response.json()
    required = [
        "@odata.context",
        "@odata.type",
        "id",
        "lastModifiedDateTime",
        "name",
        "contentType",
        "size",
        "isInline",
    ]
    assert [k for k in body if k != "@odata.id"] == required
    assert body["@odata.type"] == "#microsoft.graph.itemAttachment"
    assert (body["name"], body["contentType"], body["isInline"]) == ("Holiday event", None, False)
    assert body["size"] > 0
    assert "contentBytes" not in body


def test_seed_003_post_reference_attachment_on_beta(mailbox: Mailbox) -> None:
    """The beta example sends ``"permission": "Edit"`` and ``"isFolder": "True"`` and gets ``"edit"``, ``true``."""
    item_id = mailbox.new_item("events")
    response = mailbox.post(
        f"/me/events/{item_id}/attachments",
        {
            "@odata.type": "#microsoft.graph.referenceAttachment",
            "name": "Personal pictures",
            "sourceUrl": "https://contoso.com/personal/mario_contoso_net/Documents/Pics",
            "providerType": "oneDriveConsumer",
            "permission": "Edit",
            "isFolder": "True",
        },
        "beta",
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
        "sourceUrl",
        "providerType",
        "thumbnailUrl",
        "previewUrl",
        "permission",
        "isFolder",
    ]
    assert (body["permission"], body["isFolder"], body["contentType"]) == ("edit", True, None)
    assert (body["thumbnailUrl"], body["previewUrl"]) == (None, None)
