"""The upload origin: ``/api/gv1.0/users('{uid}@{tid}')/{messages|events}('{id}')/AttachmentSessions('{sid}')``.

``PUT`` a byte range, ``GET`` the status, ``DELETE`` to cancel - authorised by the URL's own
``authtoken``, not by a Graph token. The request body of a PUT streams from the socket into the
blob store.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from graphattach.api.call import drop
from graphattach.api.responses import empty, graph_json
from graphattach.domain.errors import GraphError
from graphattach.domain.models import UploadSession
from graphattach.protocol.content_range import parse_range_headers
from graphattach.protocol.errors import ItemNotFound
from graphattach.protocol.upload_sessions import UPLOAD_PREFIX, UploadPath, parse_upload_path, status_body
from graphattach.services import uploads
from graphattach.services.context import Context


def _status_response(ctx: Context, session: UploadSession) -> Response:
    return graph_json(
        status_body(
            ctx.settings.upload_root,
            session.user_id,
            ctx.tenant_id,
            session.item_kind,
            session.item_id,
            session.expires,
            session.received,
            session.size,
            ctx.settings.profile,
        )
    )


def _upload_path(request: Request) -> UploadPath:
    raw_path = request.scope.get("raw_path")
    raw = raw_path.decode("latin-1") if raw_path else request.url.path
    raw = raw.split("?", 1)[0]
    parsed = parse_upload_path(raw[len(UPLOAD_PREFIX) :]) if raw.startswith(UPLOAD_PREFIX) else None
    if parsed is None:
        raise ItemNotFound()
    return parsed


def _authtoken(request: Request) -> str | None:
    """The ``authtoken`` query parameter (the last one, as ``request.query_params`` reads it),
    without building the request's whole query-parameter map."""
    query: bytes = request.scope.get("query_string", b"")
    if b"authtoken" not in query and b"%" not in query:  # a name may come percent-encoded
        return None
    values = [
        value for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True) if name == "authtoken"
    ]
    return values[-1] if values else None


class BodyStream:
    """The request body as an async iterator that can be drained after a refusal.

    A refused PUT is answered after its body has been read (and dropped), up to the largest
    range the server accepts, so that the client reads the error instead of a reset connection
    (seen on the wire with pooled connections). Only the 413 is answered before reading: that is its point.
    """

    def __init__(self, request: Request) -> None:
        self._chunks = request.stream()
        self.done = False

    def __aiter__(self) -> BodyStream:
        return self

    async def __anext__(self) -> bytes:
        if self.done:
            raise StopAsyncIteration
        try:
            chunk = await self._chunks.__anext__()
            while not chunk:  # Starlette's stream ends with an empty chunk: not a piece of the body
                chunk = await self._chunks.__anext__()
            return chunk
        except BaseException:
            self.done = True
            raise

    async def drain(self, limit: int) -> None:
        await drop(self, limit)


async def upload_session(request: Request) -> Response:
    ctx: Context = request.app.state.ctx
    body = BodyStream(request)
    try:
        path = _upload_path(request)
        claims = uploads.authenticate(ctx, path, _authtoken(request), request.headers.get("authorization"))
        if request.method == "GET":
            return _status_response(ctx, await uploads.status(ctx, path, claims))
        if request.method == "DELETE":
            await uploads.cancel(ctx, path, claims)
            return empty(204)
        headers = parse_range_headers(request.headers.get("content-range"), request.headers.get("content-length"))
        answer = await uploads.put_range(ctx, path, claims, headers, body)
    except GraphError as exc:
        if request.method == "PUT" and exc.status != 413:
            await body.drain(ctx.settings.max_upload_chunk)
        raise  # the middleware renders it, as every error
    except ClientDisconnect:
        # The client went away mid-body: nothing past the acknowledged bytes was kept.
        return empty(400)
    if answer.created:
        assert answer.location is not None
        return Response(b"", status_code=201, headers={"Location": answer.location})
    return _status_response(ctx, answer.session)


ROUTES: list[Any] = [
    Route(f"{UPLOAD_PREFIX}/{{rest:path}}", upload_session, methods=["GET", "PUT", "DELETE"]),
]
