"""``POST /{v1.0|beta}/$batch``: run each request through this same ASGI app.

A sub-request is an ordinary HTTP request to the app (middleware, token check, scopes, routing,
handlers, errors): there is no second code path. It carries the outer request's
``Authorization`` header (the batch is authenticated once, as Graph does) and its own headers and
body. At most four run at a time (Outlook's concurrency per mailbox); a request runs after those
it depends on, and answers 424 without running when one of them failed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message

from graphattach.api.call import read_body
from graphattach.api.responses import graph_json
from graphattach.protocol import batch as proto
from graphattach.protocol.jsonio import loads_object
from graphattach.protocol.operations import BATCH_OPERATION, OPERATION_KEY
from graphattach.services.context import Context

#: Outer headers every sub-request inherits (unless it sets its own).
_INHERITED = ("authorization", "user-agent", "client-request-id")


def is_batch_path(rest: str) -> bool:
    return rest.strip("/").lower() in ("$batch", "%24batch")


async def run_batch(request: Request, version: str) -> Response:
    """The batch answer: 200 with one response per request (request order)."""
    ctx: Context = request.app.state.ctx
    request.scope["state"][OPERATION_KEY] = BATCH_OPERATION
    # The 4 MiB request cap covers the whole batch body (413 over it).
    raw = await read_body(request, ctx.settings.max_request_body)
    items = proto.parse_batch(loads_object(raw), lenient=ctx.settings.profile == "lenient")
    outer = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in request.scope.get("headers", [])}

    async def dispatch(item: proto.BatchItem) -> dict[str, Any]:
        return await _dispatch(request, version, item, outer)

    return graph_json({"responses": await execute(items, dispatch)})


async def execute(
    items: list[proto.BatchItem],
    dispatch: Callable[[proto.BatchItem], Awaitable[dict[str, Any]]],
    *,
    concurrency: int = proto.MAX_CONCURRENT,
) -> list[dict[str, Any]]:
    """Run ``dispatch`` for each item, at most ``concurrency`` at a time, each after the items it
    depends on; an item whose dependency failed (status >= 400) answers 424 without running.
    The answers come back in request order."""
    semaphore = asyncio.Semaphore(concurrency)
    loop = asyncio.get_running_loop()
    done: dict[str, asyncio.Future[int]] = {item.id.lower(): loop.create_future() for item in items}
    results: dict[str, dict[str, Any]] = {}

    async def run(item: proto.BatchItem) -> None:
        status = 424
        try:
            for dep in item.depends_on:
                if await done[dep.lower()] >= 400:
                    results[item.id] = proto.failed_dependency_item(item.id, dep)
                    return
            async with semaphore:
                results[item.id] = await dispatch(item)
            status = results[item.id]["status"]
        finally:
            future = done[item.id.lower()]
            if not future.done():
                future.set_result(status)

    await asyncio.gather(*(run(item) for item in items))
    return [results[item.id] for item in items]


async def _dispatch(request: Request, version: str, item: proto.BatchItem, outer: dict[str, str]) -> dict[str, Any]:
    path, _, query = item.url.partition("?")
    if is_batch_path(path):
        body = b'{"error":{"code":"BadRequest","message":"Nested batch requests are not supported."}}'
        return proto.response_item(item.id, 400, [("Content-Type", "application/json")], body)
    full_path = f"/{version}{path}"
    headers: dict[str, str] = {name: outer[name] for name in _INHERITED if name in outer}
    for name, value in item.headers.items():
        if name.lower() != "authorization":  # the batch is authenticated once, by the outer request
            headers[name.lower()] = value
    body = item.body or b""
    headers["content-length"] = str(len(body))
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": request.scope.get("asgi", {"version": "3.0"}),
        "http_version": request.scope.get("http_version", "1.1"),
        "method": item.method,
        "scheme": request.scope.get("scheme", "http"),
        "server": request.scope.get("server"),
        "client": request.scope.get("client"),
        "root_path": request.scope.get("root_path", ""),
        "path": unquote(full_path),
        "raw_path": full_path.encode("latin-1", errors="replace"),
        "query_string": query.encode("latin-1", errors="replace"),
        "headers": [(k.encode("latin-1"), v.encode("latin-1", errors="replace")) for k, v in headers.items()],
        "state": {},
    }
    sent_body = False

    async def receive() -> Message:
        nonlocal sent_body
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # never: a sub-request has no disconnect to report
        raise AssertionError  # pragma: no cover

    status = 500
    response_headers: list[tuple[str, str]] = []
    chunks: list[bytes] = []

    async def send(message: Message) -> None:
        nonlocal status, response_headers
        if message["type"] == "http.response.start":
            status = message["status"]
            response_headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in message.get("headers", [])]
        elif message["type"] == "http.response.body":
            chunks.append(bytes(message.get("body", b"")))

    await request.app(scope, receive, send)
    return proto.response_item(item.id, status, response_headers, b"".join(chunks))
