"""The error catalogue (protocol/errors.py) against docs/fidelity.md, and the one renderer."""

from __future__ import annotations

import re
import string
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from graphattach.domain.upload_session import Outcome
from graphattach.protocol import errors

FIDELITY = Path(__file__).resolve().parents[2] / "docs" / "fidelity.md"
#: ``404 `ErrorItemNotFound``` or ``**400** `ErrorAttachment...``` in a table row.
STATUS_CODE = re.compile(r"\**([45]\d\d)\**\s+`([A-Za-z_]+)`")
WITHOUT_INNER = re.compile(r"\**([45]\d\d)\**\s+`([A-Za-z_]+)`[^;|]{0,90}?(?:without|no) `?innerError")
WITH_INNER = re.compile(r"\**([45]\d\d)\**\s+`([A-Za-z_]+)`[^;|]{0,90}?\(with `?innerError")


def _rows() -> list[str]:
    return [line for line in FIDELITY.read_text().splitlines() if line.startswith("|")]


def test_every_error_docs_fidelity_names_is_in_the_catalogue() -> None:
    table = {(kind.status, kind.code) for kind in errors.CATALOGUE}
    named = {(int(status), code) for row in _rows() for status, code in STATUS_CODE.findall(row)}
    assert len(named) > 25  # the pattern still reads the document
    missing = sorted(named - table)
    assert not missing, f"docs/fidelity.md names errors the catalogue does not have: {missing}"


def test_innererror_presence_matches_docs_fidelity() -> None:
    rows = "\n".join(_rows())
    without = {(int(s), c) for s, c in WITHOUT_INNER.findall(rows)}
    with_inner = {(int(s), c) for s, c in WITH_INNER.findall(rows)}
    assert (400, "ErrorMessageSizeExceeded") in without and (413, "RequestEntityTooLarge") in with_inner
    for kind in errors.CATALOGUE:
        if (kind.status, kind.code) in without:
            assert not kind.inner_error, kind
        if (kind.status, kind.code) in with_inner:
            assert kind.inner_error, kind


def test_catalogue_entries_are_distinct_and_templates_well_formed() -> None:
    seen = {(k.status, k.code, k.message) for k in errors.CATALOGUE}
    assert len(seen) == len(errors.CATALOGUE)
    for kind in errors.CATALOGUE:
        fields = [name for _, name, _, _ in string.Formatter().parse(kind.message) if name]
        error = kind(**dict.fromkeys(fields, "X"))
        assert (error.status, error.code, error.inner_error) == (kind.status, kind.code, kind.inner_error)
        assert "{" not in error.message


def test_every_refusing_upload_outcome_has_an_error() -> None:
    refusals = {o for o in Outcome if o.name.startswith("REJECT_")} | {Outcome.NOT_FOUND, Outcome.TOKEN_EXPIRED}
    assert set(errors.UPLOAD_OUTCOME_ERRORS) == refusals
    assert errors.UPLOAD_OUTCOME_ERRORS[Outcome.REJECT_ORDER](start=5, expected="E.").inner == {
        "code": "fragmentOutOfOrder"
    }


@pytest.mark.parametrize("inner_error", [True, False])
def test_the_renderer_writes_graphs_error_body(inner_error: bool) -> None:
    kind = errors.FragmentOverlap if inner_error else errors.MessageSizeExceeded
    exc = kind(expected="The next expected range is '5-'.", inner={"oAuthEventOperationId": "op"})
    now = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    body = orjson.loads(errors.graph_error_body(exc, request_id="r", client_request_id="c", now=now))
    assert body["error"]["code"] == kind.code and body["error"]["message"] == exc.message
    if inner_error:
        assert body["error"]["innerError"] == {
            "date": "2026-01-02T03:04:05",
            "request-id": "r",
            "client-request-id": "c",
            "code": "fragmentOverlap",
            "oAuthEventOperationId": "op",
        }
    else:
        assert set(body["error"]) == {"code", "message"}
