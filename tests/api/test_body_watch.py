"""The body's idle timeout (``BodyWatch``, issue 14): a wait for the next piece of a body that
lasts ``idle`` seconds ends the request with a 408; a body that keeps coming, however long it
takes in all, is read whole; a request cancelled from outside stays cancelled.

In process, at the ASGI level: the "server" hands the body out on a schedule. Each test's
outer ``asyncio.timeout`` only turns a hang into a failure (not a timing assertion).
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest
from starlette.types import Message, Receive, Scope, Send

from graphattach.api.middleware import BodyWatch, GraphMiddleware
from graphattach.domain.errors import BodyTimeout

HANG = 30.0


def _pieces(delays: list[float], size: int = 10, *, ends: bool = True) -> Receive:
    """A server that sends one ``size``-byte piece after each delay (the last one ends the body
    unless ``ends`` is false), then waits forever."""
    left = list(delays)

    async def receive() -> Message:
        if not left:
            await asyncio.Event().wait()
        await asyncio.sleep(left.pop(0))
        return {"type": "http.request", "body": b"x" * size, "more_body": bool(left) or not ends}

    return receive


async def _serve(receive: Receive, length: int, idle: float) -> tuple[list[Message], int]:
    """The answer ``GraphMiddleware`` sends for an app that reads the whole body; and its length."""
    read = 0

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal read
        while True:
            message = await receive()
            read += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "PUT", "path": "/x", "headers": [(b"content-length", str(length).encode())]}
    async with asyncio.timeout(HANG):
        await GraphMiddleware(app, lambda: datetime.now(UTC), lambda: idle)(scope, receive, send)
    return sent, read


async def test_a_body_that_keeps_coming_is_read_whole_however_long_it_takes() -> None:
    # Each wait is well inside the idle time, the whole body well past it: the timer set at the
    # first wait fires during a later one and must move, not cut the body.
    sent, read = await _serve(_pieces([0.05] * 12), 120, idle=0.25)
    assert sent[0]["status"] == 200
    assert read == 120


async def test_a_body_that_stops_is_answered_408_and_closes_the_connection() -> None:
    sent, read = await _serve(_pieces([0.0, 0.02], ends=False), 1000, idle=0.2)
    assert sent[0]["status"] == 408
    assert (b"connection", b"close") in sent[0]["headers"]
    assert json.loads(sent[1]["body"])["error"]["code"] == "RequestTimeout"


async def test_a_stall_after_a_long_wait_in_the_app_still_counts_from_the_wait() -> None:
    # The timer is armed at the first wait; the app then works for longer than the idle time
    # between two reads. That work is not a stall: only the waits count.
    watch = BodyWatch(0.2)
    receive = _pieces([0.0, 0.05], ends=False)
    try:
        async with asyncio.timeout(HANG):
            first = await watch.receive(receive)
            await asyncio.sleep(0.4)
            second = await watch.receive(receive)
            assert first["body"] and second["body"]
            with pytest.raises(BodyTimeout):
                await watch.receive(receive)
    finally:
        watch.close()


async def test_a_request_cancelled_from_outside_is_cancelled_not_timed_out() -> None:
    watch = BodyWatch(5.0)
    task = asyncio.ensure_future(watch.receive(_pieces([])))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    watch.close()


async def test_waits_in_other_tasks_are_watched_too() -> None:
    # A small upload range is read by a task of its own (services/uploads.py).
    watch = BodyWatch(0.2)
    receive = _pieces([0.0], ends=False)
    try:
        async with asyncio.timeout(HANG):
            assert (await asyncio.ensure_future(watch.receive(receive)))["body"]
            with pytest.raises(BodyTimeout):
                await asyncio.ensure_future(watch.receive(receive))
    finally:
        watch.close()


async def test_a_closed_watch_leaves_no_timer_behind() -> None:
    loop = asyncio.get_running_loop()
    watch = BodyWatch(60.0)
    before = len(getattr(loop, "_scheduled", []))
    await watch.receive(_pieces([0.0]))
    watch.close()
    after = [h for h in getattr(loop, "_scheduled", []) if not h.cancelled()]
    assert len(after) <= before
