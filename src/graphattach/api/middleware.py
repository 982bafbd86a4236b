"""The outermost ASGI middleware: request ids, Graph error bodies, and body draining.

- every response carries ``request-id``, ``client-request-id`` (echoed, else the request id),
  ``x-ms-ags-diagnostic``, ``Strict-Transport-Security`` and ``Cache-Control: private``
  (the captured answers in https://learn.microsoft.com/graph/outlook-large-attachments);
- a ``GraphError`` or any unexpected exception becomes ``{"error": {...}}``;
- a request body the app did not read is drained when small, else the connection is closed, so
  a keep-alive client never has its next request parsed from the leftovers (seen on the wire with pooled connections);
- a request body ends once its ``Content-Length`` bytes have arrived: the app never waits for the
  empty last message a server may send after them (with granian, a round trip between its I/O
  thread and the event loop per request: bench/README.md);
- a request body that stops arriving for ``body_idle_timeout`` seconds ends the read with
  ``BodyTimeout`` (408, then the connection is closed): a stalled client never holds an upload
  session's lock, or a worker, for longer than that.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from graphattach.api.call import UNREAD_LIMIT
from graphattach.domain import ids
from graphattach.domain.errors import BodyTimeout, ConnectionDropped, GraphError
from graphattach.protocol.errors import InternalServerError, QuotaExceeded, graph_error_body
from graphattach.protocol.operations import (
    ADMIN_OPERATION_PREFIX,
    OAUTH_METADATA_OPERATION,
    OPERATION_KEY,
    TOKEN_OPERATION,
    UNKNOWN_OPERATION,
    upload_operation,
)
from graphattach.protocol.upload_sessions import UPLOAD_PREFIX
from graphattach.storage.errors import StorageFull

log = logging.getLogger("graphattach")

DIAGNOSTIC = (
    '{"ServerInfo":{"DataCenter":"Local","Slice":"E","Ring":"0","ScaleUnit":"000",'
    '"RoleInstance":"graphattach","ADSiteName":"LCL"}}'
)


#: The headers every answer carries whatever the request.
_CONSTANT_HEADERS = (
    (b"x-ms-ags-diagnostic", DIAGNOSTIC.encode()),
    (b"strict-transport-security", b"max-age=31536000"),
    (b"cache-control", b"private"),
)


def _initial_operation(scope: Scope) -> str:
    """The operation name known from the path alone; the Graph endpoint refines it after parsing."""
    path: str = scope.get("path", "")
    if path.startswith(UPLOAD_PREFIX):
        return upload_operation(scope.get("method", ""))
    if path.startswith("/_graphattach/"):
        return ADMIN_OPERATION_PREFIX + path[len("/_graphattach/") :].split("/", 1)[0]
    if path.endswith("/oauth2/v2.0/token"):
        return TOKEN_OPERATION
    if "/.well-known/" in path or "/discovery/" in path or path.startswith("/common/userrealm/"):
        return OAUTH_METADATA_OPERATION
    return UNKNOWN_OPERATION


def _declared_length(declared: bytes | None) -> int | None:
    """The ``Content-Length`` as a number (None: absent or not a number)."""
    if declared is None:
        return None
    try:
        length = int(declared)
    except ValueError:
        return None
    return length if length >= 0 else None


class BodyWatch:
    """A request body's idle timeout, with one timer per request rather than one per ``receive``.

    ``receive`` raises ``BodyTimeout`` when a wait for the next message lasts ``idle`` seconds.
    ``asyncio.timeout`` around every ``receive`` made, moved and cancelled a timer per message
    (about eleven for a 1 MiB POST, one for each tiny range: bench/README.md); here a timer is armed
    at the first wait, and when it fires it only looks at when the current wait began: if that
    was less than ``idle`` ago, it sets itself again for then. Call ``close`` when the request ends.
    """

    __slots__ = ("_cancelling", "_fired", "_handle", "_idle", "_since", "_task", "_waiting")

    def __init__(self, idle: float) -> None:
        self._idle = idle
        self._handle: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[object] | None = None
        self._since = 0.0
        self._waiting = False
        self._fired = False
        self._cancelling = 0

    async def receive(self, receive: Receive) -> Message:
        """``receive()``, or ``BodyTimeout`` once it has waited ``idle`` seconds."""
        loop = asyncio.get_running_loop()
        # The task that waits may change: a small upload range is read by a task of its own.
        task = self._task = asyncio.current_task()
        assert task is not None
        self._cancelling = task.cancelling()
        self._since = loop.time()
        self._waiting = True
        if self._handle is None:
            self._handle = loop.call_at(self._since + self._idle, self._expire, loop)
        try:
            return await receive()
        except asyncio.CancelledError:
            # Ours only if this timer cancelled the task and nobody else did (as asyncio.timeout decides).
            if self._fired and task.uncancel() <= self._cancelling:
                raise BodyTimeout() from None
            raise
        finally:
            self._waiting = False

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        self._handle = None
        if not self._waiting or self._task is None:
            return  # between waits: the next one sets the timer again
        due = self._since + self._idle
        if loop.time() < due:
            self._handle = loop.call_at(due, self._expire, loop)
            return
        self._fired = True
        self._task.cancel()

    def close(self) -> None:
        """Drop the timer (the request is over)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


class GraphMiddleware:
    def __init__(
        self, app: ASGIApp, now: Callable[[], datetime], body_timeout: Callable[[], float] = lambda: 0.0
    ) -> None:
        self.app = app
        self.now = now
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = transfer_encoding = client_id = None
        for name, value in scope.get("headers", ()):
            name = name.lower()
            if name == b"content-length":
                declared = value
            elif name == b"transfer-encoding":
                transfer_encoding = value
            elif name == b"client-request-id":
                client_id = value
        request_id = ids.new_guid()
        client_request_id = (client_id or b"").decode("latin-1").strip() or request_id
        scope.setdefault("state", {})
        scope["state"]["request_id"] = request_id
        scope["state"]["client_request_id"] = client_request_id
        scope["state"][OPERATION_KEY] = _initial_operation(scope)
        # The server's own send: the fault layer closes the connection through it (``drop``).
        scope["state"]["server_send"] = send

        chunked = transfer_encoding is not None and b"chunked" in transfer_encoding.lower()
        has_body = chunked or (declared is not None and declared.strip() not in (b"0", b""))
        length = _declared_length(declared)
        body_state = {"done": not has_body, "read": 0, "stalled": False}
        started = False
        idle = self.body_timeout()

        watch = BodyWatch(idle) if idle > 0 and has_body else None

        async def tracking_receive() -> Message:
            if body_state["stalled"]:
                raise BodyTimeout()
            if watch is not None and not body_state["done"]:
                try:
                    message = await watch.receive(receive)
                except BodyTimeout:
                    body_state["stalled"] = True
                    raise
            else:
                message = await receive()
            if message["type"] == "http.request":
                body_state["read"] += len(message.get("body", b""))
                if not message.get("more_body", False):
                    body_state["done"] = True
                elif length is not None and not chunked and body_state["read"] >= length:
                    # The declared length has arrived: the body is complete. Servers (granian)
                    # still send an empty last message, and waiting for it costs a round trip
                    # between the server's I/O thread and the event loop on every request.
                    body_state["done"] = True
                    message = {**message, "more_body": False}
            elif message["type"] == "http.disconnect":
                body_state["done"] = True
            return message

        async def drain_or_close() -> bool:
            """True when the connection must be closed after this response."""
            if body_state["done"]:
                return False
            if body_state["stalled"]:
                return True
            remaining = length - body_state["read"] if length is not None else None
            if remaining is None or remaining > UNREAD_LIMIT:
                return True
            try:
                while not body_state["done"]:
                    await tracking_receive()
            except BodyTimeout:
                return True
            return False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                extra = [
                    (b"request-id", request_id.encode()),
                    (b"client-request-id", client_request_id.encode("latin-1")),
                    *_CONSTANT_HEADERS,
                ]
                if await drain_or_close():
                    extra.append((b"connection", b"close"))
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        try:
            await self.app(scope, tracking_receive, send_with_headers)
        except GraphError as exc:
            if started:
                raise
            await self._send_error(exc, request_id, client_request_id, send_with_headers)
        except ConnectionDropped:
            raise  # a fault rule closes the connection on purpose
        except ClientDisconnect:
            # A client that goes away mid-body is normal (a cancelled upload, a closed laptop):
            # one line, no traceback, and nobody to answer.
            log.info(
                "client disconnected during %s %s (request-id %s)",
                scope.get("method"),
                scope.get("path"),
                request_id,
            )
        except StorageFull as exc:
            # Graph's answer when storage is full: 507 (https://learn.microsoft.com/graph/errors),
            # with the store's own account of what filled up.
            log.error("storage full on %s %s: %s", scope.get("method"), scope.get("path"), exc)
            if started:
                raise
            await self._send_error(QuotaExceeded(str(exc)), request_id, client_request_id, send_with_headers)
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            await self._send_error(InternalServerError(), request_id, client_request_id, send_with_headers)
        finally:
            if watch is not None:
                watch.close()

    async def _send_error(self, exc: GraphError, request_id: str, client_request_id: str, send: Send) -> None:
        body = graph_error_body(exc, request_id=request_id, client_request_id=client_request_id, now=self.now())
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        headers += [(k.lower().encode(), v.encode("latin-1")) for k, v in exc.headers.items()]
        await send({"type": "http.response.start", "status": exc.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
