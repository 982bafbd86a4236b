"""A request body that stops arriving holds nothing for long (issue 14, item 2).

Against real ``graphattach serve`` processes (raw sockets: the stall is a client that sends the
headers and part of the body, then nothing), on the test stack's stores.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.engines import stack_server_args
from tests.helpers import ADELE, ServerProcess

#: How long a client waits before calling an answer a hang (not a timing assertion: a sweep
#: answers in milliseconds, a hang never).
HANG = 30.0


@pytest.fixture
def patient_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProcess]:
    """A server that waits for a stalled body forever (``--body-timeout 0``)."""
    args, env = stack_server_args(request)
    server = ServerProcess(tmp_path / "data", *args, "--body-timeout", "0", "--sweep-interval", "0", env=env)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def strict_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProcess]:
    """A server that gives up on a body after one idle second."""
    args, env = stack_server_args(request)
    server = ServerProcess(tmp_path / "data", *args, "--body-timeout", "1", "--sweep-interval", "0", env=env)
    server.start()
    yield server
    server.stop()


def _token(http: httpx.Client) -> str:
    response = http.post("/_graphattach/token", json={"user": ADELE})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def _upload_url(http: httpx.Client, token: str, size: int) -> str:
    headers = {"Authorization": f"Bearer {token}"}
    item = http.post("/v1.0/me/messages", json={"subject": "stall"}, headers=headers)
    assert item.status_code == 201, item.text
    session = http.post(
        f"/v1.0/me/messages/{item.json()['id']}/attachments/createUploadSession",
        json={"AttachmentItem": {"attachmentType": "file", "name": "big.bin", "size": size}},
        headers=headers,
    )
    assert session.status_code == 201, session.text
    return str(session.json()["uploadUrl"])


#: The upload sessions' size, and the length of the range a stalled PUT announces.
SIZE = 3 * 1024 * 1024
RANGE = 100_000


def _stalled_put(server: ServerProcess, url: str, length: int = RANGE, sent: int = 10) -> socket.socket:
    """Send a PUT's headers and ``sent`` bytes of a ``length``-byte range, then nothing."""
    parts = urlsplit(url)
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=HANG)
    head = (
        f"PUT {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Content-Length: {length}\r\nContent-Range: bytes 0-{length - 1}/{SIZE}\r\n\r\n"
    )
    sock.sendall(head.encode("latin-1") + b"x" * sent)
    return sock


def _read_response(sock: socket.socket) -> tuple[int, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head else 0
    length = next(
        (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")),
        0,
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, body


def test_a_stalled_put_never_holds_up_the_sweep_of_other_sessions(patient_server: ServerProcess) -> None:
    with httpx.Client(base_url=patient_server.root, timeout=HANG) as http:
        report: dict[str, int] = {}
        # The stalled PUT takes its session's lock a moment after its headers arrive; a sweep
        # that comes first simply forgets that session. Try again until the PUT held the lock,
        # each try giving it longer (on a loaded machine, and on PostgreSQL where the lock is a
        # round trip, a moment may be a second).
        for attempt in range(20):
            token = _token(http)
            stalled_url = _upload_url(http, token, SIZE)
            other_url = _upload_url(http, token, SIZE)
            sock = _stalled_put(patient_server, stalled_url)
            time.sleep(0.1 * attempt)
            try:
                assert http.post("/_graphattach/clock", json={"advanceSeconds": 6 * 3600 + 60}).status_code == 200
                swept = http.post("/_graphattach/sweep")  # answers (a hang is an httpx timeout)
                assert swept.status_code == 200, swept.text
                report = swept.json()
                assert report["expiredSessions"] >= 1  # the other expired session went
                assert httpx.get(other_url, timeout=HANG).status_code in (401, 404)
            finally:
                sock.close()
            if report["busySessions"] == 1:
                break
        assert report["busySessions"] == 1
        # once the client is gone its session is swept like any other
        for _ in range(50):
            report = http.post("/_graphattach/sweep").json()
            if report["busySessions"] == 0:
                break
        assert report["busySessions"] == 0
        http.delete("/_graphattach/clock")


#: A range past ``uploads.PREFETCH_LIMIT`` is read by the request's own task; a small one, on
#: embedded storage, by a task of its own while the session is fetched: both stall alike.
@pytest.mark.parametrize("length", [RANGE, 1000], ids=["large-range", "small-range"])
def test_a_stalled_put_is_answered_408_and_frees_its_session(strict_server: ServerProcess, length: int) -> None:
    with httpx.Client(base_url=strict_server.root, timeout=HANG) as http:
        token = _token(http)
        url = _upload_url(http, token, SIZE)
        sock = _stalled_put(strict_server, url, length)
        try:
            status, body = _read_response(sock)
            assert status == 408
            assert json.loads(body)["error"]["code"] == "RequestTimeout"
            assert sock.recv(1) == b""  # and the connection is closed
        finally:
            sock.close()
        # nothing was acknowledged, and the session is free: the upload starts over
        status_now = httpx.get(url, timeout=HANG)
        assert status_now.status_code == 200
        assert status_now.json()["nextExpectedRanges"][0].split("-")[0] == "0"
        put = httpx.put(
            url, content=b"y" * RANGE, headers={"Content-Range": f"bytes 0-{RANGE - 1}/{SIZE}"}, timeout=HANG
        )
        assert put.status_code == 200, put.text
        assert put.json()["nextExpectedRanges"][0].split("-")[0] == str(RANGE)
        assert httpx.delete(url, timeout=HANG).status_code == 204


def test_a_stalled_graph_post_is_answered_408(strict_server: ServerProcess) -> None:
    with httpx.Client(base_url=strict_server.root, timeout=HANG) as http:
        token = _token(http)
    sock = socket.create_connection(("127.0.0.1", strict_server.port), timeout=HANG)
    try:
        sock.sendall(
            (
                "POST /v1.0/me/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Authorization: Bearer {token}\r\nContent-Length: 1000\r\n\r\n"
                '{"subject": "'
            ).encode()
        )
        status, body = _read_response(sock)
        assert status == 408
        assert json.loads(body)["error"]["code"] == "RequestTimeout"
    finally:
        sock.close()
