"""``GraphCall``: what a Graph route handler gets, and reading request bodies under a cap."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from graphattach.auth.principal import Principal
from graphattach.domain.errors import BodyTimeout
from graphattach.domain.models import User
from graphattach.protocol.content_range import parse_content_length
from graphattach.protocol.errors import BadRequest, RequestEntityTooLarge
from graphattach.protocol.jsonio import loads_object
from graphattach.protocol.odata import QueryOptions
from graphattach.protocol.paths import GraphPath
from graphattach.services.context import Context


def declared_length(request: Request) -> int | None:
    """The request's ``Content-Length`` (``protocol.content_range.parse_content_length``)."""
    try:
        return parse_content_length(request.headers.get("content-length"))
    except ValueError:
        raise BadRequest("The Content-Length header is not a number.") from None


# Bodies nobody will use are read and dropped, up to a bound, rather than left unread: clients
# write the whole body before they read the answer, and a server that closes with unread bytes
# makes the kernel reset the connection under its answer (so the client never reads the error).
# Past the bound the connection is closed instead. ``drop`` is the one place this happens; the
# bound depends on what the client was entitled to send:
#: a Graph request body refused with 413 (four times the 4 MiB cap: a client that overshoots);
DISCARD_LIMIT = 16 * 1024 * 1024
#: a body the route never read (an error before parsing it), in the middleware;
UNREAD_LIMIT = 1024 * 1024
#: and a refused upload PUT: up to ``Settings.max_upload_chunk``, the largest range accepted.


async def drop(chunks: AsyncIterable[bytes], limit: int) -> None:
    """Read and drop ``chunks`` until they end or more than ``limit`` bytes went by."""
    seen = 0
    try:
        async for chunk in chunks:
            seen += len(chunk)
            if seen > limit:
                return
    except (ClientDisconnect, RuntimeError, BodyTimeout):
        return


async def discard_body(request: Request, limit: int = DISCARD_LIMIT) -> None:
    """Read and drop what is left of the request body, up to ``limit`` bytes."""
    try:
        length = parse_content_length(request.headers.get("content-length"))
    except ValueError:
        return
    if length is not None and length > limit:
        return
    await drop(request.stream(), limit)


async def read_body(request: Request, cap: int) -> bytes:
    """The whole body, refused with 413 before reading when ``Content-Length`` exceeds ``cap``
    and as soon as more than ``cap`` bytes arrive otherwise. Nothing past the cap is kept; the
    rest of a refused body is drained (``discard_body``) so that the keep-alive connection stays
    in step and the client gets to read the 413."""
    length = declared_length(request)
    if length is not None and length > cap:
        await discard_body(request)
        raise RequestEntityTooLarge()
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > cap:
            chunks.clear()
            await discard_body(request)
            raise RequestEntityTooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


async def stream_body(request: Request) -> AsyncIterator[bytes]:
    async for chunk in request.stream():
        if chunk:
            yield chunk


@dataclass(slots=True)
class GraphCall:
    """One authenticated Graph request, parsed."""

    request: Request
    ctx: Context
    path: GraphPath
    query: QueryOptions
    principal: Principal

    @property
    def service_root(self) -> str:
        """``http://127.0.0.1:8765/v1.0`` (the version of this request)."""
        return self.ctx.settings.service_root(self.path.version)

    @property
    def is_beta(self) -> bool:
        return self.path.version == "beta"

    @property
    def strict(self) -> bool:
        return self.ctx.settings.strict

    @property
    def request_id(self) -> str:
        return str(self.request.scope["state"]["request_id"])

    async def json(self) -> dict[str, Any]:
        """The body as one JSON object, under the 4 MiB request cap."""
        return loads_object(await read_body(self.request, self.ctx.settings.max_request_body))

    def url_without_query(self) -> str:
        raw = self.request.scope.get("raw_path") or self.request.url.path.encode()
        return self.ctx.settings.root_url + raw.decode("latin-1").split("?", 1)[0]


def user_key(call: GraphCall, user: User) -> str:
    """``/me`` is written ``users('{id}')``; ``/users/{key}`` echoes the key as the client wrote it."""
    return user.id if call.path.is_me or call.path.user is None else call.path.user


Handler = Callable[[GraphCall], Awaitable[Response]]
Routes = dict[tuple[str, str], Handler]
