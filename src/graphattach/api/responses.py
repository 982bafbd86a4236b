"""Response helpers with Graph's headers."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from graphattach.protocol.jsonio import dumps

GRAPH_JSON = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"


def graph_json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON success response as Graph sends it (OData-Version, the odata Content-Type)."""
    all_headers = {"OData-Version": "4.0"}
    if headers:
        all_headers.update(headers)
    return Response(dumps(body), status_code=status, headers=all_headers, media_type=GRAPH_JSON)


def empty(status: int = 204, headers: dict[str, str] | None = None) -> Response:
    return Response(b"", status_code=status, headers=headers)
