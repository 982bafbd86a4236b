"""The $batch parser (protocol/batch.py) and the scheduler (api/batch.execute)."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from graphattach.api.batch import execute
from graphattach.domain.errors import GraphError
from graphattach.protocol.batch import BatchItem, parse_batch


def get(request_id: str, *depends: str) -> dict[str, Any]:
    return {"id": request_id, "method": "GET", "url": "/me", "dependsOn": list(depends)}


def test_urls_bodies_and_sdk_spellings() -> None:
    items = parse_batch(
        {
            "requests": [
                {"id": 1, "method": "get", "url": "users?$select=id"},
                {
                    "id": "2",
                    "method": "POST",
                    "url": "/me/messages",
                    "headers": {"content-type": "application/json"},
                    "body": {"subject": "x"},
                    "depends_on": ["1"],  # msgraph-sdk-python's key
                },
                {
                    "id": "3",
                    "method": "PUT",
                    "url": "/x",
                    "headers": {"Content-Type": "image/png"},
                    "body": base64.urlsafe_b64encode(b"\xff\xfe\xfd").decode().rstrip("="),
                    "dependsOn": ["2"],
                },
                {
                    "id": "4",
                    "method": "POST",
                    "url": "/y",
                    "headers": {"Content-Type": "text/plain"},
                    "body": "hé",
                    "dependsOn": ["3"],
                },
            ]
        },
        lenient=False,
    )
    assert items[0].id == "1" and items[0].method == "GET" and items[0].url == "/users?$select=id"
    assert items[1].body == b'{"subject":"x"}' and items[1].depends_on == ["1"]
    assert items[2].body == b"\xff\xfe\xfd"
    assert items[3].body == "hé".encode()


def test_dependency_shapes() -> None:
    parse_batch({"requests": [get("1"), get("2", "1"), get("3", "2")]}, lenient=False)  # serial
    parse_batch({"requests": [get("1"), get("2", "1"), get("3", "1")]}, lenient=False)  # all on the same one
    with pytest.raises(GraphError, match="fully sequential or fully parallel"):
        parse_batch({"requests": [get("1"), get("2"), get("3", "1")]}, lenient=False)
    with pytest.raises(GraphError, match="fully sequential or fully parallel"):
        parse_batch({"requests": [get("1"), get("2", "1"), get("3", "1", "2")]}, lenient=False)
    # lenient: any acyclic graph, in any order; a cycle is refused
    parse_batch({"requests": [get("1", "3"), get("2"), get("3", "2")]}, lenient=True)
    with pytest.raises(GraphError, match="cycle"):
        parse_batch({"requests": [get("1", "3"), get("2", "1"), get("3", "2")]}, lenient=True)
    with pytest.raises(GraphError, match="Invalid dependency"):
        parse_batch({"requests": [get("1", "1")]}, lenient=True)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(), lambda c: st.lists(c) | st.dictionaries(st.text(), c)
    )
)
def test_any_json_is_parsed_or_refused_with_a_graph_error(payload: Any) -> None:
    for body in (payload, {"requests": payload}, {"requests": [payload]}):
        try:
            parse_batch(body, lenient=False)
        except GraphError as exc:
            assert exc.status == 400


async def test_at_most_four_at_a_time_and_dependencies_wait() -> None:
    running = 0
    peak = 0
    order: list[str] = []

    async def dispatch(item: BatchItem) -> dict[str, Any]:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        running -= 1
        order.append(item.id)
        return {"id": item.id, "status": 500 if item.id == "s2" else 200}

    parallel = parse_batch({"requests": [get(str(i)) for i in range(20)]}, lenient=False)
    results = await execute(parallel, dispatch)
    assert [r["id"] for r in results] == [str(i) for i in range(20)]
    assert peak == 4
    order.clear()
    serial = parse_batch({"requests": [get("s1"), get("s2", "s1"), get("s3", "s2"), get("s4", "s3")]}, lenient=False)
    results = await execute(serial, dispatch)
    assert order == ["s1", "s2"]  # s3 and s4 never ran
    assert [r["status"] for r in results] == [200, 500, 424, 424]
