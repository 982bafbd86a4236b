"""Requests the HTTP server itself refuses before the application sees them (issue 14, item 6).

granian (the default server) parses HTTP/1.1 in Rust (hyper) and answers malformed requests with
an empty 400 or 431 and closes the connection; it has no hook to give those answers a body, so
they cannot carry Graph's error JSON (docs/fidelity.md, "HTTP-level rejections"). What this
pins: each is a 4xx, never a 5xx or a hang, and the server keeps serving.
"""

from __future__ import annotations

import socket

import httpx
import pytest

from tests.helpers import ServerProcess

CASES = {
    "nul-in-header": b"GET /_graphattach/health HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
    "negative-content-length": b"POST /v1.0/me/messages HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    "huge-content-length": b"POST /v1.0/me/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
    "duplicate-content-length": (
        b"POST /v1.0/me/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello"
    ),
    "obs-fold": b"GET /_graphattach/health HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
    "1-mb-url": b"GET /v1.0/" + b"a" * 1_000_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "1-mb-header": b"GET /_graphattach/health HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 1_000_000 + b"\r\n\r\n",
    "5000-headers": (
        b"GET /_graphattach/health HTTP/1.1\r\nHost: x\r\n"
        + b"".join(b"X-%d: a\r\n" % i for i in range(5000))
        + b"\r\n"
    ),
}


@pytest.mark.parametrize("raw", list(CASES.values()), ids=list(CASES))
def test_malformed_http_is_a_4xx_and_the_server_keeps_serving(server_process: ServerProcess, raw: bytes) -> None:
    with socket.create_connection(("127.0.0.1", server_process.port), timeout=30) as sock:
        try:
            sock.sendall(raw)
        except OSError:
            pass  # the server may close before reading all of a huge request: that is a refusal too
        try:
            answer = sock.recv(4096)
        except ConnectionResetError:
            answer = b""
    if answer:
        status = int(answer.split(b" ", 2)[1])
        assert 400 <= status < 500, answer[:200]
    assert httpx.get(f"{server_process.root}/_graphattach/health", timeout=30).status_code == 200
