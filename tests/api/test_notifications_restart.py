"""Notifications survive a crash of ``graphattach serve``: the outbox is in the store, and a
delivery cut short by the crash is made again after the restart (the lease of the dead process
runs out). On the session's stack (SQLite + files, or PostgreSQL + S3)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from graphattach.testing.receiver import Receiver
from tests.api.notification_support import about, file_attachment, subscribe, wait_for
from tests.api.test_messages import unique
from tests.helpers import Graph, ServerProcess


async def test_a_delivery_cut_by_a_crash_is_made_after_restart(request: pytest.FixtureRequest, data_dir: Path) -> None:
    from tests.engines import stack_server_args

    args, env = stack_server_args(request)
    server = ServerProcess(data_dir, *args, env=env).start()
    try:
        with Receiver() as receiver:
            async with httpx.AsyncClient(timeout=60) as http:
                graph = Graph(http, server.root, "server")
                await subscribe(graph, receiver)
                receiver.behaviour.delay = 2.5  # under Graph's 3 s: the crash comes first
                in_flight = (await graph.post("/me/messages", json={"subject": unique("inflight")})).json()
                await asyncio.to_thread(receiver.wait_started, 1)
                server.kill()  # SIGKILL while the POST is in flight
            receiver.behaviour.delay = 0
            # the receiver did answer, but nobody was there to hear it: the delivery is not done
            server.start()
            async with httpx.AsyncClient(timeout=60) as http:
                graph = Graph(http, server.root, "server")
                # a change queued while the receiver is unreachable waits in the outbox too
                receiver.behaviour.status = 503
                await graph.admin("POST", "/clock", json={"advanceSeconds": 61})  # the dead lease ends
                queued = (await graph.post("/me/messages", json={"subject": unique("queued")})).json()
                await asyncio.to_thread(receiver.wait_started, 2)
            server.kill()
            receiver.behaviour.status = 202
            server.start()
            async with httpx.AsyncClient(timeout=60) as http:
                graph = Graph(http, server.root, "server")
                # past the lease and the backoff set by the previous process (whose clock had moved)
                await graph.admin("POST", "/clock", json={"advanceSeconds": 300})
                await wait_for(receiver, about(queued["id"]))
                await wait_for(receiver, about(in_flight["id"]))
                ids = [n["resourceData"]["id"] for n in receiver.notifications()]
                # at least once, and in order
                assert ids.index(in_flight["id"]) < ids.index(queued["id"])
    finally:
        server.stop()


async def test_a_change_acknowledged_just_before_a_crash_is_notified_after_restart(
    request: pytest.FixtureRequest, data_dir: Path
) -> None:
    """The notification is queued in the transaction of the change: SIGKILL right after the 201 of
    an attachment POST (the receiver refusing meanwhile, so nothing left before the crash), and
    the restarted server delivers it."""
    from tests.engines import stack_server_args

    args, env = stack_server_args(request)
    server = ServerProcess(data_dir, *args, env=env).start()
    try:
        with Receiver() as receiver:
            async with httpx.AsyncClient(timeout=60) as http:
                graph = Graph(http, server.root, "server")
                sub = await subscribe(graph, receiver, change_type="updated")
                draft = (await graph.post("/me/messages", json={"subject": unique("crash")})).json()
                receiver.behaviour.status = 503
                added = await graph.post(f"/me/messages/{draft['id']}/attachments", json=file_attachment("a.txt", b"x"))
                assert added.status_code == 201, added.text
                server.kill()  # SIGKILL
            assert not [n for n in receiver.notifications() if about(draft["id"])(n)]
            receiver.behaviour.status = 202
            server.start()
            async with httpx.AsyncClient(timeout=60) as http:
                graph = Graph(http, server.root, "server")
                # past a lease or a backoff the killed process may have left
                await graph.admin("POST", "/clock", json={"advanceSeconds": 120})
                notification = await wait_for(receiver, about(draft["id"], "updated"))
                assert notification["subscriptionId"] == sub["id"]
                etag = (await graph.get(f"/me/messages/{draft['id']}")).json()["@odata.etag"]
                assert notification["resourceData"]["@odata.etag"] == etag
    finally:
        server.stop()
