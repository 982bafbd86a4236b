"""A request body ends when its declared length has arrived (``GraphMiddleware``).

Servers such as granian follow a body's last bytes with an empty ``more_body=False`` message;
waiting for it costs a round trip between the server's I/O thread and the event loop on every
request (bench/README.md). The middleware ends the body itself once ``Content-Length`` bytes
have come, and never asks for that message. Checked at the ASGI level (which messages the app
asks the server for) and against a real server (a keep-alive connection stays in step).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send

from graphattach.api.middleware import GraphMiddleware
from tests.api.test_stalled_body import _read_response, _token
from tests.engines import stack_server_args
from tests.helpers import ServerProcess

KiB = 1024


class _Server:
    """Hands the app ``messages`` one by one, as a server would, and counts what it was asked."""

    def __init__(self, messages: list[Message]) -> None:
        self.messages = list(messages)
        self.asked = 0

    async def receive(self) -> Message:
        self.asked += 1
        if self.messages:
            return self.messages.pop(0)
        return {"type": "http.disconnect"}


async def _run(headers: list[tuple[bytes, bytes]], messages: list[Message]) -> tuple[list[Message], _Server]:
    """The body messages an app behind ``GraphMiddleware`` reads until ``more_body`` is false."""
    server = _Server(messages)
    seen: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            seen.append(message)
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "PUT", "path": "/x", "headers": headers}
    await GraphMiddleware(app, lambda: datetime.now(UTC))(scope, server.receive, send)
    assert sent[0]["status"] == 200 and (b"connection", b"close") not in sent[0]["headers"]
    return seen, server


def _body(data: bytes, more: bool) -> Message:
    return {"type": "http.request", "body": data, "more_body": more}


async def test_a_body_ends_when_its_declared_length_has_come() -> None:
    data = os.urandom(KiB)
    seen, server = await _run([(b"content-length", b"1024")], [_body(data, True), _body(b"", False)])
    assert server.asked == 1  # the server's empty last message is never asked for
    assert seen == [_body(data, False)]


async def test_a_body_in_pieces_is_read_to_its_declared_length() -> None:
    data = os.urandom(3 * KiB)
    pieces = [_body(data[:1000], True), _body(data[1000:2000], True), _body(data[2000:], True), _body(b"", False)]
    seen, server = await _run([(b"content-length", b"3072")], pieces)
    assert server.asked == 3
    assert b"".join(m["body"] for m in seen) == data
    assert [m["more_body"] for m in seen] == [True, True, False]


async def test_a_server_that_ends_the_body_itself_is_followed() -> None:
    data = os.urandom(KiB)
    seen, server = await _run([(b"content-length", b"1024")], [_body(data, False)])
    assert server.asked == 1 and seen == [_body(data, False)]


@pytest.mark.parametrize(
    "headers",
    [
        [(b"transfer-encoding", b"chunked")],  # no declared length: the server says where it ends
        [(b"content-length", b"1024"), (b"transfer-encoding", b"chunked")],  # chunked wins (RFC 9112, 6.3)
        [(b"content-length", b"x")],
    ],
)
async def test_without_a_usable_length_the_server_ends_the_body(headers: list[tuple[bytes, bytes]]) -> None:
    data = os.urandom(KiB)
    seen, server = await _run(headers, [_body(data, True), _body(b"", False)])
    assert server.asked == 2
    assert seen == [_body(data, True), _body(b"", False)]


# ------------------------------------------------------------------------------------------------
# against a real server


@pytest.fixture(params=["granian", "uvicorn"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProcess]:
    args, env = stack_server_args(request)
    process = ServerProcess(tmp_path / "data", *args, "--server", request.param, "--sweep-interval", "0", env=env)
    process.start()
    yield process
    process.stop()


def test_small_ranges_on_one_connection_stay_in_step(server: ServerProcess) -> None:
    """1 KiB ranges and status reads, one after another on one keep-alive connection: each
    answer belongs to its request, and the bytes come back whole."""
    size = 3 * 1024 * 1024
    with httpx.Client(base_url=server.root, timeout=30) as http:
        headers = {"Authorization": f"Bearer {_token(http)}"}
        item = http.post("/v1.0/me/messages", json={"subject": "small ranges"}, headers=headers).json()["id"]
        session = http.post(
            f"/v1.0/me/messages/{item}/attachments/createUploadSession",
            json={"AttachmentItem": {"attachmentType": "file", "name": "small.bin", "size": size}},
            headers=headers,
        )
        assert session.status_code == 201, session.text
        url = session.json()["uploadUrl"]
    parts = urlsplit(url)
    target = f"{parts.path}?{parts.query}"
    data = os.urandom(size)
    position = 0
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:

        def put(piece: bytes, start: int) -> tuple[int, bytes]:
            head = (
                f"PUT {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Length: {len(piece)}\r\n"
                f"Content-Range: bytes {start}-{start + len(piece) - 1}/{size}\r\n\r\n"
            )
            sock.sendall(head.encode("latin-1") + piece)
            return _read_response(sock)

        for step in range(40):
            status, body = put(data[position : position + KiB], position)
            assert status == 200, body
            position += KiB
            expected = httpx.Response(200, content=body).json()["nextExpectedRanges"]
            assert [e.split("-")[0] for e in expected] == [str(position)], expected
            if step % 10 == 9:
                sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode("latin-1"))
                status, body = _read_response(sock)
                assert status == 200 and b'"nextExpectedRanges":["%d' % position in body, body
        # the rest in one range on the same connection completes the file
        status, body = put(data[position:], position)
        assert status == 201, body
    with httpx.Client(base_url=server.root, timeout=30) as http:
        listed = http.get(f"/v1.0/me/messages/{item}/attachments", headers=headers).json()["value"]
        assert [a["name"] for a in listed] == ["small.bin"]
        stored = http.get(f"/v1.0/me/messages/{item}/attachments/{listed[0]['id']}/$value", headers=headers)
        assert stored.status_code == 200 and stored.content == data
