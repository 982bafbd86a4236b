"""The metadata validator (tests/schema.py) accepts Microsoft's own examples and rejects departures."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tests.schema import ERROR_TYPE, ConformanceLog, assert_conforms, model, schema_errors, type_from_context

# Seed 000 (concepts/outlook-large-attachments), the $select answer.
SEED_SELECT = {
    "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users('a8e8e219-4931-95c1-b73d-62626fd79c32%4072aa88bf-76f0-494f-91ab-2d7cd730db47')/messages('AAMkADI5MAAIT3drCAAA%3D')/attachments/$entity",
    "@odata.type": "#microsoft.graph.fileAttachment",
    "@odata.mediaContentType": "image/jpeg",
    "id": "AAMkADI5MAAIT3drCAAABEgAQANAqbAe7qaROhYdTnUQwXm0=",
    "lastModifiedDateTime": "2019-09-24T23:27:43Z",
    "name": "flower",
    "contentType": "image/jpeg",
    "size": 3640066,
    "isInline": False,
}
# Seed 003 (event-post-attachments), the file attachment answer.
SEED_FILE = {
    "@odata.context": "https://graph.microsoft.com/beta/$metadata#users('cd209b0b-3f83-4c35-82d2-d88a61820480')/events('AAMkAGI1AAAt9AHjAAA%3D')/attachments/$entity",
    "@odata.type": "#microsoft.graph.fileAttachment",
    "id": "AAMkAGI1AAAt9AHjAAABEgAQAEdBogju-MJEu6Ngg-1_W0g=",
    "lastModifiedDateTime": "2017-04-15T03:21:49Z",
    "name": "menu.txt",
    "contentType": "text/plain",
    "size": 178,
    "isInline": False,
    "contentId": None,
    "contentLocation": None,
    "contentBytes": "bWFjIGFuZCBjaGVlc2UgdG9kYXk=",
}
# Seed 003, the beta reference attachment: sourceUrl & co. do not exist in v1.0.
SEED_BETA_REFERENCE = {
    "@odata.context": "https://graph.microsoft.com/beta/$metadata#users/ddfcd489-628b-40d7-b48b-57002df800e5/events/AAMkAGE1M88AADUv0uAAAG%3D/attachments/$entity",
    "@odata.type": "#microsoft.graph.referenceAttachment",
    "id": "AAMkAGE1Mg72tgf7hJp0PCGVCIc0g=",
    "lastModifiedDateTime": "2016-03-12T06:04:38Z",
    "name": "Personal pictures",
    "contentType": None,
    "size": 382,
    "isInline": False,
    "sourceUrl": "https://contoso.com/personal/mario_contoso_net/Documents/Pics",
    "providerType": "oneDriveConsumer",
    "thumbnailUrl": None,
    "previewUrl": None,
    "permission": "edit",
    "isFolder": True,
}
# Seed 000, createUploadSession answer.
SEED_SESSION = {
    "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#microsoft.graph.uploadSession",
    "uploadUrl": "https://outlook.office.com/api/v2.0/Users('a8e8e219@72aa88bf')/Messages('AAMkADI5MAAIT3drCAAA=')/AttachmentSessions('AAMkADI5MAAIT3k0tAAA=')?authtoken=eyJhbGciOiJSUzI1NiIsImtpZCI6IktmYUNIUlN6bllHMmNI",
    "expirationDateTime": "2019-09-25T01:09:30.7671707Z",
    "nextExpectedRanges": ["0-"],
}
# Seed 000, answer to an intermediate PUT on the upload URL (Outlook, not Graph).
SEED_PROGRESS = {
    "@odata.context": "https://outlook.office.com/api/v2.0/$metadata#Users('a8e8e219-4931-95c1-b73d-62626fd79c32%4072aa88bf-76f0-494f-91ab-2d7cd730db47')/Messages('AAMkADI5MAAIT3drCAAA%3D')/AttachmentSessions/$entity",
    "ExpirationDateTime": "2019-09-25T01:09:30.7671707Z",
    "nextExpectedRanges": ["2097152"],
}
MESSAGE = {
    "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users('adele%40contoso.onmicrosoft.com')/messages/$entity",
    "@odata.etag": 'W/"CQAAABYAAAC4ofQHEIqCSbQPot83AFcbAAAw+Rgs"',
    "id": "AAMkAGUAAAwTW09AAA=",
    "createdDateTime": "2024-05-01T10:00:00Z",
    "lastModifiedDateTime": "2024-05-01T10:00:01Z",
    "changeKey": "CQAAABYAAAC4ofQHEIqCSbQPot83AFcbAAAw+Rgs",
    "categories": [],
    "receivedDateTime": "2024-05-01T10:00:00Z",
    "sentDateTime": None,
    "hasAttachments": True,
    "internetMessageId": "<abc@contoso.onmicrosoft.com>",
    "subject": "Quarterly numbers",
    "bodyPreview": "See attached",
    "importance": "normal",
    "parentFolderId": "AAMkAGUAAAAAAEMAAA=",
    "conversationId": "AAQkAGUAAAQAAAA=",
    "conversationIndex": "AQHZ",
    "isDeliveryReceiptRequested": False,
    "isReadReceiptRequested": False,
    "isRead": True,
    "isDraft": True,
    "webLink": "https://outlook.office365.com/owa/?ItemID=AAMkAGUAAAwTW09AAA%3D",
    "inferenceClassification": "focused",
    "body": {"contentType": "html", "content": "<p>See attached</p>"},
    "sender": None,
    "from": None,
    "toRecipients": [{"emailAddress": {"name": "Alex Wilber", "address": "alex@contoso.onmicrosoft.com"}}],
    "ccRecipients": [],
    "bccRecipients": [],
    "replyTo": [],
    "flag": {"flagStatus": "notFlagged"},
}
ERROR = {
    "error": {
        "code": "ErrorItemNotFound",
        "message": "The specified object was not found in the store.",
        "innerError": {
            "date": "2020-08-09T06:14:32",
            "request-id": "e05756c9-0a21-4d25-8a5f-bb8a1d7c0f4a",
            "client-request-id": "e05756c9-0a21-4d25-8a5f-bb8a1d7c0f4a",
        },
    }
}


def changed(body: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(body)
    for key, value in changes.items():
        out[key.replace("__", ".").replace("_AT_", "@")] = value
    return out


@pytest.mark.parametrize(
    ("body", "type_name"),
    [
        (SEED_SELECT, None),
        (SEED_FILE, None),
        (SEED_SESSION, None),
        (SEED_PROGRESS, "outlook.attachmentSessionProgress"),
        (MESSAGE, None),
        (ERROR, ERROR_TYPE),
    ],
    ids=["seed-select", "seed-file", "seed-session", "seed-progress", "message", "error"],
)
def test_schema_accepts_microsoft_examples(body: dict[str, Any], type_name: str | None) -> None:
    assert schema_errors(body, type_name) == []


def test_schema_records_its_source() -> None:
    source = model().source
    assert source["repository"] == "microsoftgraph/msgraph-metadata"
    assert source["path"] == "schemas/v1.0-Prod.csdl"
    assert len(source["commit"]) == 40


def test_schema_attachment_matches_the_csdl_facts() -> None:
    m = model()
    props = m.properties("microsoft.graph.fileAttachment")
    assert props["size"] == {"type": "Edm.Int32", "nullable": False}
    assert props["isInline"] == {"type": "Edm.Boolean", "nullable": False}
    assert props["contentBytes"]["type"] == "Edm.Binary"
    assert m.types["microsoft.graph.attachment"]["abstract"] is True
    assert m.properties("microsoft.graph.attachmentItem")["size"]["type"] == "Edm.Int64"
    assert m.enums["microsoft.graph.attachmentType"]["members"] == ["file", "item", "reference"]


def test_schema_rejects_v1_unknown_properties_of_the_beta_reference_attachment() -> None:
    errors = schema_errors(SEED_BETA_REFERENCE)
    undeclared = sorted(e.split("property ")[1] for e in errors if "has no property" in e)
    assert undeclared == [
        "'isFolder'",
        "'permission'",
        "'previewUrl'",
        "'providerType'",
        "'sourceUrl'",
        "'thumbnailUrl'",
    ]


def test_schema_rejects_pascal_case_with_a_hint() -> None:
    body = {k: v for k, v in SEED_PROGRESS.items() if k != "@odata.context"}
    assert schema_errors(body, "microsoft.graph.uploadSession") == [
        "$.ExpirationDateTime: microsoft.graph.uploadSession has no property 'ExpirationDateTime'"
        " (wrong casing: the metadata spells it 'expirationDateTime')"
    ]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"ContentType": "image/jpeg"}, "wrong casing"),
        ({"size": "3640066"}, "is not a valid Edm.Int32"),
        ({"size": 2**31}, "is not a valid Edm.Int32"),
        ({"size": None}, "Nullable=false"),
        ({"isInline": None}, "Nullable=false"),
        ({"isInline": "false"}, "is not a valid Edm.Boolean"),
        ({"lastModifiedDateTime": "2019-09-24T23:27:43"}, "is not a valid Edm.DateTimeOffset"),
        ({"contentBytes": "not base64!"}, "is not a valid Edm.Binary"),
        ({"contentBytes": "bWFj="}, "is not a valid Edm.Binary"),
        ({"@odata.type": "microsoft.graph.fileAttachment"}, "must be '#'"),
        ({"@odata.type": "#microsoft.graph.fileattachment"}, "wrong casing"),
        ({"@odata.type": "#microsoft.graph.message"}, "is not microsoft.graph.attachment or derived"),
        ({"@microsoft.graph.downloadUrl": "x"}, "not OData control information"),
        ({"@odata.bogus": "x"}, "not an instance annotation"),
        ({"contentBytes@odata.etag": "x"}, "not a property annotation"),
        ({"contentBytes@odata.count": 1}, "collection-valued properties only"),
        ({"sourceUrl": "https://x"}, "has no property 'sourceUrl'"),
    ],
)
def test_schema_rejects_departures(change: dict[str, Any], expected: str) -> None:
    body = {**SEED_SELECT, **change}
    errors = schema_errors(body)
    assert any(expected in e for e in errors), errors


def test_schema_abstract_attachment_needs_odata_type() -> None:
    body = {k: v for k, v in SEED_SELECT.items() if k != "@odata.type"}
    assert schema_errors(body) == [
        "$: microsoft.graph.attachment is abstract: the object needs @odata.type naming its concrete type"
    ]


def test_schema_checks_nested_complex_types() -> None:
    body = copy.deepcopy(MESSAGE)
    body["toRecipients"][0]["emailAddress"]["Address"] = "x@y"
    body["body"]["contentType"] = "HTML"
    body["importance"] = "Normal"
    errors = schema_errors(body)
    assert any("toRecipients[0].emailAddress.Address" in e and "wrong casing" in e for e in errors), errors
    assert any("$.body.contentType" in e and "bodyType" in e and "'html'" in e for e in errors), errors
    assert any("$.importance" in e and "'normal'" in e for e in errors), errors
    assert len(errors) == 3


def test_schema_item_attachment_with_expanded_item() -> None:
    body = {
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users('x')/messages('y')/attachments/$entity",
        "@odata.type": "#microsoft.graph.itemAttachment",
        "id": "AAMkADA1M-zAAABEgAQAHQZYzi3RDlKvjsgVK_E6lE=",
        "lastModifiedDateTime": "2018-01-23T21:50:22Z",
        "name": "Attached Message",
        "contentType": None,
        "size": 2473,
        "isInline": False,
        "item@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users('x')/messages('y')/attachments('z')/microsoft.graph.itemAttachment/item/$entity",
        "item": {"@odata.type": "#microsoft.graph.message", "id": "", "subject": "Reminder", "hasAttachments": False},
    }
    assert schema_errors(body) == []
    body["item"]["Subject"] = "x"
    assert schema_errors(body) == [
        "$.item.Subject: microsoft.graph.message has no property 'Subject' (wrong casing: the metadata spells it 'subject')"
    ]


def test_schema_collections() -> None:
    item = {k: v for k, v in SEED_FILE.items() if k != "@odata.context"}
    body = {
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users('x')/messages('y')/attachments",
        "value": [item],
        "@odata.nextLink": "https://graph.microsoft.com/v1.0/users('x')/messages('y')/attachments?$skip=1",
    }
    assert schema_errors(body) == []
    assert schema_errors({"Value": [item]}, "Collection(microsoft.graph.attachment)") == [
        "$: a collection response needs 'value'",
        "$.Value: not allowed in a collection of microsoft.graph.attachment (wrong casing: the metadata spells it 'value')",
    ]
    assert schema_errors({"value": [{**item, "size": -1.5}]}, "Collection(microsoft.graph.attachment)") == [
        "$.value[0].size: -1.5 is not a valid Edm.Int32"
    ]


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        ("https://h/v1.0/$metadata#users('a%40b')/messages('x%3D')/attachments/$entity", "microsoft.graph.attachment"),
        ("https://h/v1.0/$metadata#users/ddfcd489/events/AAM%3D/attachments/$entity", "microsoft.graph.attachment"),
        ("https://h/v1.0/$metadata#users('a')/events('b')/attachments", "Collection(microsoft.graph.attachment)"),
        (
            "https://h/v1.0/$metadata#users('a')/mailFolders('inbox')/childFolders",
            "Collection(microsoft.graph.mailFolder)",
        ),
        ("https://h/v1.0/$metadata#users('a')/mailFolders('drafts')/messages/$entity", "microsoft.graph.message"),
        ("https://h/v1.0/$metadata#users('a')/messages(subject,from)", "Collection(microsoft.graph.message)"),
        ("https://h/v1.0/$metadata#users('a')/calendar/events/$entity", "microsoft.graph.event"),
        ("https://h/v1.0/$metadata#me/events", "Collection(microsoft.graph.event)"),
        ("https://h/v1.0/$metadata#users/$entity", "microsoft.graph.user"),
        ("https://h/v1.0/$metadata#users", "Collection(microsoft.graph.user)"),
        ("https://h/v1.0/$metadata#users(displayName,mail)", "Collection(microsoft.graph.user)"),
        ("https://h/v1.0/$metadata#microsoft.graph.uploadSession", "microsoft.graph.uploadSession"),
        ("https://h/v1.0/$metadata#Collection(microsoft.graph.attachment)", "Collection(microsoft.graph.attachment)"),
    ],
)
def test_schema_type_from_context(context: str, expected: str) -> None:
    assert type_from_context(context) == expected


def test_schema_type_from_context_rejects_unknown_navigation() -> None:
    with pytest.raises(ValueError, match="has no navigation property 'Attachments'"):
        type_from_context("https://h/v1.0/$metadata#users('a')/messages('b')/Attachments/$entity")


def test_schema_error_body() -> None:
    assert schema_errors(ERROR, ERROR_TYPE) == []
    bad = {"error": {"code": "X", "message": "m", "innererror": {}}}
    assert schema_errors(bad, ERROR_TYPE) == [
        "$.error.innererror: microsoft.graph.ODataErrors.MainError has no property 'innererror' (wrong casing: the metadata spells it 'innerError')"
    ]
    assert schema_errors({"error": {"code": "X"}}, ERROR_TYPE) == []
    assert schema_errors({"error": {"code": 404, "message": "m"}}, ERROR_TYPE) == [
        "$.error.code: 404 is not a valid Edm.String"
    ]


def test_schema_assert_conforms_message_lists_every_failure() -> None:
    with pytest.raises(AssertionError) as info:
        assert_conforms({**SEED_SELECT, "Name": "x", "size": "1"})
    text = str(info.value)
    assert "'Name'" in text and "Edm.Int32" in text


class _Request:
    method = "GET"
    url = "http://127.0.0.1/v1.0/me"


class _Response:
    def __init__(self, status: int, body: Any, content_type: str = "application/json") -> None:
        self.status_code = status
        self.headers = {"content-type": content_type}
        self.request = _Request()
        self.content = json.dumps(body).encode()


def test_schema_conformance_log_checks_json_bodies_only() -> None:
    log = ConformanceLog()
    log.requests_hook(_Response(200, SEED_SELECT))
    log.requests_hook(_Response(404, ERROR))
    log.requests_hook(_Response(200, {"x": 1}, content_type="application/octet-stream"))
    assert log.checked == 2
    log.assert_clean()
    log.requests_hook(_Response(200, {**SEED_SELECT, "Size": 1}))
    log.requests_hook(_Response(400, {"error": "bad"}))
    assert log.checked == 4
    assert len(log.failures) == 2
    with pytest.raises(AssertionError, match="'Size'"):
        log.assert_clean()


def test_schema_conformance_log_classifier_can_name_or_skip() -> None:
    log = ConformanceLog(classify=lambda r: "outlook.attachmentSessionProgress" if r.status_code == 200 else "")
    log.requests_hook(_Response(200, SEED_PROGRESS))
    log.requests_hook(_Response(201, {"anything": True}))
    assert log.checked == 1
    log.assert_clean()


def test_schema_accepts_only_listed_dynamic_properties_of_open_types() -> None:
    base = {"@odata.type": "#microsoft.graph.event", "id": "AAMkAA=", "isDraft": False}
    assert schema_errors({**base, "occurrenceId": None}, "microsoft.graph.event") == []
    assert schema_errors({**base, "occurrenceId": 3}, "microsoft.graph.event") == [
        "$.occurrenceId: 3 is not a valid Edm.String"
    ]
    assert schema_errors({**base, "AutoRoomBookingOptions": None}, "microsoft.graph.event") == [
        "$.AutoRoomBookingOptions: microsoft.graph.event has no property 'AutoRoomBookingOptions'"
    ]
    assert schema_errors({"id": "x", "occurrenceId": None}, "microsoft.graph.message") == [
        "$.occurrenceId: microsoft.graph.message has no property 'occurrenceId'"
    ]
