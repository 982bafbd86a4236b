"""Outlook throttling per app id + mailbox, and Retry-After compliance (the server's settable
clock moves the windows: no sleeps)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.fault_support import add_rule, new_user, next_byte, restore, session_url
from tests.helpers import Graph, assert_graph_error, running_server
from tests.upload_helpers import new_item, payload, put_range

KiB = 1024


@pytest.fixture
async def g(graph: Graph) -> AsyncIterator[Graph]:
    yield graph
    await restore(graph)


async def throttle(graph: Graph, **limits: Any) -> dict[str, Any]:
    response = await graph.admin("POST", "/throttling", json=limits)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def assert_throttled(response: httpx.Response, limit: str) -> int:
    """Outlook's 429: ApplicationThrottled, no innerError, an integer Retry-After >= 1."""
    assert response.status_code == 429, response.text
    assert response.json() == {
        "error": {"code": "ApplicationThrottled", "message": f"Application is over its {limit} limit."}
    }
    retry_after = response.headers["retry-after"]
    assert retry_after.isdigit() and int(retry_after) >= 1
    return int(retry_after)


async def test_throttling_is_off_by_default_and_set_through_the_admin_api(g: Graph) -> None:
    state = (await g.admin("GET", "/throttling")).json()
    assert state["enabled"] is False and state["limits"] is None and state["inFlight"] == []
    outlook = await throttle(g, preset="outlook")
    assert outlook["limits"] == {"concurrency": 4, "requests": "10000/600", "upload": f"{150 * 1024 * KiB}B/300"}
    scaled = await throttle(g, concurrency=2, requests="100/60", upload="20MB/60")
    assert scaled["limits"] == {"concurrency": 2, "requests": "100/60", "upload": f"{20 * 1024 * KiB}B/60"}
    spec = await g.admin("POST", "/throttling", json={"spec": "concurrency=3"})
    assert spec.json()["limits"]["concurrency"] == 3
    for bad, field in [({"concurrency": 0}, "concurrency"), ({"requests": "fast"}, "requests"),
                       ({"speed": 1}, "speed"), ({"spec": "upload=1XB/60"}, "upload")]:  # fmt: skip
        error = assert_graph_error(await g.admin("POST", "/throttling", json=bad), 400, "BadRequest")
        assert f"'{field}'" in error["message"]
    assert (await g.admin("DELETE", "/throttling")).status_code == 204
    assert (await g.admin("GET", "/throttling")).json()["enabled"] is False


class HeldBody:
    """A request body that stays open until released: the request is in flight meanwhile."""

    def __init__(self, head: bytes, tail: bytes) -> None:
        self.head, self.tail = head, tail
        self.release = asyncio.Event()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.head
        await self.release.wait()
        yield self.tail


async def test_a_fifth_concurrent_request_is_refused_and_another_mailbox_is_not(g: Graph) -> None:
    user, other = await new_user(g), await new_user(g)
    mailbox = (await g.get(f"/users/{user}", user=user)).json()["id"].lower()
    await throttle(g, preset="outlook")
    token = await g.token(user)
    held = [HeldBody(b'{"subject": ', b'"held"}') for _ in range(4)]
    url = f"{g.v1}/users/{user}/messages"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    tasks = [asyncio.ensure_future(g.http.post(url, content=body, headers=headers)) for body in held]
    try:
        # Until the server has admitted all four (each holds its body open): a fifth sent earlier
        # could take one of their places.
        for _ in range(500):
            in_flight = (await g.admin("GET", "/throttling")).json()["inFlight"]
            if [entry["requests"] for entry in in_flight if entry["mailbox"] == mailbox] == [4]:
                break
            await asyncio.sleep(0.02)
        assert [entry["requests"] for entry in in_flight if entry["mailbox"] == mailbox] == [4], in_flight
        fifth = await g.get(f"/users/{user}/messages", user=user)
        assert_throttled(fifth, "MailboxConcurrency")
        assert (await g.get(f"/users/{other}/messages", user=other)).status_code == 200
    finally:
        for body in held:
            body.release.set()
        created = await asyncio.gather(*tasks)
    assert [r.status_code for r in created] == [201] * 4
    assert (await g.get(f"/users/{user}/messages", user=user)).status_code == 200  # no time to wait out
    assert (await g.admin("GET", "/throttling")).json()["violations"] == []


async def test_request_rate_per_app_and_mailbox_and_retry_after_compliance(g: Graph) -> None:
    user = await new_user(g)
    await throttle(g, requests="3/60")
    for _ in range(3):
        assert (await g.get(f"/users/{user}/messages", user=user)).status_code == 200
    refused = await g.post(f"/users/{user}/messages", json={"subject": "throttled"}, user=user)
    retry_after = assert_throttled(refused, "RequestRate")
    assert 55 <= retry_after <= 60
    # another app on the same mailbox has its own budget
    app_token = (
        await g.admin("POST", "/token", json={"app": True, "appId": "11111111-2222-3333-4444-555555555555"})
    ).json()
    other_app = await g.get(f"/users/{user}/messages", token=app_token["access_token"])
    assert other_app.status_code == 200
    # coming back 10 s early: 429 again, and the violation is recorded
    await g.admin("POST", "/clock", json={"advanceSeconds": retry_after - 10})
    early = await g.get(f"/users/{user}/messages", user=user)
    assert assert_throttled(early, "RequestRate") == 10  # what is left
    violations = (await g.admin("GET", "/throttling")).json()["violations"]
    assert len(violations) == 1
    violation = violations[0]
    assert violation["requestId"] == early.headers["request-id"]
    assert violation["method"] == "GET" and violation["path"] == f"/v1.0/users/{user}/messages"
    assert violation["operation"] == "messages.list" and violation["limit"] == "RequestRate"
    assert violation["retryAfter"] == retry_after and violation["earlyBySeconds"] == pytest.approx(10, abs=1)
    # waiting out what is left is enough
    await g.admin("POST", "/clock", json={"advanceSeconds": 10})
    listed = await g.get(f"/users/{user}/messages", user=user)
    assert listed.status_code == 200
    assert listed.json()["value"] == []  # the throttled POST created nothing


async def test_incoming_bytes_counts_upload_puts_and_a_throttled_put_changes_nothing(g: Graph) -> None:
    user = await new_user(g)
    item = await new_item(g, user=user)
    data = payload(2 * 1024 * KiB + 600 * KiB, seed=4)
    url = await session_url(g, item, len(data), user)
    await throttle(g, upload="1MB/60")
    assert (await put_range(g, url, data[: 600 * KiB], 0, len(data))).status_code == 200
    refused = await put_range(g, url, data[600 * KiB : 1200 * KiB], 600 * KiB, len(data))
    assert_throttled(refused, "IncomingBytes")
    await g.admin("POST", "/clock", json={"advanceSeconds": int(refused.headers["retry-after"])})
    status = await g.http.get(url)
    assert next_byte(status) == 600 * KiB
    await g.admin("DELETE", "/throttling")
    assert (await put_range(g, url, data[600 * KiB :], 600 * KiB, len(data))).status_code == 201


async def test_a_fault_rules_429_must_be_honoured_too(g: Graph) -> None:
    user = await new_user(g)
    await add_rule(g, {"match": {"operation": "messages.list", "user": user, "nth": 1},
                       "action": {"type": "status", "status": 429, "retryAfter": 5}})  # fmt: skip
    first = await g.get(f"/users/{user}/messages", user=user)
    assert_graph_error(first, 429, "TooManyRequests")
    # another request of the same app and mailbox goes on: the fault was that one request's
    assert (await g.get(f"/users/{user}/events", user=user)).status_code == 200
    again = await g.get(f"/users/{user}/messages", user=user)
    assert_graph_error(again, 429, "TooManyRequests")
    violations = (await g.admin("GET", "/throttling")).json()["violations"]
    assert [v["requestId"] for v in violations] == [again.headers["request-id"]]
    await g.admin("POST", "/clock", json={"advanceSeconds": 5})
    assert (await g.get(f"/users/{user}/messages", user=user)).status_code == 200


async def test_serve_loads_faults_and_throttling_at_start(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("- match: {operation: messages.list, nth: 1}\n  action: {type: status, status: 503}\n")
    with running_server(
        tmp_path / "data", "--faults", str(rules), "--throttling", "concurrency=2,requests=2/60"
    ) as server:
        async with httpx.AsyncClient(base_url=server.root, timeout=30) as http:
            graph = Graph(http, server.root, "server")
            listed = (await graph.admin("GET", "/faults")).json()["value"]
            assert [r["action"]["status"] for r in listed] == [503]
            assert (await graph.admin("GET", "/throttling")).json()["limits"]["requests"] == "2/60"
            # the faulted request counts against the rate as any admitted request does
            assert [(await graph.get("/me/messages")).status_code for _ in range(2)] == [503, 200]
            assert_throttled(await graph.get("/me/messages"), "RequestRate")
