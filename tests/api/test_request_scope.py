"""The journal's redaction and header keeping (api/request_scope.py), without a server."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from graphattach.api import request_scope
from graphattach.api.request_scope import REDACTED, kept_headers, redact_body
from graphattach.domain.testkit import JournalEntry
from graphattach.storage.memory import MemoryMetadataStore
from graphattach.storage.sqlite import SqliteMetadataStore


def test_credential_headers_are_redacted_whatever_their_case_and_the_scheme_is_kept() -> None:
    raw = [
        (b"host", b"127.0.0.1:8765"),
        (b"Authorization", b"Bearer eyJ0eXAiOiJKV1QifQ.secret.sig"),
        (b"cookie", b"session=abc"),
        (b"x-graphattach-admin-key", b"k3y"),
        (b"content-type", b"application/json"),
    ]
    kept, textual = kept_headers(raw)
    assert kept == [
        (b"host", b"127.0.0.1:8765"),
        (b"Authorization", b"Bearer REDACTED"),
        (b"cookie", b"REDACTED"),
        (b"x-graphattach-admin-key", b"REDACTED"),
        (b"content-type", b"application/json"),
    ]
    assert textual
    assert raw[1] == (b"Authorization", b"Bearer eyJ0eXAiOiJKV1QifQ.secret.sig")  # the request's own list is left alone


def test_a_body_is_kept_only_for_textual_content_types() -> None:
    for content_type, textual in [
        (b"application/json; odata.metadata=minimal", True),
        (b"Text/Plain", True),
        (b"application/x-www-form-urlencoded", True),
        (b"application/octet-stream", False),
        (b"image/png", False),
    ]:
        assert kept_headers([(b"content-type", content_type)])[1] is textual, content_type
    assert kept_headers([(b"host", b"x")])[1] is False


def test_an_entry_reads_its_headers_decoded_with_lowercase_names() -> None:
    entry = JournalEntry(seq=1, time=datetime.now(UTC), method="GET", path="/v1.0/me", query="")
    entry.raw_request_headers, _ = kept_headers([(b"Host", b"graph.local:8765"), (b"Authorization", b"Bearer t")])
    assert entry.request_headers == [("host", "graph.local:8765"), ("authorization", "Bearer REDACTED")]
    assert entry.host == "graph.local:8765"
    assert JournalEntry(seq=2, time=datetime.now(UTC), method="GET", path="/", query="").host == ""


def test_credentials_in_bodies_are_redacted() -> None:
    upload = b'{"uploadUrl":"https://h/api/gv1.0/users(\'u\')/AttachmentSessions(\'s\')?authtoken=eyJhb.c.d","x":1}'
    assert b"eyJhb" not in redact_body(upload) and b"authtoken=REDACTED" in redact_body(upload)
    token = b'{"token_type":"Bearer","access_token":"abc","refresh_token" : "def","expires_in":3599}'
    assert redact_body(token) == (
        b'{"token_type":"Bearer","access_token":"REDACTED","refresh_token" : "REDACTED","expires_in":3599}'
    )
    form = b"grant_type=password&username=a&password=hunter2&client_secret=s3"
    assert redact_body(form) == b"grant_type=password&username=a&password=REDACTED&client_secret=REDACTED"
    plain = b'{"name":"report.pdf","size":1024}'
    assert redact_body(plain) is plain


# The regular expressions run only on bodies that hold one of the byte strings searched first:
# whatever the body, the result is the same as running the module's own expressions on every body.
_KEYS = [b"password", b"client_secret", b"access_token", b"refresh_token", b"id_token", b"assertion", b"token", b"name"]
_member = st.builds(
    lambda key, before, after, value: b'"%s"%s:%s"%s"' % (key, before, after, value),
    st.sampled_from(_KEYS),
    st.sampled_from([b"", b" "]),
    st.sampled_from([b"", b" ", b"\n"]),
    st.sampled_from([b"abc", b"", b'a\\"b', b"x&y"]),
)
_noise = st.sampled_from(
    [b"{", b"}", b",", b"&", b"=", b"authtoken=", b"authtoken=eyJ.a.b", b"password=p", b"\xff", b" "]
)


@given(st.lists(st.one_of(_member, _noise), max_size=8))
def test_searching_first_redacts_exactly_what_the_expressions_would(parts: list[bytes]) -> None:
    body = b"".join(parts)
    expected = request_scope._SECRET_JSON.sub(rb"\1" + REDACTED.encode() + rb"\2", body)
    expected = request_scope._AUTHTOKEN_IN_TEXT.sub(rb"\1" + REDACTED.encode(), expected)
    if b"=" in expected and not expected.lstrip().startswith((b"{", b"[")):
        expected = request_scope._SECRET_QUERY.sub(lambda m: m.group(1) + REDACTED, expected.decode("latin-1")).encode(
            "latin-1"
        )
    assert redact_body(body) == expected


def test_stores_say_whether_they_answer_without_waiting() -> None:
    # The upload PUT reads a small body while the store is asked, only where the store waits.
    assert MemoryMetadataStore.answers_inline is True
    assert SqliteMetadataStore.answers_inline is False
