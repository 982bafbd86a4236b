"""What the fault layer costs when no rule is configured: 1 KiB upload PUTs through the ASGI app.

``python -m bench.fault_overhead with|without [PUTS]`` serves PUTS ranges of 1 KiB to one upload
session, in-process (in-memory stores, no socket), with the app as built (``with``) or with the
fault layer taken out of its middleware (``without``). Time the two commands as whole processes
(``/usr/bin/time``, or any harness that alternates them) and compare.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from graphattach.api.app import build_app
from graphattach.api.faults import FaultLayer
from graphattach.composition import context_for
from graphattach.protocol.jsonio import dumps
from graphattach.services.users import find_user
from graphattach.settings import Settings

KiB = 1024


async def _call(app: Any, method: str, path: str, query: bytes, headers: list[tuple[bytes, bytes]], body: bytes) -> int:
    status = 0
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "headers": headers,
        "server": ("127.0.0.1", 8765),
        "client": ("127.0.0.1", 50000),
        "scheme": "http",
        "root_path": "",
    }
    await app(scope, receive, send)
    return status


async def main(variant: str, puts: int) -> None:
    async with context_for(Settings(in_memory=True, sweep_interval=0)) as ctx:
        app = build_app(ctx)
        if variant == "without":
            app.user_middleware = [m for m in app.user_middleware if m.cls is not FaultLayer]
        token = ctx.tokens.mint_app(roles=["Mail.ReadWrite"], app_id="bench", now=ctx.clock.now().timestamp())
        auth = [(b"authorization", f"Bearer {token}".encode()), (b"content-type", b"application/json")]
        user = await find_user(ctx, "adele@contoso.onmicrosoft.com")
        assert user is not None
        item = (await _post_json(app, f"/v1.0/users/{user.id}/messages", auth, {"subject": "bench"}))["id"]
        size = max(puts * KiB, 3 * 1024 * KiB)
        created = await _post_json(
            app,
            f"/v1.0/users/{user.id}/messages/{item}/attachments/createUploadSession",
            auth,
            {"AttachmentItem": {"attachmentType": "file", "name": "b.bin", "size": size}},
        )
        url = created["uploadUrl"]
        path, _, query = url.split("://", 1)[1].partition("/")[2].partition("?")
        path = "/" + path
        piece = b"x" * KiB
        for index in range(puts):
            start = index * KiB
            headers = [
                (b"content-range", f"bytes {start}-{start + KiB - 1}/{size}".encode()),
                (b"content-length", str(KiB).encode()),
            ]
            status = await _call(app, "PUT", path, query.encode(), headers, piece)
            assert status == 200, status


async def _post_json(app: Any, path: str, headers: list[tuple[bytes, bytes]], body: Any) -> Any:
    return await _json_call(app, "POST", path, headers, dumps(body))


async def _json_call(app: Any, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes) -> Any:
    chunks: list[bytes] = []
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": headers,
        "server": ("127.0.0.1", 8765),
        "client": ("127.0.0.1", 50000),
        "scheme": "http",
        "root_path": "",
    }
    await app(scope, receive, send)
    return json.loads(b"".join(chunks))


if __name__ == "__main__":
    variant = sys.argv[1] if len(sys.argv) > 1 else "with"
    if variant not in ("with", "without"):
        raise SystemExit("usage: python -m bench.fault_overhead with|without [PUTS]")
    asyncio.run(main(variant, int(sys.argv[2]) if len(sys.argv) > 2 else 3000))
