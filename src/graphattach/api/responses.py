"""Response helpers with Graph's headers."""

from __future__ import annotations

from collections.abc import AsyncIterable
from typing import Any, cast

from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from graphattach.protocol.jsonio import dumps

GRAPH_JSON = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"


def graph_json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON success response as Graph sends it (OData-Version, the odata Content-Type)."""
    all_headers = {"OData-Version": "4.0"}
    if headers:
        all_headers.update(headers)
    return Response(dumps(body), status_code=status, headers=all_headers, media_type=GRAPH_JSON)


class PiecesResponse(Response):
    """A response whose body is sent as the given pieces, one message each, never joined: the
    answer to a POST of a file attachment echoes its megabytes of ``contentBytes``, and joining
    them to a head and a tail would copy them once more (bench/README.md, the POST row)."""

    def __init__(
        self,
        pieces: list[bytes],
        status_code: int = 200,
        headers: dict[str, str] | None = None,
        media_type: str | None = None,
    ) -> None:
        self.pieces = pieces
        all_headers = {"Content-Length": str(sum(len(piece) for piece in pieces))}
        if headers:
            all_headers.update(headers)
        super().__init__(None, status_code=status_code, headers=all_headers, media_type=media_type)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        last = len(self.pieces) - 1
        for index, piece in enumerate(self.pieces):
            await send({"type": "http.response.body", "body": piece, "more_body": index < last})
        if last < 0:
            await send({"type": "http.response.body", "body": b""})


def empty(status: int = 204, headers: dict[str, str] | None = None) -> Response:
    return Response(b"", status_code=status, headers=headers)


class ChunkStream(StreamingResponse):
    """A ``StreamingResponse`` whose chunks are ``bytes`` or ``bytearray`` (a blob store's pieces,
    ``BlobChunk``), sent as they are: Starlette would call ``.encode`` on a bytearray, and a
    memoryview makes granian send element by element (about 100 MB/s instead of 4 GB/s)."""

    def __init__(
        self, chunks: AsyncIterable[bytes | bytearray], status_code: int = 200, headers: dict[str, str] | None = None
    ) -> None:
        # Starlette's type has no bytearray; stream_response below is what takes them.
        super().__init__(cast(AsyncIterable[bytes], chunks), status_code=status_code, headers=headers)

    async def stream_response(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        async for chunk in self.body_iterator:
            if not isinstance(chunk, bytes | bytearray):
                raise TypeError(f"ChunkStream takes bytes or bytearray, not {type(chunk).__name__}")
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
