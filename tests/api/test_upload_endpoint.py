"""The upload URL: the walkthrough replayed byte-exact, bad ranges, retries, auth, expiry, cancel,
profiles, concurrency and disconnects."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import re
import socket
from collections.abc import AsyncIterator, Iterator
from types import SimpleNamespace
from urllib.parse import urlsplit

import httpx
import pytest

from graphattach.services import sweeper
from graphattach.settings import Settings
from tests.conftest import inprocess
from tests.helpers import ADELE, Graph, ServerProcess, assert_graph_error
from tests.upload_helpers import (
    FLOWER_SIZE,
    FLOWER_SPLIT,
    JPEG_HEAD,
    MiB,
    collection,
    new_item,
    payload,
    put_range,
    token_of,
    upload_all,
    upload_url,
    without_token,
)

DATETIME_7 = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z"


@pytest.fixture(scope="module")
def lenient_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("lenient") / "data", "--profile", "lenient").start()
    yield server
    server.stop()


@pytest.fixture(params=["inprocess", "server"])
async def lenient(request: pytest.FixtureRequest, settings: Settings) -> AsyncIterator[Graph]:
    """A Graph client to a server in the ``lenient`` profile."""
    if request.param == "inprocess":
        async with inprocess(dataclasses.replace(settings, profile="lenient")) as graph:
            yield graph
        return
    server: ServerProcess = request.getfixturevalue("lenient_server")
    async with httpx.AsyncClient(timeout=60) as http:
        yield Graph(http, server.root, "server")


async def status_of(graph: Graph, url: str) -> list[str]:
    response = await graph.http.get(url)
    assert response.status_code == 200, response.text
    return list(response.json()["nextExpectedRanges"])


async def ids_of(graph: Graph, url: str) -> tuple[str, str]:
    """(mailbox ``uid@tid``, item id) as the upload URL names them."""
    match = re.search(r"users\('([^']+)'\)/(?:messages|events)\('([^']+)'\)", url)
    assert match
    return match.group(1), match.group(2)


# the walkthrough ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["message", "event"])
async def test_walkthrough_replays_byte_exact(graph: Graph, kind: str) -> None:
    item_id = await new_item(graph, kind)
    url = await upload_url(graph, item_id, FLOWER_SIZE, kind=kind)
    mailbox, url_item = await ids_of(graph, url)
    assert url_item == item_id
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(url))
    data = payload(FLOWER_SIZE, seed=1, head=JPEG_HEAD)
    items = collection(kind)

    first = await put_range(graph, url, data[:FLOWER_SPLIT], 0, FLOWER_SIZE)
    assert first.status_code == 200, first.text
    assert first.headers["content-type"].startswith("application/json")
    body = first.json()
    assert list(body) == ["@odata.context", "ExpirationDateTime", "nextExpectedRanges"]
    uid, tid = mailbox.split("@")
    assert body["@odata.context"] == (
        f"{origin}/api/gv1.0/$metadata#users('{uid}%40{tid}')/{items}('{item_id.replace('=', '%3D')}')"
        "/AttachmentSessions/$entity"
    )
    assert re.fullmatch(DATETIME_7, body["ExpirationDateTime"])
    assert body["nextExpectedRanges"] == ["2097152"]

    final = await put_range(graph, url, data[FLOWER_SPLIT:], FLOWER_SPLIT, FLOWER_SIZE)
    assert final.status_code == 201, final.text
    assert final.content == b""
    assert final.headers["content-length"] == "0"
    location = final.headers["location"]
    match = re.fullmatch(
        re.escape(f"{origin}/api/gv1.0/users('{mailbox}')/{items}('{item_id}')/Attachments('")
        + r"([A-Za-z0-9_=-]+)'\)",
        location,
    )
    assert match, location
    attachment_id = match.group(1)
    # only now does the item have the attachment, byte-exact, with Exchange's size and sniffed type
    item = await graph.get(f"/me/{items}/{item_id}")
    assert item.json()["hasAttachments"] is True
    listed = (await graph.get(f"/me/{items}/{item_id}/attachments")).json()["value"]
    assert [a["id"] for a in listed] == [attachment_id]
    metadata = await graph.get(
        f"/users('{mailbox}')/{items}('{item_id}')/attachments('{attachment_id}')"
        "?$select=lastModifiedDateTime,name,contentType,size,isInline"
    )
    assert metadata.status_code == 200, metadata.text
    shown = metadata.json()
    assert list(shown)[:4] == ["@odata.context", "@odata.type", "@odata.mediaContentType", "id"]
    assert shown["@odata.type"] == "#microsoft.graph.fileAttachment"
    assert shown["@odata.mediaContentType"] == "image/jpeg"
    assert {k: shown[k] for k in ("name", "contentType", "size", "isInline")} == {
        "name": "flower",
        "contentType": "image/jpeg",
        "size": 3_640_066,  # the walkthrough's figure for these 3,483,322 bytes
        "isInline": False,
    }
    raw = await graph.get(f"/me/{items}/{item_id}/attachments/{attachment_id}/$value")
    assert raw.status_code == 200
    assert raw.headers["content-type"].startswith("image/jpeg")
    assert raw.headers["content-length"] == str(FLOWER_SIZE)
    assert hashlib.sha256(raw.content).digest() == hashlib.sha256(data).digest()


async def test_the_status_body_never_changes_expiry_and_reports_acknowledged_bytes(graph: Graph) -> None:
    item_id = await new_item(graph)
    url = await upload_url(graph, item_id, 5 * MiB)
    before = await graph.http.get(url)
    assert before.status_code == 200
    assert before.json()["nextExpectedRanges"] == ["0"]
    put = await put_range(graph, url, payload(2 * MiB), 0, 5 * MiB)
    after = await graph.http.get(url)
    assert after.json() == put.json()
    assert after.json()["nextExpectedRanges"] == [str(2 * MiB)]
    assert after.json()["ExpirationDateTime"] == before.json()["ExpirationDateTime"]
    item = await graph.get(f"/me/messages/{item_id}")
    assert item.json()["hasAttachments"] is False  # nothing until the final range


async def test_cancel_frees_the_session(graph: Graph) -> None:
    item_id = await new_item(graph)
    url = await upload_url(graph, item_id, 3 * MiB)
    assert (await put_range(graph, url, payload(MiB), 0, 3 * MiB)).status_code == 200
    cancelled = await graph.http.delete(url)
    assert cancelled.status_code == 204
    assert cancelled.content == b""
    assert_graph_error(await graph.http.get(url), 404, "ErrorItemNotFound")
    assert_graph_error(await graph.http.delete(url), 404, "ErrorItemNotFound")
    assert_graph_error(await put_range(graph, url, payload(MiB), MiB, 3 * MiB), 404, "ErrorItemNotFound")
    assert (await graph.get(f"/me/messages/{item_id}/attachments")).json()["value"] == []
    if graph.ctx is not None:
        keys = [key async for key in graph.ctx.blobs.keys()]
        session_id = re.search(r"AttachmentSessions\('([^']+)'\)", url).group(1)  # type: ignore[union-attr]
        assert f"uploads/{session_id}" not in keys


# bad input: a Graph-shaped 4xx naming the next expected range, session unchanged -------------------


def _range(start: int, end: int, total: int) -> dict[str, str]:
    return {"Content-Range": f"bytes {start}-{end}/{total}"}


BAD_PUTS = [
    # (description, body length, headers, status, code)
    ("gap", MiB, _range(2 * MiB, 3 * MiB - 1, 4 * MiB), 416, "invalidRange"),
    ("overlap", MiB, _range(MiB // 2, MiB // 2 + MiB - 1, 4 * MiB), 416, "invalidRange"),
    ("wrong total", MiB, _range(MiB, 2 * MiB - 1, 5 * MiB), 400, "invalidRequest"),
    ("past the end", MiB, _range(4 * MiB - 10, 5 * MiB - 11, 4 * MiB), 400, "invalidRequest"),
    ("body shorter than the range", MiB, _range(MiB, 3 * MiB - 1, 4 * MiB), 400, "invalidRequest"),
    ("malformed", MiB, {"Content-Range": "bytes=1048576-2097151/4194304"}, 400, "invalidRequest"),
    ("star total", MiB, {"Content-Range": "bytes 1048576-2097151/*"}, 400, "invalidRequest"),
    ("missing", MiB, {"Content-Range": ""}, 400, "invalidRequest"),
    ("start after end", MiB, _range(2 * MiB, MiB, 4 * MiB), 400, "invalidRequest"),
]


@pytest.mark.parametrize(("what", "length", "headers", "status", "code"), BAD_PUTS, ids=[b[0] for b in BAD_PUTS])
async def test_bad_ranges_are_refused_and_leave_the_session_unchanged(
    graph: Graph, what: str, length: int, headers: dict[str, str], status: int, code: str
) -> None:
    total = 4 * MiB
    data = payload(total, seed=2)
    url = await upload_url(graph, await new_item(graph), total)
    assert (await put_range(graph, url, data[:MiB], 0, total)).status_code == 200
    send = {"Content-Type": "application/octet-stream", **headers}
    if not send["Content-Range"]:
        del send["Content-Range"]
    response = await graph.http.put(url, content=payload(length, seed=3), headers=send)
    error = assert_graph_error(response, status, code)
    assert "The next expected range is '1048576'" in error["message"], error["message"]
    assert await status_of(graph, url) == [str(MiB)]
    # and the upload goes on from where it was
    done = await upload_all_from(graph, url, data, MiB)
    assert done.status_code == 201


async def upload_all_from(graph: Graph, url: str, data: bytes, start: int) -> httpx.Response:
    return await put_range(graph, url, data[start:], start, len(data))


async def test_out_of_order_error_names_the_outlook_codes(graph: Graph) -> None:
    url = await upload_url(graph, await new_item(graph), 4 * MiB)
    response = await put_range(graph, url, payload(MiB), MiB, 4 * MiB)
    error = assert_graph_error(response, 416, "invalidRange")
    assert error["innerError"]["code"] == "fragmentOutOfOrder"
    assert await status_of(graph, url) == ["0"]


async def test_a_retried_range_gets_the_same_answer_and_is_stored_once(graph: Graph) -> None:
    total = 5 * MiB
    data = payload(total, seed=4)
    url = await upload_url(graph, await new_item(graph), total)
    first = await put_range(graph, url, data[: 2 * MiB], 0, total)
    again = await put_range(graph, url, data[: 2 * MiB], 0, total)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert await status_of(graph, url) == [str(2 * MiB)]
    final = await put_range(graph, url, data[2 * MiB :], 2 * MiB, total)
    assert final.status_code == 201


async def test_chunks_of_5_mib_plus_one_byte_and_more_are_accepted(graph: Graph) -> None:
    total = 12 * MiB
    data = payload(total, seed=5)
    url = await upload_url(graph, await new_item(graph), total)
    first = await put_range(graph, url, data[: 5 * MiB + 1], 0, total)
    assert first.status_code == 200, first.text
    second = await put_range(graph, url, data[5 * MiB + 1 :], 5 * MiB + 1, total)
    assert second.status_code == 201, second.text
    assert await _stored_bytes(graph, url) == data


async def test_a_range_larger_than_max_upload_chunk_is_413(settings: Settings) -> None:
    async with inprocess(dataclasses.replace(settings, max_upload_chunk=MiB)) as graph:
        url = await upload_url(graph, await new_item(graph), 3 * MiB)
        error = assert_graph_error(await put_range(graph, url, payload(MiB + 1), 0, 3 * MiB), 413)
        assert "The next expected range is '0'" in error["message"]
        assert (await put_range(graph, url, payload(MiB), 0, 3 * MiB)).status_code == 200


def _raw_request(port: int, url: str, head_lines: list[str], body: bytes = b"", close_after: bool = False) -> bytes:
    """Send a raw HTTP/1.1 request to 127.0.0.1 (the upload host is localhost) and read the answer."""
    parts = urlsplit(url)
    target = parts.path + "?" + parts.query
    request = f"PUT {target} HTTP/1.1\r\nHost: localhost:{port}\r\n" + "".join(f"{h}\r\n" for h in head_lines) + "\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(request.encode("latin-1") + body)
        if close_after:
            return b""
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


async def test_413_comes_before_a_byte_of_the_body_is_sent(server_process: ServerProcess) -> None:
    async with httpx.AsyncClient(timeout=60) as http:
        await _413_before_body(Graph(http, server_process.root, "server"), server_process)


async def _413_before_body(client: Graph, server_process: ServerProcess) -> None:
    url = await upload_url(client, await new_item(client), 100 * MiB)
    # Only the headers go out; the answer must arrive without the 99 MiB body.
    answer = await asyncio.to_thread(
        _raw_request,
        server_process.port,
        url,
        [
            "Content-Type: application/octet-stream",
            f"Content-Length: {99 * MiB}",
            f"Content-Range: bytes 0-{99 * MiB - 1}/{100 * MiB}",
        ],
    )
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert await status_of(client, url) == ["0"]


async def test_a_disconnect_mid_range_keeps_only_acknowledged_bytes(server_process: ServerProcess) -> None:
    async with httpx.AsyncClient(timeout=60) as http:
        await _disconnect_mid_range(Graph(http, server_process.root, "server"), server_process)


async def _disconnect_mid_range(client: Graph, server_process: ServerProcess) -> None:
    total = 6 * MiB
    data = payload(total, seed=6)
    url = await upload_url(client, await new_item(client), total)
    assert (await put_range(client, url, data[:MiB], 0, total)).status_code == 200
    # 1.5 MiB of a 2 MiB range, then the connection drops
    await asyncio.to_thread(
        _raw_request,
        server_process.port,
        url,
        [
            "Content-Type: application/octet-stream",
            f"Content-Length: {2 * MiB}",
            f"Content-Range: bytes {MiB}-{3 * MiB - 1}/{total}",
        ],
        data[MiB : MiB + 3 * MiB // 2],
        True,
    )
    for _ in range(100):  # the server notices the disconnect and releases the session's lock
        if await status_of(client, url) == [str(MiB)]:
            break
        await asyncio.sleep(0.05)
    assert await status_of(client, url) == [str(MiB)]
    resumed = await put_range(client, url, data[MiB:], MiB, total)
    assert resumed.status_code == 201, resumed.text


def _raw_exchange(port: int, url: str, requests: list[tuple[list[str], bytes]]) -> list[bytes]:
    """Send raw PUTs on one keep-alive connection, one after the other; the status line of each answer."""
    parts = urlsplit(url)
    target = parts.path + "?" + parts.query
    statuses: list[bytes] = []
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        pending = b""
        for head_lines, body in requests:
            head = f"PUT {target} HTTP/1.1\r\nHost: localhost:{port}\r\n" + "".join(f"{h}\r\n" for h in head_lines)
            sock.sendall(head.encode("latin-1") + b"\r\n" + body)
            while b"\r\n\r\n" not in pending:
                chunk = sock.recv(65536)
                assert chunk, "the server closed the connection"
                pending += chunk
            head_bytes, _, rest = pending.partition(b"\r\n\r\n")
            length = int(
                next(
                    line.split(b":")[1]
                    for line in head_bytes.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
            )
            while len(rest) < length:
                rest += sock.recv(65536)
            statuses.append(head_bytes.split(b"\r\n")[0])
            pending = rest[length:]
    return statuses


async def test_small_ranges_cut_short_or_refused_leave_the_session_as_it_was(server_process: ServerProcess) -> None:
    # A range of at most PREFETCH_LIMIT bytes is read while the session is fetched.
    async with httpx.AsyncClient(timeout=60) as http:
        client = Graph(http, server_process.root, "server")
        total = 3 * MiB
        data = payload(total, seed=16)
        url = await upload_url(client, await new_item(client), total)
        assert (await put_range(client, url, data[:1024], 0, total)).status_code == 200

        def head(start: int, length: int) -> list[str]:
            return [f"Content-Length: {length}", f"Content-Range: bytes {start}-{start + length - 1}/{total}"]

        # 500 of 1,024 bytes, then the connection drops
        await asyncio.to_thread(_raw_request, server_process.port, url, head(1024, 1024), data[1024:1524], True)
        for _ in range(100):
            if await status_of(client, url) == ["1024"]:
                break
            await asyncio.sleep(0.05)
        assert await status_of(client, url) == ["1024"]
        # refused (out of order), then accepted, on one connection: the refused body was drained
        statuses = await asyncio.to_thread(
            _raw_exchange,
            server_process.port,
            url,
            [
                (head(4096, 1024), data[4096:5120]),
                (head(1024, 1024), data[1024:2048]),
                (head(2048, 1), data[2048:2049]),
            ],
        )
        assert [s.split(b" ")[1] for s in statuses] == [b"416", b"200", b"200"]
        assert await status_of(client, url) == ["2049"]
        assert (await put_range(client, url, data[2049:], 2049, total)).status_code == 201


async def test_a_failing_body_stream_is_discarded(inprocess_graph: Graph) -> None:
    graph = inprocess_graph
    total = 4 * MiB
    data = payload(total, seed=7)
    url = await upload_url(graph, await new_item(graph), total)
    assert (await put_range(graph, url, data[:MiB], 0, total)).status_code == 200

    async def broken() -> AsyncIterator[bytes]:
        yield data[MiB : MiB + 300_000]
        raise OSError("connection reset")

    try:
        response = await graph.http.put(
            url,
            content=broken(),
            headers={"Content-Length": str(MiB), "Content-Range": f"bytes {MiB}-{2 * MiB - 1}/{total}"},
        )
    except OSError:
        pass  # the transport may hand the failure back to the client as is
    else:
        assert response.status_code >= 400
    assert await status_of(graph, url) == [str(MiB)]
    session_id = re.search(r"AttachmentSessions\('([^']+)'\)", url).group(1)  # type: ignore[union-attr]
    assert await graph.ctx.blobs.size(f"uploads/{session_id}") == MiB


# concurrency --------------------------------------------------------------------------------------


async def test_two_puts_of_the_same_range_at_once_append_exactly_once(graph: Graph) -> None:
    total = 8 * MiB
    data = payload(total, seed=8)
    url = await upload_url(graph, await new_item(graph), total)
    a, b = await asyncio.gather(
        put_range(graph, url, data[: 3 * MiB], 0, total), put_range(graph, url, data[: 3 * MiB], 0, total)
    )
    assert a.status_code == b.status_code == 200, (a.text, b.text)
    assert a.json() == b.json()
    assert a.json()["nextExpectedRanges"] == [str(3 * MiB)]
    if graph.ctx is not None:
        session_id = re.search(r"AttachmentSessions\('([^']+)'\)", url).group(1)  # type: ignore[union-attr]
        assert await graph.ctx.blobs.size(f"uploads/{session_id}") == 3 * MiB
    assert (await put_range(graph, url, data[3 * MiB :], 3 * MiB, total)).status_code == 201


async def test_different_sessions_upload_in_parallel(graph: Graph) -> None:
    total = 3 * MiB
    blobs = [payload(total, seed=20 + i) for i in range(3)]
    urls = [await upload_url(graph, await new_item(graph), total) for _ in blobs]
    answers = await asyncio.gather(*(upload_all(graph, url, data, MiB) for url, data in zip(urls, blobs, strict=True)))
    assert [a.status_code for a in answers] == [201, 201, 201]
    assert [await _stored_bytes(graph, url) for url in urls] == blobs  # nothing crossed between sessions


async def _stored_bytes(graph: Graph, upload_url: str) -> bytes:
    """The ``$value`` of the one attachment on the message the upload URL names."""
    item_id = re.search(r"messages\('([^']+)'\)", upload_url).group(1)  # type: ignore[union-attr]
    [attachment] = (await graph.get(f"/me/messages/{item_id}/attachments")).json()["value"]
    return (await graph.get(f"/me/messages/{item_id}/attachments/{attachment['id']}/$value")).content


# auth on the upload URL ---------------------------------------------------------------------------


async def test_upload_url_auth(graph: Graph) -> None:
    total = 3 * MiB
    url = await upload_url(graph, await new_item(graph), total)
    other = await upload_url(graph, await new_item(graph), total)
    token = token_of(url)
    chunk = payload(MiB)
    rng = {"Content-Range": f"bytes 0-{MiB - 1}/{total}"}

    # no token at all
    assert_graph_error(await graph.http.put(without_token(url), content=chunk, headers=rng), 401)
    # tampered: a flipped signature byte, or claims of another session
    head, claims, signature = token.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    assert_graph_error(
        await graph.http.put(url.replace(token, f"{head}.{claims}.{flipped}"), content=chunk, headers=rng), 401
    )
    assert_graph_error(await graph.http.put(url.replace(token, token_of(other)), content=chunk, headers=rng), 401)
    # a Graph token in the authtoken parameter
    graph_token = await graph.token(ADELE)
    error = assert_graph_error(await graph.http.put(url.replace(token, graph_token), content=chunk, headers=rng), 401)
    assert error["code"] == "InvalidAudience"
    # a Graph bearer token on the upload URL: Outlook's InvalidAudience
    error = assert_graph_error(
        await graph.http.put(url, content=chunk, headers={**rng, "Authorization": f"Bearer {graph_token}"}),
        401,
        "InvalidAudience",
    )
    assert error["message"] == "The audience claim value is invalid 'aud'."
    assert "oAuthEventOperationId" in error["innerError"]
    # any other Authorization header
    assert_graph_error(
        await graph.http.put(url, content=chunk, headers={**rng, "Authorization": "Bearer nonsense"}),
        401,
        "InvalidAuthenticationToken",
    )
    assert_graph_error(
        await graph.http.put(url, content=chunk, headers={**rng, "Authorization": f"Bearer {token_of(other)}"}), 401
    )
    assert await status_of(graph, url) == ["0"]
    # the URL's own token as a bearer is fine, with or without the query parameter
    ok = await graph.http.put(url, content=chunk, headers={**rng, "Authorization": f"Bearer {token}"})
    assert ok.status_code == 200, ok.text
    status = await graph.http.get(without_token(url), headers={"Authorization": f"Bearer {token}"})
    assert status.status_code == 200
    assert status.json()["nextExpectedRanges"] == [str(MiB)]


async def test_an_edited_upload_url_names_no_session(graph: Graph) -> None:
    url = await upload_url(graph, await new_item(graph), 3 * MiB)
    other_item = await new_item(graph)
    edited = re.sub(r"messages\('[^']+'\)", f"messages('{other_item}')", url)
    assert_graph_error(await graph.http.get(edited), 404, "ErrorItemNotFound")
    assert_graph_error(await graph.http.get(url.replace("AttachmentSessions(", "Sessions(")), 404)


async def test_lenient_ignores_other_authorization_headers(lenient: Graph) -> None:
    graph = lenient
    total = 3 * MiB
    url = await upload_url(graph, await new_item(graph), total)
    graph_token = await graph.token(ADELE)
    response = await put_range(graph, url, payload(MiB), 0, total, headers={"Authorization": f"Bearer {graph_token}"})
    assert response.status_code == 200, response.text
    # the URL's own token still rules
    assert_graph_error(
        await graph.http.get(without_token(url), headers={"Authorization": f"Bearer {graph_token}"}), 401
    )


# expiry and the sweeper ---------------------------------------------------------------------------


async def test_sessions_expire_with_the_clock_and_the_sweeper_frees_them(graph: Graph) -> None:
    total = 3 * MiB
    data = payload(total, seed=9)
    url = await upload_url(graph, await new_item(graph), total)
    assert (await put_range(graph, url, data[:MiB], 0, total)).status_code == 200
    lifetime = (await graph.admin("GET", "/info")).json()
    assert lifetime["uploadOrigin"] in url
    await graph.admin("POST", "/clock", json={"advanceSeconds": 6 * 3600 + 1})
    try:
        for response in (
            await graph.http.get(url),
            await put_range(graph, url, data[MiB:], MiB, total),
            await graph.http.delete(url),
        ):
            error = assert_graph_error(response, 401, "InvalidAuthenticationToken")
            assert "expired" in error["message"]
        swept = await graph.admin("POST", "/sweep")
        assert swept.status_code == 200
        assert swept.json()["expiredSessions"] >= 1
        # still 401 once the row is gone: the token says it expired
        assert_graph_error(await graph.http.get(url), 401, "InvalidAuthenticationToken")
        if graph.ctx is not None:
            keys = [key async for key in graph.ctx.blobs.keys()]
            session_id = re.search(r"AttachmentSessions\('([^']+)'\)", url).group(1)  # type: ignore[union-attr]
            assert f"uploads/{session_id}" not in keys
            lock_dir = getattr(graph.ctx.metadata, "lock_dir", None)
            if lock_dir is not None:  # the session's lock file went with it
                assert not any(name.startswith(session_id) for name in os.listdir(lock_dir))
    finally:
        await graph.admin("DELETE", "/clock")


async def test_the_sweeper_reclaims_orphans_whatever_the_clock(inprocess_graph: Graph) -> None:
    graph = inprocess_graph
    ctx = graph.ctx

    async def one(data: bytes) -> AsyncIterator[bytes]:
        yield data

    await ctx.blobs.write("uploads/stray", one(b"x" * 1000))
    total = 3 * MiB
    url = await upload_url(graph, await new_item(graph), total)
    assert (await put_range(graph, url, payload(MiB), 0, total)).status_code == 200
    done_url = await upload_url(graph, await new_item(graph), total)
    assert (await put_range(graph, done_url, payload(total), 0, total)).status_code == 201
    # nothing references the stray blob and no insert announced it: an orphan, now
    first = await graph.admin("POST", "/sweep")
    assert first.json() == {"expiredSessions": 0, "orphanedBlobs": 1, "busySessions": 0}
    assert await ctx.blobs.size("uploads/stray") is None
    await graph.admin("POST", "/clock", json={"advanceSeconds": ctx.settings.orphan_grace + 1})
    second = await graph.admin("POST", "/sweep")
    assert second.json() == {"expiredSessions": 0, "orphanedBlobs": 0, "busySessions": 0}
    keys = {key async for key in ctx.blobs.keys()}
    assert len(keys) == 2  # the live session's bytes and the attachment's are kept
    # past the sessions' lifetime: the active one is freed, the attachment keeps its bytes
    await graph.admin("POST", "/clock", json={"advanceSeconds": ctx.settings.upload_session_lifetime})
    third = await graph.admin("POST", "/sweep")
    assert third.json() == {"expiredSessions": 2, "orphanedBlobs": 0, "busySessions": 0}
    assert len({key async for key in ctx.blobs.keys()}) == 1
    await graph.admin("DELETE", "/clock")


async def test_background_sweeper_runs_when_enabled(settings: Settings) -> None:
    assert sweeper.start_background(SimpleNamespace(settings=settings)) is None  # type: ignore[arg-type]
    async with inprocess(dataclasses.replace(settings, sweep_interval=0.05)) as graph:
        handle = sweeper.start_background(graph.ctx)
        try:
            url = await upload_url(graph, await new_item(graph), 3 * MiB)
            assert (await put_range(graph, url, payload(MiB), 0, 3 * MiB)).status_code == 200
            # the session expires on the server's clock, not after a real wait
            graph.ctx.clock.advance(graph.ctx.settings.upload_session_lifetime + 1)
            session_id = re.search(r"AttachmentSessions\('([^']+)'\)", url).group(1)  # type: ignore[union-attr]
            for _ in range(200):  # the sweeper forgets the session, then frees its bytes
                if await graph.ctx.metadata.get_session(session_id) is None:
                    if await graph.ctx.blobs.size(f"uploads/{session_id}") is None:
                        break
                await asyncio.sleep(0.05)
            assert await graph.ctx.metadata.get_session(session_id) is None
            assert await graph.ctx.blobs.size(f"uploads/{session_id}") is None
        finally:
            await sweeper.stop_background(handle)
        assert handle.done()


# after completion: outlook vs lenient -------------------------------------------------------------


async def test_outlook_answers_404_to_puts_after_completion(graph: Graph) -> None:
    total = 4 * MiB
    data = payload(total, seed=10)
    url = await upload_url(graph, await new_item(graph), total)
    assert (await put_range(graph, url, data[: 3 * MiB], 0, total)).status_code == 200
    assert (await put_range(graph, url, data[3 * MiB :], 3 * MiB, total)).status_code == 201
    assert_graph_error(await put_range(graph, url, data[3 * MiB :], 3 * MiB, total), 404, "ErrorItemNotFound")
    empty = await graph.http.put(url, content=b"", headers={"Content-Range": f"bytes 0-{total - 1}/{total}"})
    assert_graph_error(empty, 404, "ErrorItemNotFound")
    assert_graph_error(await graph.http.get(url), 404, "ErrorItemNotFound")
    assert_graph_error(await graph.http.delete(url), 404, "ErrorItemNotFound")


@pytest.mark.parametrize("profile", ["outlook", "lenient"])
async def test_deleting_an_uploaded_attachment_frees_its_bytes_at_once(settings: Settings, profile: str) -> None:
    """The completed session stays on record (for a retried final range) without holding on to
    the bytes of an attachment that was deleted: with ``--in-memory`` they were RAM."""
    async with inprocess(dataclasses.replace(settings, profile=profile)) as graph:
        assert graph.ctx is not None
        total = 4 * MiB
        item = await new_item(graph)
        url = await upload_url(graph, item, total)
        before = {k async for k in graph.ctx.blobs.keys()}
        done = await upload_all(graph, url, payload(total, seed=11), 3 * MiB)
        assert done.status_code == 201
        assert len({k async for k in graph.ctx.blobs.keys()} - before) == 1
        [attachment] = (await graph.get(f"/me/messages/{item}/attachments?$select=id")).json()["value"]
        deleted = await graph.delete(f"/me/messages/{item}/attachments/{attachment['id']}")
        assert deleted.status_code == 204, deleted.text
        assert {k async for k in graph.ctx.blobs.keys()} == before


async def test_lenient_ranges_and_repeated_final_puts(lenient: Graph) -> None:
    graph = lenient
    total = 12 * MiB
    data = payload(total, seed=11)
    item_id = await new_item(graph)
    url = await upload_url(graph, item_id, total)
    first = await put_range(graph, url, data[: 5 * MiB], 0, total)
    assert first.json()["nextExpectedRanges"] == [f"{5 * MiB}-{total - 1}"]
    final = await put_range(graph, url, data[5 * MiB :], 5 * MiB, total)
    assert final.status_code == 201
    again = await put_range(graph, url, data[5 * MiB :], 5 * MiB, total)
    assert again.status_code == 201
    assert again.headers["location"] == final.headers["location"]
    assert again.content == b""
    other = await put_range(graph, url, data[: 5 * MiB], 0, total)
    assert_graph_error(other, 404, "ErrorItemNotFound")
    listed = (await graph.get(f"/me/messages/{item_id}/attachments?$select=name,size")).json()["value"]
    assert len(listed) == 1  # the repeated final PUT created nothing
    # msgraph-core's empty re-send of a single-range upload
    small = 4 * MiB
    single = await upload_url(graph, item_id, small)
    done = await put_range(graph, single, data[:small], 0, small)
    assert done.status_code == 201
    resend = await graph.http.put(single, content=b"", headers={"Content-Range": f"bytes 0-{small - 1}/{small}"})
    assert resend.status_code == 201, resend.text
    assert resend.headers["location"] == done.headers["location"]
    assert len((await graph.get(f"/me/messages/{item_id}/attachments?$select=name")).json()["value"]) == 2


# the mailbox's maximum message size ---------------------------------------------------------------


async def test_mailbox_maximum_message_size_is_enforced_mid_upload(graph: Graph) -> None:
    import uuid

    upn = f"small{uuid.uuid4().hex[:8]}@contoso.onmicrosoft.com"
    added = await graph.admin("POST", "/users", json={"userPrincipalName": upn, "maxMessageSize": 4 * MiB})
    assert added.status_code == 201, added.text
    item_id = await new_item(graph, user=upn)
    total = 5 * MiB
    url = await upload_url(graph, item_id, total, user=upn, token=await graph.token(upn))
    assert (await put_range(graph, url, payload(3 * MiB), 0, total)).status_code == 200
    error = assert_graph_error(
        await put_range(graph, url, payload(2 * MiB), 3 * MiB, total), 400, "ErrorMessageSizeExceeded"
    )
    assert "innerError" not in error
    assert await status_of(graph, url) == [str(3 * MiB)]
