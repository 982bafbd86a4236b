"""Attachment payload parsing, JSON shapes, base64 streaming and item MIME (sans I/O)."""

from __future__ import annotations

import base64
import email
import email.policy
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graphattach.domain.content_types import guess_content_type
from graphattach.domain.errors import GraphError
from graphattach.domain.models import Attachment
from graphattach.protocol.attachments import (
    FILE_TYPE,
    STREAM_CHUNK,
    FileInput,
    ItemInput,
    ReferenceInput,
    attachment_json,
    base64_length,
    base64_stream,
    decode_base64,
    embedded_item_json,
    expand_item_requested,
    lift_content_bytes,
    loads_attachment,
    parse_attachment,
)
from graphattach.protocol.item_mime import render_contact, render_event, render_message
from graphattach.protocol.jsonio import loads_object

STAMP = datetime(2017, 4, 15, 3, 21, 49, 123456, tzinfo=UTC)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _error(exc: pytest.ExceptionInfo[GraphError]) -> tuple[int, str]:
    return exc.value.status, exc.value.code


# ---------------------------------------------------------------- parsing


def test_seed_003_file_payload() -> None:
    parsed = parse_attachment(
        {
            "@odata.type": "#microsoft.graph.fileAttachment",
            "name": "menu.txt",
            "contentBytes": "bWFjIGFuZCBjaGVlc2UgdG9kYXk=",
        }
    )
    assert isinstance(parsed, FileInput)
    assert parsed.content == b"mac and cheese today"
    assert parsed.content_type == "text/plain"  # inferred from the name
    assert parsed.is_inline is False and parsed.content_id is None


def test_type_is_matched_without_hash_and_case_insensitively() -> None:
    parsed = parse_attachment({"@odata.type": "Microsoft.Graph.FILEATTACHMENT", "name": "a", "contentBytes": ""})
    assert isinstance(parsed, FileInput) and parsed.content == b""
    assert parsed.content_type == "application/octet-stream"


def test_missing_or_abstract_type_is_422() -> None:
    for payload in ({"name": "a", "contentBytes": "YQ=="}, {"@odata.type": "#microsoft.graph.attachment", "name": "a"}):
        with pytest.raises(GraphError) as raised:
            parse_attachment(payload)
        assert _error(raised) == (422, "UnprocessableType")


def test_unknown_type_is_400() -> None:
    with pytest.raises(GraphError) as raised:
        parse_attachment({"@odata.type": "#microsoft.graph.message", "name": "a"})
    assert _error(raised) == (400, "BadRequest")
    assert "microsoft.graph.message" in raised.value.message


@pytest.mark.parametrize(
    "value",
    ["bWFj!", "bWF", "bW-j", "bW_j", "====", "é", "bWFj====", "YQ="],
)
def test_invalid_base64_is_400(value: str) -> None:
    with pytest.raises(GraphError) as raised:
        parse_attachment({"@odata.type": FILE_TYPE, "name": "a", "contentBytes": value})
    assert _error(raised) == (400, "BadRequest")
    assert "Edm.Binary" in raised.value.message and "contentBytes" in raised.value.message


def test_base64_whitespace_is_ignored_like_dotnet() -> None:
    assert decode_base64("bWFj\r\nIGFu ZCBj\taGVl") == b"mac and chee"


@given(st.binary(max_size=300))
def test_base64_roundtrip(data: bytes) -> None:
    assert decode_base64(base64.b64encode(data).decode()) == data


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"@odata.type": FILE_TYPE, "contentBytes": "YQ=="}, "'name'"),
        ({"@odata.type": FILE_TYPE, "name": "a"}, "'contentBytes'"),
        ({"@odata.type": FILE_TYPE, "name": None, "contentBytes": "YQ=="}, "'name'"),
        ({"@odata.type": FILE_TYPE, "name": 5, "contentBytes": "YQ=="}, "Edm.String"),
        ({"@odata.type": FILE_TYPE, "name": "a", "contentBytes": "YQ==", "isInline": None}, "isInline"),
        ({"@odata.type": FILE_TYPE, "name": "a", "contentBytes": "YQ==", "isInline": "maybe"}, "Edm.Boolean"),
        ({"@odata.type": FILE_TYPE, "name": "a", "contentBytes": "YQ==", "colour": "red"}, "'colour'"),
        ({"@odata.type": FILE_TYPE, "name": "a", "Name": "b", "contentBytes": "YQ=="}, "Multiple properties"),
        ({"@odata.type": "#microsoft.graph.itemAttachment", "name": "a"}, "'item'"),
        ({"@odata.type": "#microsoft.graph.itemAttachment", "item": "message or event entity"}, "JSON object"),
        ({"@odata.type": "#microsoft.graph.itemAttachment", "item": {"@odata.type": "microsoft.graph.user"}}, "user"),
    ],
)
def test_bad_fields_are_400(payload: dict[str, object], fragment: str) -> None:
    with pytest.raises(GraphError) as raised:
        parse_attachment(payload)
    assert raised.value.status == 400
    assert fragment in raised.value.message


def test_loose_mode_ignores_unknown_properties() -> None:
    parsed = parse_attachment(
        {"@odata.type": FILE_TYPE, "name": "a", "contentBytes": "YQ==", "colour": "red"}, strict=False
    )
    assert isinstance(parsed, FileInput) and parsed.content == b"a"


def test_read_only_properties_are_accepted_and_ignored() -> None:
    parsed = parse_attachment(
        {
            "@odata.type": FILE_TYPE,
            "id": "x",
            "size": 1,
            "lastModifiedDateTime": "2020-01-01T00:00:00Z",
            "contentLocation": None,
            "name": "a.png",
            "contentBytes": "YQ==",
            "isInline": "TRUE",
            "contentId": "pic1",
        }
    )
    assert isinstance(parsed, FileInput)
    assert (parsed.content_type, parsed.is_inline, parsed.content_id) == ("image/png", True, "pic1")


def test_duplicate_json_keys_are_refused() -> None:
    with pytest.raises(GraphError) as raised:
        loads_object(b'{"@odata.type": "#microsoft.graph.fileAttachment", "name": "a", "name": "b"}')
    assert "Multiple properties with the name 'name'" in raised.value.message
    with pytest.raises(GraphError):
        loads_object(b'{"item": {"subject": "a", "Subject": "b"}}')
    with pytest.raises(GraphError):
        loads_object(b'{"a": NaN}')
    with pytest.raises(GraphError):
        loads_object(b"[1, 2]")
    with pytest.raises(GraphError):
        loads_object(b"\xff\xfe")
    assert loads_object(b'{"a": {"b": 1}}') == {"a": {"b": 1}}


def test_item_attachment_with_unhashed_nested_type() -> None:
    parsed = parse_attachment(
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
        }
    )
    assert isinstance(parsed, ItemInput)
    assert parsed.item_kind == "event"
    assert parsed.item["@odata.type"] == "#microsoft.graph.event"
    assert parsed.content_type is None and parsed.name == "Holiday event"


def test_item_without_type_is_422_and_name_defaults_to_subject() -> None:
    with pytest.raises(GraphError) as raised:
        parse_attachment({"@odata.type": "#microsoft.graph.itemAttachment", "item": {"subject": "x"}})
    assert raised.value.status == 422
    parsed = parse_attachment(
        {
            "@odata.type": "#microsoft.graph.itemAttachment",
            "item": {"@odata.type": "#microsoft.graph.message", "subject": "Hi"},
        }
    )
    assert isinstance(parsed, ItemInput) and parsed.name == "Hi"


def test_nested_attachments_are_validated_and_depth_limited() -> None:
    with pytest.raises(GraphError) as raised:
        parse_attachment(
            {
                "@odata.type": "#microsoft.graph.itemAttachment",
                "item": {
                    "@odata.type": "#microsoft.graph.message",
                    "attachments": [{"@odata.type": FILE_TYPE, "name": "a", "contentBytes": "!!"}],
                },
            }
        )
    assert "Edm.Binary" in raised.value.message
    payload: dict[str, object] = {"@odata.type": FILE_TYPE, "name": "leaf", "contentBytes": "YQ=="}
    for _ in range(30):
        payload = {
            "@odata.type": "#microsoft.graph.itemAttachment",
            "item": {"@odata.type": "#microsoft.graph.message", "attachments": [payload]},
        }
    with pytest.raises(GraphError) as raised:
        parse_attachment(payload)
    assert raised.value.code == "ErrorAttachmentNestLevelLimitExceeded"
    assert raised.value.inner_error is False


SEED_REFERENCE = {
    "@odata.type": "#microsoft.graph.referenceAttachment",
    "name": "Personal pictures",
    "sourceUrl": "https://contoso.com/personal/mario_contoso_net/Documents/Pics",
    "providerType": "oneDriveConsumer",
    "permission": "Edit",
    "isFolder": "True",
}


def test_reference_attachment_beta_normalises_lax_values() -> None:
    parsed = parse_attachment(SEED_REFERENCE, version="beta")
    assert isinstance(parsed, ReferenceInput)
    assert parsed.properties == {
        "sourceUrl": "https://contoso.com/personal/mario_contoso_net/Documents/Pics",
        "providerType": "oneDriveConsumer",
        "thumbnailUrl": None,
        "previewUrl": None,
        "permission": "edit",
        "isFolder": True,
    }


def test_reference_attachment_rules_per_version() -> None:
    for strict in (True, False):
        with pytest.raises(GraphError) as raised:
            parse_attachment(SEED_REFERENCE, version="v1.0", strict=strict)
        assert raised.value.status == 400 and "referenceAttachment" in raised.value.message
    plain = parse_attachment({"@odata.type": "#microsoft.graph.referenceAttachment", "name": "x"}, version="v1.0")
    assert isinstance(plain, ReferenceInput) and plain.properties == {}
    with pytest.raises(GraphError) as raised:
        parse_attachment({"@odata.type": "#microsoft.graph.referenceAttachment", "name": "x"}, version="beta")
    assert "sourceUrl" in raised.value.message
    with pytest.raises(GraphError) as raised:
        parse_attachment({**SEED_REFERENCE, "permission": "owner"}, version="beta")
    assert "Requested value 'owner' was not found." in raised.value.message


def test_content_type_guess() -> None:
    assert guess_content_type("report.docx").endswith("wordprocessingml.document")
    assert guess_content_type("../../etc/passwd") == "application/octet-stream"


# ---------------------------------------------------------------- shapes


def _attachment(**changes: object) -> Attachment:
    fields: dict[str, object] = {
        "id": "AAMkAGI1AAAt9AHjAAABEgAQAEdBogju-MJEu6Ngg-1_W0g=",
        "user_id": "u",
        "item_id": "i",
        "kind": "file",
        "name": "menu.txt",
        "content_type": "text/plain",
        "size": 178,
        "last_modified": STAMP,
        "content_length": 20,
        "blob_key": "k",
    }
    fields.update(changes)
    return Attachment(**fields)  # type: ignore[arg-type]


def test_file_shape_matches_seed_key_order() -> None:
    body = attachment_json(_attachment())
    assert list(body) == [
        "@odata.type",
        "id",
        "lastModifiedDateTime",
        "name",
        "contentType",
        "size",
        "isInline",
        "contentId",
        "contentLocation",
    ]
    assert body["lastModifiedDateTime"] == "2017-04-15T03:21:49Z"
    assert body["@odata.type"] == "#microsoft.graph.fileAttachment"
    selected = attachment_json(_attachment(), media_type_annotation=True)
    assert list(selected)[:3] == ["@odata.type", "@odata.mediaContentType", "id"]


def test_reference_shape_per_version() -> None:
    reference = _attachment(
        kind="reference",
        content_type=None,
        content_length=0,
        blob_key=None,
        data={"reference": parse_attachment(SEED_REFERENCE, version="beta").properties},  # type: ignore[union-attr]
    )
    beta = attachment_json(reference, version="beta")
    assert list(beta)[-6:] == ["sourceUrl", "providerType", "thumbnailUrl", "previewUrl", "permission", "isFolder"]
    assert beta["permission"] == "edit" and beta["isFolder"] is True
    v1 = attachment_json(reference, version="v1.0")
    assert "sourceUrl" not in v1 and list(v1)[-1] == "isInline"


def test_embedded_item_has_empty_id_and_hashed_type() -> None:
    item = {
        "@odata.type": "#microsoft.graph.message",
        "subject": "Reminder",
        "attachments": [
            {
                "@odata.type": FILE_TYPE,
                "name": "n.txt",
                "contentType": "text/plain",
                "isInline": False,
                "contentBytes": "aGk=",
            }
        ],
    }
    body = embedded_item_json(_attachment(kind="item", data={"item": item}), version="v1.0")
    assert body["@odata.type"] == "#microsoft.graph.message" and body["id"] == ""
    assert body["subject"] == "Reminder" and body["hasAttachments"] is True
    nested = body["attachments"][0]
    assert nested["@odata.type"] == FILE_TYPE and nested["contentBytes"] == "aGk="
    assert nested["@odata.mediaContentType"] == "text/plain"


def test_expand_option_matching() -> None:
    assert expand_item_requested(["microsoft.graph.itemattachment/item"])
    assert expand_item_requested(["Microsoft.Graph.ItemAttachment/Item/"])
    assert not expand_item_requested(None)
    with pytest.raises(GraphError):
        expand_item_requested(["item"])
    with pytest.raises(GraphError):
        expand_item_requested(["attachments"])


# ---------------------------------------------------------------- base64 streaming


async def _chunks(data: bytes, sizes: list[int]) -> AsyncIterator[bytes]:
    position = 0
    for size in sizes:
        yield data[position : position + size]
        position += size
    if position < len(data):
        yield data[position:]


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=200), st.lists(st.integers(min_value=0, max_value=50), max_size=10))
async def test_base64_stream_equals_whole_encoding(data: bytes, sizes: list[int]) -> None:
    pieces = [p async for p in base64_stream(_chunks(data, sizes))]
    assert b"".join(pieces) == base64.b64encode(data)
    assert len(b"".join(pieces)) == base64_length(len(data))
    for piece in pieces[:-1]:
        assert b"=" not in piece and len(piece) % 4 == 0  # every piece but the last encodes 3k bytes


async def test_base64_stream_is_lazy() -> None:
    consumed = 0

    async def source() -> AsyncIterator[bytes]:
        nonlocal consumed
        for _ in range(5):
            consumed += 1
            yield b"x" * STREAM_CHUNK

    stream = base64_stream(source())
    first = await stream.__anext__()
    assert consumed == 1  # the first piece is out before the rest of the file is read
    assert len(first) == base64_length(STREAM_CHUNK)
    assert STREAM_CHUNK % 3 == 0 and STREAM_CHUNK >= 1024 * 1024
    await stream.aclose()


# ---------------------------------------------------------------- item MIME


def test_message_mime() -> None:
    raw = render_message(
        {
            "@odata.type": "#microsoft.graph.message",
            "subject": "Let's go for lunch",
            "body": {"contentType": "html", "content": "<p>Does mid month work?</p>"},
            "from": {"emailAddress": {"name": "Megan Bowen", "address": "megan@contoso.com"}},
            "toRecipients": [{"emailAddress": {"name": "Adele Vance", "address": "adele@contoso.com"}}],
            "attachments": [
                {"@odata.type": FILE_TYPE, "name": "a.bin", "contentType": "application/pdf", "contentBytes": "AAEC"}
            ],
        },
        stamp=STAMP,
    )
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Subject"] == "Let's go for lunch"
    assert parsed["To"] == "Adele Vance <adele@contoso.com>"
    assert parsed["From"] == "Megan Bowen <megan@contoso.com>"
    assert parsed["Message-ID"].startswith("<")
    parts = list(parsed.iter_attachments())
    assert parts[0].get_filename() == "a.bin" and parts[0].get_content() == b"\x00\x01\x02"
    assert b"\r\n" in raw


def test_event_ical_and_contact_vcard() -> None:
    ics = render_event(
        {
            "subject": "Discuss gifts, for children; now",
            "start": {"dateTime": "2016-12-02T18:00:00", "timeZone": "Pacific Standard Time"},
            "end": {"dateTime": "2016-12-02T19:00:00", "timeZone": "UTC"},
            "body": {"content": "x" * 200},
        },
        stamp=STAMP,
    ).decode()
    assert ics.startswith("BEGIN:VCALENDAR\r\nMETHOD:PUBLISH\r\nPRODID:Microsoft Exchange Server 2010\r\n")
    assert "SUMMARY;LANGUAGE=en-US:Discuss gifts\\, for children\\; now\r\n" in ics
    assert "DTSTART;TZID=Pacific Standard Time:20161202T180000\r\n" in ics
    assert "DTEND:20161202T190000Z\r\n" in ics
    assert all(len(line.encode()) <= 75 for line in ics.split("\r\n"))
    assert ics.endswith("END:VEVENT\r\nEND:VCALENDAR\r\n")
    vcf = render_contact(
        {
            "displayName": "Alex Wilber",
            "givenName": "Alex",
            "surname": "Wilber",
            "emailAddresses": [{"address": "a@b.c"}],
        },
        stamp=STAMP,
    ).decode()
    assert vcf.startswith("BEGIN:VCARD\r\nPROFILE:VCARD\r\nVERSION:3.0\r\n")
    assert "FN:Alex Wilber\r\nN:Wilber;Alex;;;\r\n" in vcf and "PRODID:Microsoft Exchange\r\n" in vcf


def test_orjson_prefix_trick_is_valid_json() -> None:
    entity = attachment_json(_attachment())
    encoded = orjson.dumps(entity)[:-1] + b',"contentBytes":"' + base64.b64encode(b"hi") + b'"}'
    assert orjson.loads(encoded)["contentBytes"] == "aGk="


# -- contentBytes lifted out of a POST body ------------------------------------------------------


def _outcome(body: bytes, *, lift: bool) -> tuple[Any, ...]:
    """What a POST body becomes: the parsed attachment (``encoded`` as text), or the error."""
    try:
        if lift:
            payload, lifted = loads_attachment(body)
            parsed = parse_attachment(payload, strict=False, lifted=lifted)
        else:
            parsed = parse_attachment(loads_object(body), strict=False)
    except GraphError as exc:
        return ("error", exc.status, exc.code, exc.message)
    if isinstance(parsed, FileInput) and isinstance(parsed.encoded, bytes):
        parsed.encoded = parsed.encoded.decode("ascii")
    return ("parsed", parsed)


def _file_body(content: bytes, **extra: Any) -> bytes:
    return orjson.dumps(
        {"@odata.type": "#microsoft.graph.fileAttachment", "name": "a.bin", **extra, "contentBytes": b64(content)}
    )


@pytest.mark.parametrize(
    "body",
    [
        # the key's text escaped inside a value before it, whitespace, the key first
        b'{"@odata.type":"#microsoft.graph.fileAttachment","name":"say \\"contentBytes\\":\\"","contentBytes":"QUJD"}',
        b'{ "@odata.type" : "#microsoft.graph.fileAttachment" , "contentBytes"\t:\r\n"QUJD" , "name" : "a" }',
        b'{"contentBytes":"QUJD","x":[{"contentBytes":"QUI="}],"@odata.type":"#microsoft.graph.fileAttachment","name":"a"}',
        b'{"name":"\\\\","contentBytes":"","@odata.type":"#microsoft.graph.fileAttachment"}',
    ],
)
def test_a_body_with_the_key_in_plain_sight_is_lifted_and_parses_the_same(body: bytes) -> None:
    assert lift_content_bytes(body) is not None
    assert _outcome(body, lift=True) == _outcome(body, lift=False)
    assert _outcome(body, lift=True)[0] == "parsed"


def test_a_plain_body_has_its_content_bytes_lifted_and_parses_the_same() -> None:
    content = bytes(range(256)) * 40
    body = _file_body(content, contentType="application/pdf")
    found = lift_content_bytes(body)
    assert found is not None
    rest, lifted = found
    assert lifted.content == content
    assert lifted.encoded == b64(content).encode()
    assert len(rest) < 200 and b'"contentBytes":""' in rest
    assert _outcome(body, lift=True) == _outcome(body, lift=False)
    parsed = _outcome(body, lift=True)[1]
    assert parsed.content == content and parsed.encoded == b64(content)


@pytest.mark.parametrize(
    "body",
    [
        # not at the top level, or not only there
        b'[{"contentBytes":"QUJD"}]',
        b'{"@odata.type":"#microsoft.graph.fileAttachment","name":"a","x":{"contentBytes":"QUJD"},"contentBytes":"QUJD"}',
        # inside a string: a name that contains the text of the key
        b'{"say \\"contentBytes":"QUJD","@odata.type":"#microsoft.graph.fileAttachment","name":"a","contentBytes":""}',
        # a value that is not plain base64: escapes, whitespace, the wrong alphabet, padding
        b'{"@odata.type":"#microsoft.graph.fileAttachment","name":"a","contentBytes":"QU\\/D"}',
        b'{"@odata.type":"#microsoft.graph.fileAttachment","name":"a","contentBytes":"QUJD QUJD"}',
        b'{"@odata.type":"#microsoft.graph.fileAttachment","name":"a","contentBytes":"QUJ-"}',
        b'{"@odata.type":"#microsoft.graph.fileAttachment","name":"a","contentBytes":"QUJ"}',
        # a byte-order mark, an unclosed string
        b'\xef\xbb\xbf{"@odata.type":"#microsoft.graph.fileAttachment","name":"a","contentBytes":"QUJD"}',
        b'{"@odata.type":"#microsoft.graph.fileAttachment","name":"a,"contentBytes":"QUJD"}',
    ],
)
def test_a_body_that_is_not_plain_is_parsed_whole(body: bytes) -> None:
    assert lift_content_bytes(body) is None
    assert _outcome(body, lift=True) == _outcome(body, lift=False)


@pytest.mark.parametrize(
    "body",
    [
        # lifted, then the rest is refused (a trailing comma, a key given twice, text after the
        # object, the wrong type, a property missing): the error is the whole body's
        b'{"@odata.type":"#microsoft.graph.fileAttachment","name":"a","contentBytes":"QUJD",}',
        b'{"@odata.type":"#microsoft.graph.fileAttachment","name":"a","contentBytes":"QUJD","ContentBytes":"QUJD"}',
        b'{"@odata.type":"#microsoft.graph.fileAttachment","name":"a","contentBytes":"QUJD"} {}',
        b'{"@odata.type":"#microsoft.graph.itemAttachment","name":"a","contentBytes":"QUJD"}',
        b'{"@odata.type":"#microsoft.graph.fileAttachment","contentBytes":"QUJD"}',
        b'{"name":"a","contentBytes":"QUJD"}',
    ],
)
def test_an_error_after_lifting_is_the_whole_bodys_error(body: bytes) -> None:
    assert lift_content_bytes(body) is not None
    whole = _outcome(body, lift=False)
    assert whole[0] == "error"
    assert _outcome(body, lift=True) == whole


_names = st.sampled_from(["contentBytes", "ContentBytes", "name", "x", 'say "contentBytes":"', "contentBytes\\"])
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.text(max_size=12),
    st.sampled_from(["QUJD", "QUJD QUJD", "QU/D", "", "QUI=", "QUJ", '"contentBytes":"QUJD"']),
    st.binary(max_size=12).map(b64),
)
_json_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_names, inner, max_size=3)),
    max_leaves=8,
)


@st.composite
def _attachment_bodies(draw: st.DrawFn) -> bytes:
    """Attachment bodies as different serialisers write them, some of them broken."""
    kinds = ["#microsoft.graph.fileAttachment"] * 4 + ["#microsoft.graph.itemAttachment"]
    obj: dict[str, Any] = {"@odata.type": draw(st.sampled_from(kinds))}
    if draw(st.integers(0, 2)) == 0:  # often none: then most bodies are valid attachments
        obj.update(draw(st.dictionaries(_names, _json_values, max_size=3)))
    if draw(st.integers(0, 4)):
        obj["name"] = draw(st.text(max_size=8))
    if draw(st.integers(0, 4)):
        obj["contentBytes"] = draw(st.one_of(st.binary(max_size=40).map(b64), _json_values))
    keys = list(obj)
    order = draw(st.permutations(keys))
    ordered = {k: obj[k] for k in order}
    text = json.dumps(
        ordered,
        ensure_ascii=draw(st.booleans()),
        separators=draw(st.sampled_from([(",", ":"), (", ", ": "), (",", " :\t")])),
    )
    if draw(st.booleans()):
        text = text.replace("/", "\\/")  # as PHP's json_encode writes
    body = text.encode()
    if draw(st.integers(0, 4)) == 0 and body:  # a stray byte somewhere
        at = draw(st.integers(0, len(body) - 1))
        body = body[:at] + draw(st.sampled_from([b'"', b"\\", b"{", b"}", b" ", b"\xff", b","])) + body[at + 1 :]
    return body


@given(_attachment_bodies())
@settings(max_examples=600, deadline=None)
def test_lifting_content_bytes_never_changes_what_a_body_means(body: bytes) -> None:
    assert _outcome(body, lift=True) == _outcome(body, lift=False)
