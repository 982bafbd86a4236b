"""Limits as the real service enforces them (4 MiB request body, 250 attachments, the mailbox's maximum
message size) and streaming of large attachments."""

from __future__ import annotations

import asyncio
import base64
import socket
import uuid

import httpx
import orjson

from graphattach.protocol.attachments import STREAM_CHUNK, base64_length
from graphattach.services import attachments as service
from tests.api.attachment_support import FILE, attach, attachment_ids, file_payload, new_event, new_message, sha256
from tests.helpers import ADELE, Graph, ServerProcess, assert_graph_error

MAX_RAW = 3_145_611
#: 77 bytes of JSON around the name and the base64: with a 79-character name the body of a
#: 3,145,611-byte file is exactly 4 MiB.
NAME_79 = "x" * 75 + ".bin"


def _exact_body(raw_length: int) -> bytes:
    data = bytes([7]) * raw_length
    return orjson.dumps({"@odata.type": FILE, "name": NAME_79, "contentBytes": base64.b64encode(data).decode()})


async def test_request_body_cap_is_exactly_4_mib(graph: Graph) -> None:
    message = await new_message(graph)
    base = f"/me/messages/{message['id']}"
    fits = _exact_body(MAX_RAW)
    assert len(fits) == 4 * 1024 * 1024
    response = await graph.post(f"{base}/attachments", content=fits, headers={"Content-Type": "application/json"})
    assert response.status_code == 201, response.text[:300]
    assert response.json()["size"] > MAX_RAW
    raw = await graph.get(f"{base}/attachments/{response.json()['id']}/$value")
    assert len(raw.content) == MAX_RAW
    too_big = _exact_body(MAX_RAW + 1)
    assert len(too_big) == 4 * 1024 * 1024 + 4
    refused = await graph.post(f"{base}/attachments", content=too_big, headers={"Content-Type": "application/json"})
    error = assert_graph_error(refused, 413, "RequestEntityTooLarge")
    assert error["message"] == "The maximum request length supported is 4MB."
    assert await attachment_ids(graph, base) == [response.json()["id"]]


async def test_body_cap_without_content_length_is_enforced_while_reading(graph: Graph) -> None:
    message = await new_message(graph)
    base = f"/me/messages/{message['id']}"
    body = _exact_body(MAX_RAW + 3000)

    async def chunked() -> object:
        for start in range(0, len(body), 256 * 1024):
            yield body[start : start + 256 * 1024]

    response = await graph.post(f"{base}/attachments", content=chunked(), headers={"Content-Type": "application/json"})
    assert_graph_error(response, 413, "RequestEntityTooLarge")
    assert await attachment_ids(graph, base) == []


def _read_response(sock: socket.socket) -> tuple[bytes, dict[str, str], bytes]:
    """Status line, headers and body of one HTTP/1.1 response with a Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a response: {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers = {k.decode().lower(): v.decode().strip() for k, _, v in (line.partition(b":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk
        rest += chunk
    return lines[0], headers, rest[:length]


def _drain_until_closed(sock: socket.socket) -> bytes:
    received = b""
    sock.settimeout(10)
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received


async def test_oversized_body_is_refused_and_keep_alive_stays_in_step(server_process: ServerProcess) -> None:
    async with httpx.AsyncClient(timeout=60) as http:
        graph = Graph(http, server_process.root, "server")
        message = await new_message(graph)
        token = await graph.token(ADELE)
    path = f"/v1.0/me/messages/{message['id']}/attachments"
    host = "127.0.0.1"
    too_big = _exact_body(MAX_RAW + 1)
    with socket.create_connection((host, server_process.port), timeout=30) as sock:
        # The whole over-cap body, then a GET on the same keep-alive connection.
        sock.sendall(
            (
                f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(too_big)}\r\n\r\n"
            ).encode()
            + too_big
        )
        status, headers, body = _read_response(sock)
        assert b" 413 " in status, status
        assert orjson.loads(body)["error"]["code"] == "RequestEntityTooLarge"
        assert headers.get("connection", "").lower() != "close"
        sock.sendall(
            f"GET {path}?$select=id HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
        )
        # the next request is parsed where it starts, not from the leftovers of the refused body
        status, _, body = _read_response(sock)
        assert b" 200 " in status, status
        assert orjson.loads(body)["value"] == []


async def test_huge_announced_body_gets_413_at_once_and_the_connection_closes(
    server_process: ServerProcess,
) -> None:
    async with httpx.AsyncClient(timeout=60) as http:
        graph = Graph(http, server_process.root, "server")
        message = await new_message(graph)
        token = await graph.token(ADELE)
    path = f"/v1.0/me/messages/{message['id']}/attachments"
    host = "127.0.0.1"
    with socket.create_connection((host, server_process.port), timeout=30) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
        status, _, _ = _read_response(sock)
        assert b" 200 " in status  # a healthy keep-alive connection
        # 100 MB announced, 64 KiB sent: the 413 comes without waiting for (or keeping) the body.
        sock.sendall(
            (
                f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
                "Content-Type: application/json\r\nContent-Length: 104857600\r\n\r\n"
            ).encode()
            + b'{"@odata.type":"#microsoft.graph.fileAttachment","name":"big","contentBytes":"'
            + b"QUFB" * 16384
        )
        status, headers, body = _read_response(sock)
        assert b" 413 " in status, status
        assert orjson.loads(body)["error"]["code"] == "RequestEntityTooLarge"
        # The body cannot be drained: the server says so and closes, so no request is ever parsed
        # from the leftover bytes; a request written after them gets no answer on this connection.
        assert headers.get("connection", "").lower() == "close"
        try:
            sock.sendall(b"QUFB" * 1024 + f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert b"HTTP/1.1" not in _drain_until_closed(sock)
    # a pooled client carries on with the next request
    async with httpx.AsyncClient(timeout=60) as http:
        graph = Graph(http, server_process.root, "server")
        again = await graph.get(f"/me/messages/{message['id']}/attachments")
        assert again.status_code == 200 and again.json()["value"] == []


async def test_small_refused_body_keeps_the_connection_usable(server_process: ServerProcess) -> None:
    """A bad request whose body fits the drain limit keeps the keep-alive connection in step."""
    async with httpx.AsyncClient(timeout=60) as http:
        graph = Graph(http, server_process.root, "server")
        message = await new_message(graph)
        token = await graph.token(ADELE, scopes=["Mail.Read"])
    path = f"/v1.0/me/messages/{message['id']}/attachments"
    host = "127.0.0.1"
    payload = orjson.dumps(file_payload("a.txt", b"z" * 5000))
    with socket.create_connection((host, server_process.port), timeout=30) as sock:
        # 403 (Mail.Read cannot add) is decided before the body is read
        sock.sendall(
            (
                f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
            ).encode()
            + payload
        )
        status, headers, _ = _read_response(sock)
        assert b" 403 " in status and headers.get("connection", "").lower() != "close"
        # The next request on the same connection (as a keep-alive pool sends it: after the answer;
        # granian does not serve pipelined requests) must be parsed cleanly, not from leftover body.
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
        status, _, body = _read_response(sock)
        assert b" 200 " in status and orjson.loads(body)["value"] == []


async def test_250_attachments_per_item(graph: Graph) -> None:
    event = await new_event(graph)
    base = f"/me/events/{event['id']}"
    for index in range(250):
        response = await graph.post(f"{base}/attachments", json=file_payload(f"{index}.txt", b"."))
        assert response.status_code == 201, (index, response.text)
    error = assert_graph_error(await graph.post(f"{base}/attachments", json=file_payload("251.txt")), 400)
    assert error["code"] == "ErrorAttachmentLimitExceeded" and "innerError" not in error
    assert int((await graph.get(f"{base}/attachments/$count")).text) == 250


async def _user_with_max(graph: Graph, max_size: int) -> str:
    upn = f"small{uuid.uuid4().hex[:8]}@contoso.onmicrosoft.com"
    created = await graph.admin("POST", "/users", json={"userPrincipalName": upn, "maxMessageSize": max_size})
    assert created.status_code == 201, created.text
    return upn


async def test_mailbox_maximum_message_size_counts_raw_bytes(graph: Graph) -> None:
    upn = await _user_with_max(graph, 1000)
    message = await new_message(graph, upn)
    base = f"/users/{upn}/messages/{message['id']}"
    first = await attach(graph, base, file_payload("a.bin", b"a" * 600), user=upn)
    refused = await graph.post(f"{base}/attachments", json=file_payload("b.bin", b"b" * 401), user=upn)
    error = assert_graph_error(refused, 400, "ErrorMessageSizeExceeded")
    assert "innerError" not in error
    assert error["message"].startswith("The message exceeds the maximum supported size.")
    # exactly up to the maximum on raw bytes (the reported sizes add up to more)
    second = await attach(graph, base, file_payload("c.bin", b"c" * 400), user=upn)
    assert first["size"] + second["size"] > 1000
    assert await attachment_ids(graph, base, user=upn) == [first["id"], second["id"]]
    # the admin API raises the limit
    raised = await graph.admin("PATCH", f"/users/{upn}", json={"maxMessageSize": 5000})
    assert raised.status_code == 200 and raised.json()["maxMessageSize"] == 5000
    await attach(graph, base, file_payload("d.bin", b"d" * 401), user=upn)
    assert len(await attachment_ids(graph, base, user=upn)) == 3


async def test_limit_failure_leaves_no_bytes_behind(graph: Graph) -> None:
    upn = await _user_with_max(graph, 100)
    message = await new_message(graph, upn)
    base = f"/users/{upn}/messages/{message['id']}"
    before = [k async for k in graph.ctx.blobs.keys()] if graph.ctx is not None else None
    assert_graph_error(
        await graph.post(f"{base}/attachments", json=file_payload("big.bin", b"x" * 101), user=upn),
        400,
        "ErrorMessageSizeExceeded",
    )
    assert await attachment_ids(graph, base, user=upn) == []
    assert (await graph.get(f"/users/{upn}/messages/{message['id']}", user=upn)).json()["hasAttachments"] is False
    if graph.ctx is not None:
        assert [k async for k in graph.ctx.blobs.keys()] == before


# ------------------------------------------------------------------------------------------------
# streaming


async def _asgi_body_sizes(graph: Graph, path: str) -> list[int]:
    """The sizes of the body messages the app sends for a GET (in-process only)."""
    transport = graph.http._transport
    assert isinstance(transport, httpx.ASGITransport)
    token = await graph.token(ADELE)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), (b"authorization", f"Bearer {token}".encode())],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 8765),
    }
    sizes: list[int] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        if message["type"] == "http.response.start":
            assert message["status"] == 200
        elif message["type"] == "http.response.body" and message.get("body"):
            sizes.append(len(message["body"]))  # type: ignore[arg-type]

    await transport.app(scope, receive, send)
    return sizes


async def _read_both_ways(graph: Graph, base: str, attachment_id: str) -> tuple[bytes, bytes, int]:
    """(contentBytes decoded, $value bytes, number of body pieces of the JSON response)."""
    url = f"{graph.v1}{base}/attachments/{attachment_id}"
    headers = {"Authorization": f"Bearer {await graph.token(ADELE)}"}
    pieces = 0
    received = bytearray()
    async with graph.http.stream("GET", url, headers=headers) as response:
        assert response.status_code == 200
        declared = int(response.headers["content-length"])
        async for piece in response.aiter_raw():
            pieces += 1
            received += piece
    assert len(received) == declared
    entity = orjson.loads(bytes(received))
    assert list(entity)[-1] == "contentBytes"
    raw = await graph.get(f"{base}/attachments/{attachment_id}/$value")
    assert raw.headers["content-length"] == str(len(raw.content))
    return base64.b64decode(entity["contentBytes"]), raw.content, pieces


async def test_large_attachment_reads_back_identical_through_both_paths(graph: Graph) -> None:
    message = await new_message(graph)
    base = f"/me/messages/{message['id']}"
    if graph.ctx is not None:
        # In-process: a multi-MiB attachment put in through the service (a POST is capped at 4 MiB).
        data = bytes(range(251)) * (8 * 1024 * 1024 // 251 + 1)
        user = await graph.ctx.metadata.get_user_by_upn(ADELE)
        item = await graph.ctx.metadata.get_item(user.id, message["id"])
        attachment_id = (await service.add_file(graph.ctx, user, item, name="big.bin", content=data)).id
    else:
        # Over the real server: under the POST cap but larger than one stream chunk.
        data = bytes(range(253)) * (3_000_000 // 253)
        attachment_id = (await attach(graph, base, file_payload("big.bin", data)))["id"]
    from_json, from_value, _ = await _read_both_ways(graph, base, attachment_id)
    assert sha256(from_json) == sha256(from_value) == sha256(data)
    if graph.ctx is not None:
        # At the ASGI level the JSON goes out as prefix, base64 pieces of at most one stream chunk
        # each, suffix: never one buffer holding the file.
        for suffix in ("", "/$value"):
            sizes = await _asgi_body_sizes(graph, f"/v1.0{base}/attachments/{attachment_id}{suffix}")
            assert len(sizes) > 3
            assert max(sizes) <= base64_length(STREAM_CHUNK)
    listed = (await graph.get(f"{base}/attachments")).json()["value"]
    assert sha256(base64.b64decode(listed[0]["contentBytes"])) == sha256(data)


async def test_concurrent_adds_respect_the_mailbox_size_exactly(graph: Graph) -> None:
    upn = await _user_with_max(graph, 1000)
    message = await new_message(graph, upn)
    base = f"/users/{upn}/messages/{message['id']}"
    token = await graph.token(upn)

    async def add(index: int) -> int:
        response = await graph.post(f"{base}/attachments", json=file_payload(f"{index}.bin", b"q" * 150), token=token)
        if response.status_code != 201:
            assert_graph_error(response, 400, "ErrorMessageSizeExceeded")
        return response.status_code

    results = await asyncio.gather(*(add(i) for i in range(10)))
    assert sorted(results) == [201] * 6 + [400] * 4  # 6 × 150 raw bytes fit in 1000, a 7th does not
    assert len(await attachment_ids(graph, base, user=upn)) == 6
