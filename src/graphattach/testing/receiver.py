"""A change-notification receiver: answers Graph's validation handshake and keeps what arrives.

``graphattach notifications listen`` runs one in a terminal; tests run one in a thread::

    with Receiver() as receiver:
        ...  # subscribe with notificationUrl=receiver.url
        notification = receiver.wait_for(lambda n: n.get("changeType") == "created")

The handshake follows https://learn.microsoft.com/graph/change-notifications-delivery-webhooks:
a POST with ``?validationToken=`` is answered 200 with the decoded token as ``text/plain``;
a notification POST is answered ``202 Accepted``. ``status``, ``delay`` and ``validate`` make it
misbehave (a failing, slow or wrong receiver) for tests of delivery rules.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Received:
    """One POST that arrived: its path, body (parsed JSON when it was) and arrival time."""

    path: str
    body: Any
    at: float
    validation_token: str | None = None
    #: What the receiver answered.
    status: int = 200


@dataclass
class Behaviour:
    #: Status for notification POSTs (202 by default; 500 or 400 to fail deliveries).
    status: int = 202
    #: Seconds to wait before answering a notification POST (a slow receiver).
    delay: float = 0.0
    #: Answer the validation handshake correctly (False: echo something else).
    validate: bool = True
    #: Called with each notification collection as it arrives (printing, for the CLI).
    on_notification: Callable[[Any], None] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # a client that hung up (graphattach timed out): nothing to report


class Receiver:
    """A threaded HTTP receiver on ``host:port`` (port 0: a free one)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        path: str = "/notifications",
        *,
        tls: tuple[str, str] | None = None,
    ) -> None:
        """``tls``: (certificate file, key file) to serve https."""
        self.behaviour = Behaviour()
        self.received: list[Received] = []
        self.validations: list[Received] = []
        #: Notification POSTs that began arriving (before ``delay``): a test sees one in flight.
        self.started = 0
        self._cond = threading.Condition()
        self.path = path
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                query = parse_qs(urlsplit(self.path).query)
                token = query.get("validationToken", [None])[0]
                if token is not None:
                    receiver._note(Received(self.path, raw.decode("utf-8", "replace"), time.time(), token), True)
                    answer = token if receiver.behaviour.validate else token + "x"
                    self._answer(200, answer.encode("utf-8"), "text/plain; charset=utf-8")
                    return
                try:
                    body: Any = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                behaviour = receiver.behaviour
                with receiver._cond:
                    receiver.started += 1
                    receiver._cond.notify_all()
                if behaviour.delay:
                    time.sleep(behaviour.delay)
                receiver._note(Received(self.path, body, time.time(), status=behaviour.status), False)
                if behaviour.on_notification is not None:
                    behaviour.on_notification(body)
                self._answer(behaviour.status, b"", "text/plain")

            def _answer(self, status: int, body: bytes, content_type: str) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the caller gave up (timed out) meanwhile
                    pass

        self._server = _QuietServer((host, port), Handler)
        self.scheme = "http"
        if tls is not None:
            import ssl

            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(tls[0], tls[1])
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            self.scheme = "https"
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{self.path}"

    def _note(self, received: Received, validation: bool) -> None:
        with self._cond:
            (self.validations if validation else self.received).append(received)
            self._cond.notify_all()

    def notifications(self, *, refused: bool = False) -> list[dict[str, Any]]:
        """Every notification accepted (answered 2xx), in arrival order (the ``value`` items of
        each POST); with ``refused``, those answered otherwise too."""
        with self._cond:
            posts = [p for p in self.received if refused or 200 <= p.status < 300]
        return [n for post in posts if isinstance(post.body, dict) for n in post.body.get("value", [])]

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 30.0) -> dict[str, Any]:
        """The first accepted notification matching ``predicate``, waiting up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for post in self.received:
                    if isinstance(post.body, dict) and 200 <= post.status < 300:
                        for n in post.body.get("value", []):
                            if predicate(n):
                                return dict(n)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no matching notification arrived")
                self._cond.wait(left)

    def wait_started(self, count: int, timeout: float = 30.0) -> None:
        """Wait until ``count`` notification POSTs have begun arriving."""
        with self._cond:
            if not self._cond.wait_for(lambda: self.started >= count, timeout):
                raise TimeoutError(f"{self.started} of {count} notification POSTs arrived")

    def start(self) -> Receiver:
        self._thread = threading.Thread(target=self._server.serve_forever, name="graphattach-receiver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
