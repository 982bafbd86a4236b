"""Change notifications with several ``graphattach serve`` processes on one PostgreSQL: changes
made at any process reach the receiver once each, in order (the store leases each subscription's
queue to one process at a time, ``FOR UPDATE SKIP LOCKED``)."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx

from graphattach.testing.receiver import Receiver
from tests.api.notification_support import about, subscribe, wait_for
from tests.helpers import Graph
from tests.scale.conftest import Cluster


async def test_each_notification_once_and_in_order_across_processes(cluster: Cluster) -> None:
    processes = [cluster.start(), cluster.start(), cluster.start()]
    with Receiver() as receiver:
        async with httpx.AsyncClient(timeout=60) as http:
            graphs = [Graph(http, p.root, "server") for p in processes]
            await subscribe(graphs[0], receiver, change_type="created")
            created: list[str] = []
            for n in range(30):
                graph = graphs[n % len(graphs)]
                response = await graph.post("/me/messages", json={"subject": f"scale {n}"})
                assert response.status_code == 201, response.text
                created.append(response.json()["id"])
            await wait_for(receiver, about(created[-1]))
            # let any process that would deliver twice do it before counting
            for graph in graphs:
                await graph.admin("POST", "/notifications/dispatch")
            await asyncio.sleep(0)
            ids = [n["resourceData"]["id"] for n in receiver.notifications()]
            counts = Counter(ids)
            assert all(counts[i] == 1 for i in created), counts
            assert [i for i in ids if i in set(created)] == created
