"""Fault rules on the wire: parsing, printing, and what a request is matched by."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from graphattach.domain.faults import FaultRuleError
from graphattach.protocol.faults import (
    action_json,
    match_json,
    parse_rule,
    parse_rules_document,
    request_facts,
    rules_document,
)
from graphattach.protocol.operations import all_operations

matches = st.fixed_dictionaries(
    {},
    optional={
        "method": st.sampled_from(["GET", "PUT", "POST", "DELETE", "PATCH"]),
        "path": st.text(min_size=1, max_size=20),
        "operation": st.sampled_from([*all_operations(), "attachments.*"]),
        "user": st.emails(),
        "nth": st.integers(1, 10**6),
        "every": st.integers(1, 10**6),
        "times": st.integers(1, 10**6),
        "probability": st.floats(0.001, 1.0),
        "seed": st.integers(-(2**63), 2**63),
    },
)
actions = st.one_of(
    st.fixed_dictionaries(
        {"type": st.just("status"), "status": st.sampled_from([429, 500, 502, 503, 504, 507, 404])},
        optional={
            "retryAfter": st.integers(1, 3600),
            "body": st.sampled_from(["json", "empty", "html"]),
            "after": st.booleans(),
            "code": st.text(min_size=1, max_size=10),
            "message": st.text(max_size=10),
        },
    ),
    st.fixed_dictionaries({"type": st.just("delay"), "ms": st.integers(0, 600_000)}),
    st.integers(0, 1000).flatmap(
        lambda low: st.fixed_dictionaries(
            {"type": st.just("delay"), "minMs": st.just(low), "maxMs": st.integers(low, 600_000)}
        )
    ),
    st.fixed_dictionaries({"type": st.just("cut"), "afterBytes": st.integers(0, 10**9)}),
    st.fixed_dictionaries({"type": st.just("bandwidth"), "bytesPerSecond": st.integers(1, 10**9)}),
    st.sampled_from([{"type": "drop"}, {"type": "expireSession"}, {"type": "expireToken"}]),
)


@given(matches, actions)
def test_a_printed_rule_parses_back_to_itself(match: dict[str, Any], action: dict[str, Any]) -> None:
    rule = parse_rule({"match": match, "action": action})
    again = parse_rule({"match": match_json(rule.match), "action": action_json(rule.action)})
    assert again.action == rule.action
    assert again.match == rule.match


@given(st.dictionaries(st.text(max_size=8), st.integers() | st.text(max_size=5) | st.none(), max_size=4))
def test_any_object_is_a_rule_or_an_error_naming_a_field(action: dict[str, Any]) -> None:
    try:
        parse_rule({"action": action})
    except FaultRuleError as exc:
        assert exc.field.startswith("action")


def test_a_rules_file_names_the_failing_rule() -> None:
    document = rules_document('{"rules": [{"action": {"type": "drop"}}, {"action": {"type": "cut"}}]}')
    with pytest.raises(FaultRuleError) as caught:
        parse_rules_document(document)
    assert caught.value.field == "rules[1].action.afterBytes"
    yaml_rules = rules_document("- match: {nth: 2}\n  action: {type: drop}\n", yaml=True)
    assert parse_rules_document(yaml_rules)[0].match.nth == 2


@pytest.mark.parametrize(
    ("method", "path", "operation", "mailbox"),
    [
        ("GET", "/v1.0/me/messages", "messages.list", "oid-1"),
        ("POST", "/v1.0/users/a@b.c/messages/AAA/attachments", "attachments.create", "a@b.c"),
        ("POST", "/beta/users/x/events/E/attachments/createUploadSession", "attachments.createUploadSession", "x"),
        ("PUT", "/api/gv1.0/users('u1@t1')/messages('m')/AttachmentSessions('s')", "uploadSession.put", "u1"),
        ("GET", "/v1.0/nonsense", "unknown", None),
        ("POST", "/v1.0/$batch", "batch", None),
        ("POST", "/v1.0/me/messages/AAA/move", "messages.move", "oid-1"),
        ("GET", "/beta/me/mailFolders/inbox/messages/delta", "messages.delta", "oid-1"),
        ("POST", "/tenant/oauth2/v2.0/token", "oauth.token", None),
    ],
)
def test_request_facts_name_the_operation_and_mailbox(
    method: str, path: str, operation: str, mailbox: str | None
) -> None:
    import base64
    import json

    payload = base64.urlsafe_b64encode(json.dumps({"oid": "oid-1", "upn": "Me@B.C"}).encode()).decode().rstrip("=")
    facts, found = request_facts(method, path, path, f"Bearer h.{payload}.s", None)
    assert facts.operation == operation
    assert found == mailbox
    assert "me@b.c" in facts.users


def test_docs_list_every_operation_name() -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "faults.md").read_text()
    missing = [name for name in all_operations() if f"`{name}`" not in text]
    assert missing == [], "add these operation names to docs/faults.md"
