"""Fault rules over the admin API: each action, each kind of match, invalid rules, reset."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from graphattach.settings import Settings
from tests.api.fault_support import (
    DROPPED,
    add_rule,
    attachment_bytes,
    new_user,
    next_byte,
    put_or_drop,
    restore,
    rule_counts,
    session_url,
)
from tests.conftest import inprocess
from tests.helpers import ALEX, Graph, assert_graph_error, running_server
from tests.upload_helpers import MiB, new_item, payload, put_range


@pytest.fixture
async def g(graph: Graph) -> AsyncIterator[Graph]:
    yield graph
    await restore(graph)


def messages_rule(action: dict[str, Any], **match: Any) -> dict[str, Any]:
    return {"match": {"operation": "messages.list", **match}, "action": action}


async def test_rules_are_added_listed_and_removed(g: Graph) -> None:
    first = await add_rule(g, messages_rule({"type": "status", "status": 503}, nth=3))
    second = await add_rule(g, {"match": {"method": "PUT"}, "action": {"type": "drop"}})
    assert first["id"] != second["id"]
    assert first["match"] == {"operation": "messages.list", "nth": 3}
    assert first["action"]["status"] == 503 and first["matched"] == 0 and first["fired"] == 0
    listed = (await g.admin("GET", "/faults")).json()["value"]
    assert [r["id"] for r in listed] == [first["id"], second["id"]]
    assert (await g.admin("DELETE", f"/faults/{first['id']}")).status_code == 204
    assert_graph_error(await g.admin("DELETE", f"/faults/{first['id']}"), 404)
    assert [r["id"] for r in (await g.admin("GET", "/faults")).json()["value"]] == [second["id"]]
    assert (await g.admin("DELETE", "/faults")).status_code == 204
    assert (await g.admin("GET", "/faults")).json()["value"] == []


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ({"match": {}}, "action"),
        ({"match": {"nth": 0}, "action": {"type": "drop"}}, "match.nth"),
        ({"match": {"every": "2"}, "action": {"type": "drop"}}, "match.every"),
        ({"match": {"probability": 1.5}, "action": {"type": "drop"}}, "match.probability"),
        ({"match": {"operation": "attachments.upload"}, "action": {"type": "drop"}}, "match.operation"),
        ({"match": {"method": "FETCH"}, "action": {"type": "drop"}}, "match.method"),
        ({"match": {"colour": "red"}, "action": {"type": "drop"}}, "match.colour"),
        ({"action": {"type": "explode"}}, "action.type"),
        ({"action": {"type": "status"}}, "action.status"),
        ({"action": {"type": "status", "status": 200}}, "action.status"),
        ({"action": {"type": "status", "status": 429, "retryAfter": 2.5}}, "action.retryAfter"),
        ({"action": {"type": "status", "status": 503, "body": "xml"}}, "action.body"),
        ({"action": {"type": "delay"}}, "action.ms"),
        ({"action": {"type": "delay", "minMs": 10, "maxMs": 5}}, "action.maxMs"),
        ({"action": {"type": "cut"}}, "action.afterBytes"),
        ({"action": {"type": "bandwidth", "bytesPerSecond": 0}}, "action.bytesPerSecond"),
        ({"action": {"type": "drop", "afterBytes": 3}}, "action.afterBytes"),
    ],
)
async def test_an_invalid_rule_is_a_400_that_names_the_field(g: Graph, rule: dict[str, Any], field: str) -> None:
    response = await g.admin("POST", "/faults", json=rule)
    error = assert_graph_error(response, 400, "BadRequest")
    assert f"'{field}'" in error["message"], error["message"]
    assert (await g.admin("GET", "/faults")).json()["value"] == []


@pytest.mark.parametrize(
    ("status", "code", "retry_after"),
    [(429, "TooManyRequests", "1"), (500, "ErrorInternalServerError", None), (502, "UnknownError", None),
     (503, "serviceNotAvailable", "1"), (504, "UnknownError", None), (507, "QuotaExceededException", None)],
)  # fmt: skip
async def test_status_answers_graphs_error_for_the_status(
    g: Graph, status: int, code: str, retry_after: str | None
) -> None:
    user = await new_user(g)
    await add_rule(g, messages_rule({"type": "status", "status": status}, user=user))
    response = await g.get(f"/users/{user}/messages", user=user)
    assert_graph_error(response, status, code)
    assert response.headers.get("retry-after") == retry_after
    assert response.headers["content-type"] == "application/json"
    # only the first request of the mailbox: no nth, so every one; another mailbox is untouched
    assert (await g.get(f"/users/{ALEX}/messages", user=ALEX)).status_code == 200


async def test_status_retry_after_code_and_message_can_be_set(g: Graph) -> None:
    user = await new_user(g)
    action = {"type": "status", "status": 429, "retryAfter": 7, "code": "ApplicationThrottled", "message": "Slow."}
    await add_rule(g, messages_rule(action, user=user))
    response = await g.get(f"/users/{user}/messages", user=user)
    error = assert_graph_error(response, 429, "ApplicationThrottled")
    assert error["message"] == "Slow."
    assert response.headers["retry-after"] == "7"


@pytest.mark.parametrize(("body", "content_type"), [("empty", "text/plain"), ("html", "text/html")])
async def test_status_can_answer_an_empty_or_html_body(g: Graph, body: str, content_type: str) -> None:
    user = await new_user(g)
    await add_rule(g, messages_rule({"type": "status", "status": 503, "body": body}, user=user))
    response = await g.get(f"/users/{user}/messages", user=user)
    assert response.status_code == 503
    assert response.headers["content-type"] == content_type
    assert "retry-after" not in response.headers  # the front end's answers carry none
    assert (response.content == b"") == (body == "empty")
    if body == "html":
        assert b"Service Unavailable" in response.content


async def test_status_after_does_the_work_then_answers_the_error(g: Graph) -> None:
    user = await new_user(g)
    await add_rule(g, {"match": {"operation": "messages.create", "user": user},
                       "action": {"type": "status", "status": 500, "after": True}})  # fmt: skip
    response = await g.post(f"/users/{user}/messages", json={"subject": "delivered anyway"}, user=user)
    assert_graph_error(response, 500, "ErrorInternalServerError")
    listed = (await g.get(f"/users/{user}/messages", user=user)).json()["value"]
    assert [m["subject"] for m in listed] == ["delivered anyway"]


async def test_status_before_the_work_changes_nothing(g: Graph) -> None:
    user = await new_user(g)
    await add_rule(g, {"match": {"method": "POST", "user": user}, "action": {"type": "status", "status": 503}})
    response = await g.post(f"/users/{user}/messages", json={"subject": "never"}, user=user)
    assert_graph_error(response, 503)
    assert (await g.get(f"/users/{user}/messages", user=user)).json()["value"] == []


async def statuses(g: Graph, user: str, count: int) -> list[int]:
    return [(await g.get(f"/users/{user}/messages", user=user)).status_code for _ in range(count)]


async def test_nth_every_and_times_choose_the_matching_requests(g: Graph) -> None:
    user = await new_user(g)
    nth = await add_rule(g, messages_rule({"type": "status", "status": 502}, user=user, nth=2))
    assert await statuses(g, user, 4) == [200, 502, 200, 200]
    await g.admin("DELETE", f"/faults/{nth['id']}")
    await add_rule(g, messages_rule({"type": "status", "status": 504}, user=user, every=3))
    assert await statuses(g, user, 7) == [200, 200, 504, 200, 200, 504, 200]
    await g.admin("DELETE", "/faults")
    rule = await add_rule(g, messages_rule({"type": "status", "status": 500}, user=user, every=2, times=2))
    assert await statuses(g, user, 8) == [200, 500, 200, 500, 200, 200, 200, 200]
    assert (await rule_counts(g))[rule["id"]] == (8, 2)


async def test_probability_with_a_seed_repeats_on_every_run(g: Graph) -> None:
    user = await new_user(g)
    rule = messages_rule({"type": "status", "status": 503}, user=user, probability=0.4, seed=11)
    runs = []
    for _ in range(2):
        await add_rule(g, rule)
        runs.append(await statuses(g, user, 15))
        await g.admin("DELETE", "/faults")
    rng = random.Random(11)
    expected = [503 if rng.random() < 0.4 else 200 for _ in range(15)]
    assert runs[0] == runs[1] == expected
    assert 0 < expected.count(503) < 15


async def test_method_path_operation_and_user_must_all_match(g: Graph) -> None:
    user = await new_user(g)
    other = await new_user(g)
    await add_rule(g, {"match": {"method": "GET", "path": "/v1.0/users/*/mailFolders*", "user": user},
                       "action": {"type": "status", "status": 503}})  # fmt: skip
    assert (await g.get(f"/users/{user}/mailFolders", user=user)).status_code == 503
    assert (await g.get(f"/users/{user}/mailFolders/inbox", user=user)).status_code == 503
    assert (await g.get(f"/users/{user}/messages", user=user)).status_code == 200  # path
    assert (await g.get(f"/users/{other}/mailFolders", user=other)).status_code == 200  # user
    created = await g.post(f"/users/{user}/mailFolders", json={"displayName": "x"}, user=user)
    assert created.status_code == 201  # method
    await g.admin("DELETE", "/faults")
    await add_rule(
        g, {"match": {"operation": "mailFolders.*", "user": user}, "action": {"type": "status", "status": 500}}
    )
    assert (await g.get(f"/users/{user}/mailFolders", user=user)).status_code == 500
    assert (await g.get("/me/mailFolders", user=user)).status_code == 500  # /me is the caller's mailbox
    assert (await g.get(f"/users/{user}/events", user=user)).status_code == 200


async def test_expire_token_answers_401_as_graph(g: Graph) -> None:
    user = await new_user(g)
    await add_rule(g, messages_rule({"type": "expireToken"}, user=user, nth=1))
    response = await g.get(f"/users/{user}/messages", user=user)
    error = assert_graph_error(response, 401, "InvalidAuthenticationToken")
    assert error["message"] == "Lifetime validation failed, the token is expired."
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert (await g.get(f"/users/{user}/messages", user=user)).status_code == 200


async def test_delay_and_bandwidth_slow_the_request_down_and_change_nothing_else(g: Graph) -> None:
    user = await new_user(g)
    delay = await add_rule(g, messages_rule({"type": "delay", "minMs": 1, "maxMs": 20}, user=user))
    band = await add_rule(g, {"match": {"operation": "uploadSession.put", "user": user},
                              "action": {"type": "bandwidth", "bytesPerSecond": 20 * MiB}})  # fmt: skip
    assert await statuses(g, user, 2) == [200, 200]
    item = await new_item(g, user=user)
    data = payload(3 * MiB, seed=5)
    url = await session_url(g, item, len(data), user)
    assert (await put_range(g, url, data[: 2 * MiB], 0, len(data))).status_code == 200
    assert (await put_range(g, url, data[2 * MiB :], 2 * MiB, len(data))).status_code == 201
    counts = await rule_counts(g)
    assert counts[delay["id"]] == (2, 2)
    assert counts[band["id"]] == (2, 2)


async def test_drop_commits_the_range_and_loses_the_answer(g: Graph) -> None:
    user = await new_user(g)
    item = await new_item(g, user=user)
    data = payload(3 * MiB, seed=1)
    url = await session_url(g, item, len(data), user)
    await add_rule(g, {"match": {"operation": "uploadSession.put", "user": user, "nth": 1}, "action": {"type": "drop"}})
    with pytest.raises(DROPPED):
        await put_range(g, url, data[:MiB], 0, len(data))
    status = await g.http.get(url)
    assert status.status_code == 200 and next_byte(status) == MiB  # committed
    response = await put_range(g, url, data[MiB:], MiB, len(data))
    assert response.status_code == 201


@pytest.mark.parametrize("after_bytes", [0, 1000, MiB - 1])
async def test_cut_acknowledges_nothing_of_the_partial_range(g: Graph, after_bytes: int) -> None:
    user = await new_user(g)
    item = await new_item(g, user=user)
    data = payload(3 * MiB, seed=2)
    url = await session_url(g, item, len(data), user)
    assert (await put_range(g, url, data[:MiB], 0, len(data))).status_code == 200
    await add_rule(g, {"match": {"operation": "uploadSession.put", "user": user, "nth": 1},
                       "action": {"type": "cut", "afterBytes": after_bytes}})  # fmt: skip
    assert await put_or_drop(g, url, data[MiB:], MiB, len(data)) is None
    status = await g.http.get(url)
    assert status.status_code == 200 and next_byte(status) == MiB  # nothing of the cut range
    assert (await put_range(g, url, data[MiB:], MiB, len(data))).status_code == 201
    assert await attachment_bytes(g, user, item) == [data]


async def test_expire_session_expires_the_matched_upload_session_now(g: Graph) -> None:
    user = await new_user(g)
    item = await new_item(g, user=user)
    data = payload(3 * MiB, seed=3)
    url = await session_url(g, item, len(data), user)
    assert (await put_range(g, url, data[:MiB], 0, len(data))).status_code == 200
    await add_rule(g, {"match": {"operation": "uploadSession.put", "user": user}, "action": {"type": "expireSession"}})
    response = await put_range(g, url, data[MiB:], MiB, len(data))
    assert_graph_error(response, 401, "InvalidAuthenticationToken")
    assert_graph_error(await g.http.get(url), 401, "InvalidAuthenticationToken")
    listed = await g.get(f"/users/{user}/messages/{item}/attachments", user=user)
    assert listed.json()["value"] == []


async def test_the_admin_api_is_never_faulted(g: Graph) -> None:
    await add_rule(g, {"match": {}, "action": {"type": "status", "status": 503}})
    assert (await g.admin("GET", "/faults")).status_code == 200
    assert (await g.admin("GET", "/info")).status_code == 200


async def test_reset_clears_the_rules(inprocess_graph: Graph) -> None:
    graph = inprocess_graph
    await add_rule(graph, messages_rule({"type": "status", "status": 503}))
    assert (await graph.admin("POST", "/reset")).status_code == 204
    assert (await graph.admin("GET", "/faults")).json()["value"] == []


async def test_reset_puts_the_throttling_limits_back_to_those_of_the_start(settings: Settings) -> None:
    for started_with, after_reset in ((None, None), ("concurrency=3", 3)):
        async with inprocess(dataclasses.replace(settings, throttling=started_with)) as graph:
            changed = await graph.admin("POST", "/throttling", json={"spec": "concurrency=2,requests=5/60"})
            assert changed.json()["limits"]["concurrency"] == 2
            assert (await graph.admin("POST", "/reset")).status_code == 204
            limits = (await graph.admin("GET", "/throttling")).json()["limits"]
            assert (limits and limits["concurrency"]) == after_reset


async def test_drop_under_uvicorn_closes_the_connection_without_an_answer(tmp_path: Path) -> None:
    with running_server(tmp_path / "data", "--server", "uvicorn") as server:
        async with httpx.AsyncClient(timeout=30) as http:
            graph = Graph(http, server.root, "server")
            await add_rule(graph, {"match": {"operation": "messages.create"}, "action": {"type": "drop"}})
            with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
                await graph.post("/me/messages", json={"subject": "committed, answer lost"})
            listed = (await graph.get("/me/messages?$select=subject")).json()["value"]
            assert [m["subject"] for m in listed] == ["committed, answer lost"]
