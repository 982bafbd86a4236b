"""Invariants under every fault, over real sockets (and in-process; on PostgreSQL + S3 with
``GRAPHATTACH_TEST_STACK=postgres-s3``): acknowledged bytes survive, nothing is committed twice,
``GET uploadUrl`` and the next PUT tell the truth about ``nextExpectedRanges``, and a lost
acknowledgement of the final range leaves exactly one attachment."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest

from graphattach.settings import Settings
from tests.api.fault_support import (
    DROPPED,
    add_rule,
    attachment_bytes,
    new_user,
    restore,
    rule_counts,
    session_url,
    truthful_upload,
)
from tests.conftest import inprocess
from tests.helpers import Graph, assert_graph_error
from tests.upload_helpers import new_item, payload, put_range

KiB = 1024
SIZE = 2 * 1024 * KiB + 300 * KiB
CHUNK = 320 * KiB

ACTIONS: list[dict[str, Any]] = [
    {"type": "status", "status": 503},
    {"type": "status", "status": 429, "retryAfter": 3},
    {"type": "status", "status": 504, "body": "html"},
    {"type": "status", "status": 500, "after": True},
    {"type": "status", "status": 503, "body": "empty", "after": True},
    {"type": "drop"},
    {"type": "cut", "afterBytes": 0},
    {"type": "cut", "afterBytes": 100 * KiB},
    {"type": "delay", "ms": 5},
    {"type": "bandwidth", "bytesPerSecond": 64 * 1024 * KiB},
    {"type": "expireToken"},
]


@pytest.fixture
async def g(graph: Graph) -> AsyncIterator[Graph]:
    yield graph
    await restore(graph)


def label(action: dict[str, Any]) -> str:
    return "-".join(str(v) for v in action.values())


@pytest.mark.parametrize("every", [2, 3])
@pytest.mark.parametrize("action", ACTIONS, ids=label)
async def test_an_upload_survives_every_fault_and_completes_exactly_once(
    g: Graph, action: dict[str, Any], every: int
) -> None:
    user = await new_user(g)
    item = await new_item(g, user=user)
    data = payload(SIZE, seed=every)
    url = await session_url(g, item, len(data), user)
    rule = await add_rule(g, {"match": {"operation": "uploadSession.put", "user": user, "every": every},
                              "action": action})  # fmt: skip
    final, log = await truthful_upload(g, url, data, CHUNK)
    assert (await rule_counts(g))[rule["id"]][1] >= 1, log
    if final.status_code == 201:
        assert final.headers["location"]
    # exactly one attachment, with exactly the bytes sent
    assert await attachment_bytes(g, user, item) == [data], log


@pytest.mark.parametrize("action", [{"type": "drop"}, {"type": "status", "status": 502, "after": True}], ids=label)
@pytest.mark.parametrize("profile", ["outlook", "lenient"])
async def test_a_lost_final_acknowledgement_leaves_one_attachment(
    settings: Settings, action: dict[str, Any], profile: str
) -> None:
    """The retry of the final range: ``outlook`` answers 404 (Outlook has consumed the session),
    ``lenient`` answers the completing 201 again (docs/fidelity.md)."""
    async with inprocess(dataclasses.replace(settings, profile=profile)) as graph:  # type: ignore[arg-type]
        user = await new_user(graph)
        item = await new_item(graph, user=user)
        data = payload(SIZE, seed=9)
        url = await session_url(graph, item, len(data), user)
        head = len(data) - CHUNK
        assert (await put_range(graph, url, data[:head], 0, len(data))).status_code == 200
        await add_rule(graph, {"match": {"operation": "uploadSession.put", "nth": 1}, "action": action})
        try:
            lost = await put_range(graph, url, data[head:], head, len(data))
            assert lost.status_code == 502
        except DROPPED:
            pass
        retry = await put_range(graph, url, data[head:], head, len(data))
        if profile == "outlook":
            assert_graph_error(retry, 404, "ErrorItemNotFound")
            assert_graph_error(await graph.http.get(url), 404, "ErrorItemNotFound")
        else:
            assert retry.status_code == 201 and retry.headers["location"]
        assert await attachment_bytes(graph, user, item) == [data]


async def test_a_lost_final_acknowledgement_over_a_socket(g: Graph) -> None:
    user = await new_user(g)
    item = await new_item(g, user=user)
    data = payload(SIZE, seed=10)
    url = await session_url(g, item, len(data), user)
    head = len(data) - CHUNK
    assert (await put_range(g, url, data[:head], 0, len(data))).status_code == 200
    await add_rule(g, {"match": {"operation": "uploadSession.put", "user": user}, "action": {"type": "drop"}})
    with pytest.raises(DROPPED):
        await put_range(g, url, data[head:], head, len(data))
    await g.admin("DELETE", "/faults")
    retry = await put_range(g, url, data[head:], head, len(data))
    assert_graph_error(retry, 404, "ErrorItemNotFound")  # the session server runs the outlook profile
    assert await attachment_bytes(g, user, item) == [data]


async def test_a_session_expiring_between_two_ranges_tells_the_truth(g: Graph) -> None:
    user = await new_user(g)
    item = await new_item(g, user=user)
    data = payload(SIZE, seed=11)
    url = await session_url(g, item, len(data), user)
    assert (await put_range(g, url, data[:CHUNK], 0, len(data))).status_code == 200
    await add_rule(g, {"match": {"operation": "uploadSession.*", "user": user, "nth": 1},
                       "action": {"type": "expireSession"}})  # fmt: skip
    for _ in range(2):  # the PUT, then GET and PUT again: all say the session is gone
        assert_graph_error(await g.http.get(url), 401, "InvalidAuthenticationToken")
        response = await put_range(g, url, data[CHUNK : 2 * CHUNK], CHUNK, len(data))
        assert_graph_error(response, 401, "InvalidAuthenticationToken")
    assert await attachment_bytes(g, user, item) == []
