"""The outermost middleware: binds the server's id source to each request and journals it.

Under ``--seed`` every id, GUID and request id a request mints comes from the server's seeded
generator (``domain/ids.py``), bound here for the request's context. Each request is recorded in
the journal (``services/journal.py``) with its status, request id, operation name (which the
inner middleware and the handlers put in ``scope["state"]``), caller, permission, sizes and
duration; the first bytes of textual bodies are kept for the HAR export. Credentials are
redacted before anything is kept.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from graphattach.domain import ids
from graphattach.protocol.operations import OPERATION_KEY, UNKNOWN_OPERATION
from graphattach.services import journal
from graphattach.services.context import Context

ADMIN_PATH = "/_graphattach/"
#: Admin calls that read the journal are not journaled: following the journal must not fill it.
UNJOURNALED = ("/_graphattach/requests", "/_graphattach/permissions-report")
#: Headers whose values are credentials (Dev Proxy redacts the same kind in its HAR files).
_SECRET_HEADERS = frozenset({"authorization", "cookie", "set-cookie", "x-graphattach-admin-key"})
_SECRET_QUERY = re.compile(r"((?:^|&)(?:authtoken|client_secret|password|refresh_token|assertion|code)=)[^&]*", re.I)
_TEXTUAL = re.compile(rb"json|text/|xml|x-www-form-urlencoded|javascript")
REDACTED = "REDACTED"


_SECRET_JSON = re.compile(
    rb'("(?:password|client_secret|access_token|refresh_token|id_token|assertion)"\s*:\s*")(?:[^"\\]|\\.)*(")'
)


_AUTHTOKEN_IN_TEXT = re.compile(rb"(authtoken=)[^\"&\s\\]*")


def redact_query(query: str) -> str:
    if "=" not in query:
        return query
    return _SECRET_QUERY.sub(_redact_match, query)


def _redact_match(match: re.Match[str]) -> str:
    return match.group(1) + REDACTED


#: What a body holds whenever ``_SECRET_JSON`` may match it: a kept body is searched for these
#: first (a byte search), and the regular expression runs only where one is found.
_SECRET_JSON_HINTS = (b'password"', b'secret"', b'token"', b'assertion"')


def redact_body(body: bytes) -> bytes:
    """Credentials in a kept body (form fields, JSON string members) replaced by ``REDACTED``."""
    if not body:
        return body
    if any(hint in body for hint in _SECRET_JSON_HINTS):
        body = _SECRET_JSON.sub(rb"\1" + REDACTED.encode() + rb"\2", body)
    # upload URLs carry their credential (createUploadSession's uploadUrl)
    if b"authtoken=" in body:
        body = _AUTHTOKEN_IN_TEXT.sub(rb"\1" + REDACTED.encode(), body)
    if b"=" in body and not body.lstrip().startswith((b"{", b"[")):
        body = redact_query(body.decode("latin-1")).encode("latin-1")
    return body


_SECRET_HEADER_NAMES = frozenset(name.encode() for name in _SECRET_HEADERS)
_REDACTED_BYTES = REDACTED.encode()


def _redacted(name: bytes, value: bytes) -> bytes:
    """A credential header's value as kept: ``Bearer REDACTED`` for an authorization with a
    scheme, else ``REDACTED``."""
    if name.lower() == b"authorization" and b" " in value:
        return value.split(b" ", 1)[0] + b" " + _REDACTED_BYTES
    return _REDACTED_BYTES


def kept_headers(raw: Iterable[tuple[bytes, bytes]]) -> tuple[list[tuple[bytes, bytes]], bool]:
    """ASGI headers as the journal keeps them, still bytes (decoded when an entry is read:
    ``JournalEntry.request_headers``) with each credential's value redacted; and whether their
    ``Content-Type`` is textual (a body worth keeping)."""
    kept = list(raw)
    textual = False
    for index, (name, value) in enumerate(kept):
        lowered = name.lower()
        if lowered == b"content-type":
            textual = _TEXTUAL.search(value.lower()) is not None
        elif lowered in _SECRET_HEADER_NAMES:
            kept[index] = (name, _redacted(name, value))
    return kept, textual


class RequestScopeMiddleware:
    def __init__(self, app: ASGIApp, context: Callable[[], Context]) -> None:
        self.app = app
        self.context = context

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ctx = self.context()
        path: str = scope.get("path", "")
        bound = ids.bind(ctx.admin_ids if path.startswith(ADMIN_PATH) else ctx.ids)
        try:
            if not ctx.journal.enabled or path.startswith(UNJOURNALED):
                await self.app(scope, receive, send)
                return
            await self._journaled(ctx, scope, receive, send)
        finally:
            ids.unbind(bound)

    async def _journaled(self, ctx: Context, scope: Scope, receive: Receive, send: Send) -> None:
        book = ctx.journal
        query = scope.get("query_string", b"").decode("latin-1")
        entry = book.open(ctx.clock.now(), scope.get("method", ""), scope.get("path", ""), redact_query(query))
        entry.scheme = scope.get("scheme", "http")
        entry.raw_request_headers, textual_request = kept_headers(scope.get("headers", ()))
        limit = book.body_limit
        keep_request = limit > 0 and textual_request
        request_body = bytearray()
        response_body = bytearray()
        keep_response = False

        async def journaled_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                body = message.get("body", b"")
                entry.bytes_in += len(body)
                if keep_request and len(request_body) < limit:
                    request_body.extend(body[: limit - len(request_body)])
            return message

        async def journaled_send(message: Message) -> None:
            nonlocal keep_response
            kind = message["type"]
            if kind == "http.response.start":
                entry.status = int(message["status"])
                entry.raw_response_headers, textual_response = kept_headers(message.get("headers", ()))
                keep_response = limit > 0 and textual_response
            elif kind == "http.response.body":
                body = message.get("body", b"")
                entry.bytes_out += len(body)
                if keep_response and len(response_body) < limit:
                    response_body.extend(body[: limit - len(response_body)])
            await send(message)

        scope.setdefault("state", {})
        token = journal.set_current(entry)
        started = time.perf_counter()
        try:
            await self.app(scope, journaled_receive, journaled_send)
        except BaseException:
            if not entry.status:
                entry.status = 500
            raise
        finally:
            entry.duration_ms = (time.perf_counter() - started) * 1000
            state = scope["state"]
            entry.request_id = str(state.get("request_id", ""))
            entry.client_request_id = str(state.get("client_request_id", ""))
            entry.operation = str(state.get(OPERATION_KEY, UNKNOWN_OPERATION))
            entry.request_body = redact_body(bytes(request_body))
            entry.response_body = redact_body(bytes(response_body))
            journal.reset_current(token)
            book.append(entry)
