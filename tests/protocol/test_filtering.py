"""The $filter / $orderby subset (protocol/filtering.py)."""

from __future__ import annotations

import pytest

from graphattach.domain.errors import GraphError
from graphattach.protocol.filtering import compile_filter, compile_orderby

KNOWN = frozenset({"subject", "isRead", "receivedDateTime", "toRecipients", "categories", "importance", "flag", "size"})
MESSAGES = [
    {
        "subject": "Hello",
        "isRead": False,
        "receivedDateTime": "2024-01-02T10:00:00Z",
        "toRecipients": [{"emailAddress": {"address": "a@x.com"}}],
        "categories": ["Red"],
        "importance": "high",
        "flag": {"flagStatus": "flagged"},
        "size": 10,
    },
    {
        "subject": "it's done",
        "isRead": True,
        "receivedDateTime": "2024-03-01T00:00:00Z",
        "toRecipients": [],
        "categories": [],
        "importance": "normal",
        "flag": {"flagStatus": "notFlagged"},
        "size": 2.5,
    },
    {
        "subject": None,
        "isRead": True,
        "receivedDateTime": "2023-12-31T23:59:59Z",
        "toRecipients": [{"emailAddress": {"address": "B@X.com"}}, {"emailAddress": {"address": "a@x.com"}}],
        "categories": ["Blue", "Red"],
        "importance": "low",
        "flag": {"flagStatus": "complete"},
        "size": 7,
    },
]


def matching(clause: str) -> list[int]:
    keep = compile_filter(clause, known=KNOWN, type_name="microsoft.graph.message")
    return [i for i, m in enumerate(MESSAGES) if keep(m)]


@pytest.mark.parametrize(
    ("clause", "expected"),
    [
        ("isRead eq false", [0]),
        ("isRead ne false", [1, 2]),
        ("subject eq 'HELLO'", [0]),
        ("subject eq 'it''s done'", [1]),
        ("subject eq null", [2]),
        ("receivedDateTime ge 2024-01-01T00:00:00Z", [0, 1]),
        ("receivedDateTime lt 2024-01-01", [2]),
        ("receivedDateTime gt '2024-02-01T00:00:00Z'", [1]),
        ("size gt 5 and size le 10", [0, 2]),
        ("importance eq 'high' or importance eq 'low'", [0, 2]),
        ("not (importance eq 'normal')", [0, 2]),
        ("flag/flagStatus eq 'flagged'", [0]),
        ("contains(subject, 'DON')", [1]),
        ("startswith(subject, 'he') or endswith(subject, 'done')", [0, 1]),
        ("tolower(subject) eq 'hello'", [0]),
        ("toRecipients/any(r: r/emailAddress/address eq 'b@x.com')", [2]),
        ("toRecipients/any(r: r/emailAddress/address eq 'a@x.com')", [0, 2]),
        ("toRecipients/all(r: endswith(r/emailAddress/address, 'x.com'))", [0, 1, 2]),
        ("toRecipients/any()", [0, 2]),
        ("categories/any(c: c eq 'red')", [0, 2]),
        ("(isRead eq true and categories/any(c:c eq 'Blue')) or subject eq 'Hello'", [0, 2]),
    ],
)
def test_filter(clause: str, expected: list[int]) -> None:
    assert matching(clause) == expected


@pytest.mark.parametrize(
    "clause",
    [
        "isRead eq",
        "isRead eq false)",
        "(isRead eq false",
        "nope eq 1",
        "contains(subject)",
        "subject eq #",
        "x/any(r r)",
    ],
)
def test_bad_filters_are_400(clause: str) -> None:
    with pytest.raises(GraphError) as info:
        compile_filter(clause, known=KNOWN, type_name="microsoft.graph.message")
    assert info.value.status == 400


def test_orderby_is_stable_multi_key_with_nulls_first() -> None:
    order = compile_orderby("isRead, receivedDateTime desc", known=KNOWN, type_name="t")
    assert [m["subject"] for m in order(MESSAGES)] == ["Hello", "it's done", None]
    by_subject = compile_orderby("subject", known=KNOWN, type_name="t")
    assert [m["subject"] for m in by_subject(MESSAGES)] == [None, "Hello", "it's done"]
    for bad in ("subject up", "", "colour", "subject asc desc"):
        with pytest.raises(GraphError):
            compile_orderby(bad, known=KNOWN, type_name="t")
