"""The KQL parser and matcher of ``$search`` (protocol/search.py) and delta tokens (protocol/delta.py)."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from graphattach.domain.errors import GraphError
from graphattach.protocol.delta import (
    DeltaState,
    StaleSyncState,
    decode_token,
    encode_token,
    fresh_round_query,
    page_size,
    parse_received_filter,
)
from graphattach.protocol.search import And, Not, Or, SearchDocument, Term, evaluate, parse_search, text_matches


def doc(**changes: object) -> SearchDocument:
    values: dict = {
        "from_": ["Adele Vance adele@contoso.com"],
        "to": ["Alex Wilber alex@contoso.com"],
        "cc": [],
        "bcc": [],
        "subject": "Quarterly report",
        "body": "The numbers are in",
        "has_attachments": True,
        "importance": "normal",
        "received": "2026-07-23T10:00:00Z",
        "sent": "2026-07-23T09:59:00Z",
        "attachment_names": ["q3.xlsx"],
    }
    values.update(changes)
    return SearchDocument(**values)


def test_parse_shapes() -> None:
    assert parse_search('"pizza"') == Term(None, "pizza")
    assert parse_search("pizza") == Term(None, "pizza")
    assert parse_search("\"from:adele subject:'q3 report'\"") == And(
        (Term("from", "adele"), Term("subject", "q3 report"))
    )
    assert parse_search('"a OR b AND c"') == Or((Term(None, "a"), And((Term(None, "b"), Term(None, "c")))))
    assert parse_search('"NOT (a OR b)"') == Not(Or((Term(None, "a"), Term(None, "b"))))
    assert parse_search('"subject:\\"two words\\""') == Term("subject", "two words")
    for bad in ('"size:1..5"', '"(a"', '"a)"', '""', '"hasAttachments:maybe"', '"received:yesterday"', '"AND"'):
        with pytest.raises(GraphError):
            parse_search(bad)


def test_matching() -> None:
    d = doc()
    assert evaluate(parse_search("quart"), d)  # prefix
    assert not evaluate(parse_search("uarterly"), d)  # words match from their start
    assert evaluate(parse_search("\"subject:'quarterly rep'\""), d)
    assert not evaluate(parse_search("\"subject:'report quarterly'\""), d)
    assert evaluate(parse_search('"from:adele@contoso.com"'), d)
    assert evaluate(parse_search('"from:vance"'), d)
    assert not evaluate(parse_search('"to:adele"'), d)
    assert evaluate(parse_search('"participants:adele AND recipients:alex"'), d)
    assert evaluate(parse_search('"attachment:q3"'), d)
    assert evaluate(parse_search('"hasAttachment:true"'), d)
    assert not evaluate(parse_search('"hasAttachments:false"'), d)
    assert evaluate(parse_search('"received:07/23/2026"'), d)
    assert evaluate(parse_search('"sent:2026-07-01..2026-07-31"'), d)
    assert evaluate(parse_search('"importance:medium kind:email"'), d)
    assert text_matches("numbers", "The NUMBERS are in")


@given(st.text(max_size=40))
def test_any_search_string_parses_or_is_a_400(text: str) -> None:
    try:
        tree = parse_search(text)
    except GraphError as exc:
        assert exc.status == 400
        return
    evaluate(tree, doc())


STATE = DeltaState("u1", "f1", 5, 9, False, ("subject",), 10, ("ge", "2020-01-01T00:00:00Z"))


def test_delta_tokens_round_trip_and_refuse_tampering() -> None:
    token = encode_token(STATE, b"k" * 32)
    assert decode_token(token, b"k" * 32, user_id="u1", folder_id="f1", generation=0) == STATE
    for bad in (token[:-2] + "AA", "x" + token, token.replace(".", ""), "", ".", "%%%"):
        with pytest.raises(GraphError) as info:
            decode_token(bad, b"k" * 32, user_id="u1", folder_id="f1", generation=0)
        assert info.value.code == "ErrorInvalidSyncStateData"
    for user, folder in (("u2", "f1"), ("u1", "f2")):
        with pytest.raises(GraphError):
            decode_token(token, b"k" * 32, user_id=user, folder_id=folder, generation=0)
    with pytest.raises(GraphError):
        decode_token(token, b"other key", user_id="u1", folder_id="f1", generation=0)


def test_a_token_of_an_earlier_reset_generation_is_stale() -> None:
    token = encode_token(STATE, b"k" * 32)
    # before the folder check: a reset gives the folders new ids
    for folder in ("f1", "f2"):
        with pytest.raises(StaleSyncState) as info:
            decode_token(token, b"k" * 32, user_id="u1", folder_id=folder, generation=1)
        assert info.value.state == STATE and info.value.generation == 1
    assert fresh_round_query(STATE) == ("$select=subject&$filter=receivedDateTime+ge+2020-01-01T00:00:00Z&$deltatoken=")
    window = dataclasses.replace(STATE, select=None, received_filter=None, window=("2026-01-01T00:00:00+00:00", "b"))
    assert fresh_round_query(window) == "startDateTime=2026-01-01T00:00:00%2B00:00&endDateTime=b&$deltatoken="
    # a token issued before generations were recorded has none: generation 0
    payload = orjson.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    del payload["g"]
    body = orjson.dumps(payload)
    mac = hmac.new(b"k" * 32, body, hashlib.sha256).digest()[:16]
    legacy = ".".join(base64.urlsafe_b64encode(x).decode().rstrip("=") for x in (body, mac))
    assert decode_token(legacy, b"k" * 32, user_id="u1", folder_id="f1", generation=0) == STATE


@given(st.text(max_size=80))
def test_any_token_is_refused_cleanly(token: str) -> None:
    with pytest.raises(GraphError):
        decode_token(token, b"k" * 32, user_id="u1", folder_id="f1", generation=0)


def test_prefer_and_filter() -> None:
    assert page_size("odata.maxpagesize=2") == 2
    assert page_size('outlook.timezone="UTC", odata.maxpagesize=50') == 50
    assert page_size("odata.maxpagesize=0") is None
    assert page_size("odata.maxpagesize=x") is None
    assert page_size(None) is None
    assert page_size("odata.maxpagesize=99999") == 1000
    assert parse_received_filter("receivedDateTime ge 2016-01-01T00:00:00Z") == ("ge", "2016-01-01T00:00:00Z")
    assert parse_received_filter("ReceivedDateTime gt '2016-01-01'") == ("gt", "2016-01-01")
    for bad in ("isRead eq true", "receivedDateTime lt 2016-01-01", "receivedDateTime ge soon"):
        with pytest.raises(GraphError) as info:
            parse_received_filter(bad)
        assert info.value.code == "ErrorInvalidUrlQuery"


def test_required_prefixes_only_from_terms_every_match_has() -> None:
    from graphattach.protocol.search import required_prefixes

    assert required_prefixes(parse_search("\"pizza AND subject:'q3_rep' from:adele@contoso.com\"")) == [
        "pizza",
        "q3",
        "rep",
        "adele",
        "contoso",
        "com",
    ]
    assert required_prefixes(parse_search('"a OR b"')) == []
    assert required_prefixes(parse_search('"NOT a"')) == []
    assert required_prefixes(parse_search('"attachment:x hasAttachments:true"')) == []
    assert required_prefixes(parse_search('"naïve zoë bob"')) == ["bob"]  # indexes fold or split diacritics
