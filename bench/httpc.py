"""A minimal blocking HTTP/1.1 client for the benchmark: one keep-alive socket, no copies of bodies.

Request bodies are sent straight from a ``memoryview`` of a buffer read once, and response bodies
are either kept (small JSON answers) or drained into one reused buffer (large downloads), with an
optional SHA-256 of what went by. It speaks just enough HTTP/1.1 for the servers measured here
(Content-Length and chunked responses, keep-alive, ``Connection: close``), so that the client
stays cheap next to the server being measured.
"""

from __future__ import annotations

import hashlib
import json
import socket
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

RECV_SIZE = 1024 * 1024
#: Bodies up to this size are glued to the head and sent with one system call.
SMALL_BODY = 64 * 1024


class HTTPError(Exception):
    """A response whose status the caller did not expect."""

    def __init__(self, what: str, response: Response) -> None:
        self.response = response
        self.status = response.status
        super().__init__(f"{what}: HTTP {response.status} {response.text()[:300]}")


class ConnectionBroken(Exception):
    """The server closed the connection or reset it mid-exchange."""


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes = b""
    #: Body bytes received (also when drained and not kept).
    length: int = 0
    sha256: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body)

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class Conn:
    """One keep-alive HTTP/1.1 connection to ``host:port`` (reconnects after ``Connection: close``)."""

    def __init__(self, host: str, port: int, *, timeout: float = 300.0, host_header: str | None = None) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.host_header = host_header or f"{host}:{port}"
        self.sock: socket.socket | None = None
        #: Responses read on the current socket (a reused keep-alive socket may have been closed).
        self._served = 0
        self._got_status = False
        self._buf = bytearray()
        self._scratch = bytearray(RECV_SIZE)
        self._view = memoryview(self._scratch)

    @classmethod
    def for_url(cls, url: str, *, connect_host: str = "127.0.0.1", timeout: float = 300.0) -> Conn:
        """A connection to the port of ``url`` on ``connect_host``, sending ``url``'s host as Host."""
        parts = urlsplit(url)
        port = parts.port or 80
        return cls(connect_host, port, timeout=timeout, host_header=parts.netloc)

    def connect(self) -> None:
        if self.sock is not None:
            return
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock
        self._served = 0
        self._buf.clear()

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None
                self._buf.clear()

    def __enter__(self) -> Conn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- sending -----------------------------------------------------------------------------------

    def head_bytes(self, method: str, target: str, headers: dict[str, str] | None, length: int | None) -> bytes:
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host_header}"]
        for name, value in (headers or {}).items():
            lines.append(f"{name}: {value}")
        if length is not None:
            lines.append(f"Content-Length: {length}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def send_request(
        self,
        method: str,
        target: str,
        headers: dict[str, str] | None = None,
        body: bytes | bytearray | memoryview | None = None,
        *,
        body_limit: int | None = None,
    ) -> int:
        """Send a request; with ``body_limit``, only that many body bytes go out (for crash tests).

        Returns the number of body bytes sent.
        """
        self.connect()
        assert self.sock is not None
        length = None if body is None else len(body)
        if length is None and method in ("POST", "PUT", "PATCH"):
            length = 0
        head = self.head_bytes(method, target, headers, length)
        try:
            if body is None or len(body) == 0:
                self.sock.sendall(head)
                return 0
            view = memoryview(body)
            if body_limit is not None:
                view = view[: max(0, body_limit)]
                self.sock.sendall(head)
                if len(view):
                    self.sock.sendall(view)
                return len(view)
            if len(view) <= SMALL_BODY:
                self.sock.sendall(head + bytes(view))
            else:
                self.sock.sendall(head)
                self.sock.sendall(view)
            return len(view)
        except OSError as exc:
            self.close()
            raise ConnectionBroken(f"send to {self.host}:{self.port} failed: {exc}") from exc

    # -- receiving ---------------------------------------------------------------------------------

    def _fill(self) -> int:
        assert self.sock is not None
        try:
            n = self.sock.recv_into(self._view)
        except OSError as exc:
            self.close()
            raise ConnectionBroken(f"receive from {self.host}:{self.port} failed: {exc}") from exc
        if n == 0:
            self.close()
            raise ConnectionBroken(f"{self.host}:{self.port} closed the connection")
        self._buf += self._view[:n]
        return n

    def _read_line(self) -> bytes:
        while True:
            idx = self._buf.find(b"\r\n")
            if idx >= 0:
                line = bytes(self._buf[:idx])
                del self._buf[: idx + 2]
                return line
            self._fill()

    def _read_exact(self, n: int, keep: bool, sha: Any) -> bytes:
        """Read ``n`` body bytes; keep them (returned) or drain them (into the SHA-256 if given)."""
        out = bytearray() if keep else None
        take = min(n, len(self._buf))
        if take:
            chunk = memoryview(self._buf)[:take]
            if out is not None:
                out += chunk
            if sha is not None:
                sha.update(chunk)
            chunk.release()
            del self._buf[:take]
        remaining = n - take
        assert self.sock is not None or remaining == 0
        while remaining:
            assert self.sock is not None
            try:
                got = self.sock.recv_into(self._view, min(remaining, RECV_SIZE))
            except OSError as exc:
                self.close()
                raise ConnectionBroken(f"receive from {self.host}:{self.port} failed: {exc}") from exc
            if got == 0:
                self.close()
                raise ConnectionBroken(f"{self.host}:{self.port} closed the connection mid-body")
            piece = self._view[:got]
            if out is not None:
                out += piece
            if sha is not None:
                sha.update(piece)
            remaining -= got
        return bytes(out) if out is not None else b""

    def read_response(self, method: str = "GET", *, keep_body: bool = True, sha256: bool = False) -> Response:
        self.connect()
        while True:
            status_line = self._read_line()
            parts = status_line.split(b" ", 2)
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
                self.close()
                raise ConnectionBroken(f"bad status line {status_line[:80]!r}")
            status = int(parts[1])
            self._got_status = True
            headers: dict[str, str] = {}
            while True:
                line = self._read_line()
                if not line:
                    break
                name, _, value = line.partition(b":")
                key = name.strip().lower().decode("latin-1")
                val = value.strip().decode("latin-1")
                headers[key] = f"{headers[key]}, {val}" if key in headers else val
            if 100 <= status < 200:
                continue  # 100 Continue and friends: the real answer follows
            break
        sha = hashlib.sha256() if sha256 else None
        body = b""
        length = 0
        if method == "HEAD" or status in (204, 304):
            pass
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            pieces = []
            while True:
                size_line = self._read_line()
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self._read_line():  # trailers
                        pass
                    break
                piece = self._read_exact(size, keep_body, sha)
                if keep_body:
                    pieces.append(piece)
                length += size
                self._read_line()
            body = b"".join(pieces)
        elif "content-length" in headers:
            length = int(headers["content-length"])
            body = self._read_exact(length, keep_body, sha)
        else:
            # Read until close.
            pieces = []
            try:
                while True:
                    self._fill()
                    length += len(self._buf)
                    if sha is not None:
                        sha.update(self._buf)
                    if keep_body:
                        pieces.append(bytes(self._buf))
                    self._buf.clear()
            except ConnectionBroken:
                pass
            body = b"".join(pieces)
        self._served += 1
        if headers.get("connection", "").lower() == "close":
            self.close()
        return Response(status, headers, body, length, sha.hexdigest() if sha is not None else None)

    def request(
        self,
        method: str,
        target: str,
        headers: dict[str, str] | None = None,
        body: bytes | bytearray | memoryview | None = None,
        *,
        keep_body: bool = True,
        sha256: bool = False,
    ) -> Response:
        """Send and read one exchange. When a kept-alive socket turns out closed by the server
        (idle timeout) before any answer came, the request is sent once more on a new socket."""
        reused = self.sock is not None and self._served > 0
        self._got_status = False
        try:
            self.send_request(method, target, headers, body)
            return self.read_response(method, keep_body=keep_body, sha256=sha256)
        except ConnectionBroken:
            if not reused or self._got_status:
                raise
        self.close()
        self.send_request(method, target, headers, body)
        return self.read_response(method, keep_body=keep_body, sha256=sha256)


def json_body(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def target_of(url: str) -> str:
    """The request target (path and query) of an absolute URL."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")
