"""The upload origin's own parsing, held against what Starlette would read."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from starlette.datastructures import QueryParams
from starlette.requests import Request

from graphattach.api.upload_origin import _authtoken

_PIECES = st.sampled_from(
    ["authtoken", "auth%74oken", "AUTHTOKEN", "x", "%", "%zz", "=", "&", ";", "+", "a", "%2B", "é"]
)


def _request(query: bytes) -> Request:
    return Request({"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": query})


@given(st.lists(_PIECES, max_size=12).map("".join))
def test_the_authtoken_is_the_one_query_params_reads(query: str) -> None:
    raw = query.encode()
    assert _authtoken(_request(raw)) == QueryParams(raw.decode("latin-1")).get("authtoken")


def test_the_last_authtoken_wins_and_is_decoded() -> None:
    assert _authtoken(_request(b"authtoken=a&authtoken=b%2Bc")) == "b+c"
    assert _authtoken(_request(b"auth%74oken=x")) == "x"
    assert _authtoken(_request(b"other=1")) is None
    assert _authtoken(_request(b"")) is None
