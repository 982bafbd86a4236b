"""Graph's error body: ``{"error": {"code", "message", "innerError": {"date", "request-id",
"client-request-id"}}}`` (https://learn.microsoft.com/graph/errors)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from graphattach.domain.errors import GraphError
from graphattach.protocol.jsonio import dumps, inner_error_date


def error_body(
    code: str,
    message: str,
    *,
    request_id: str,
    client_request_id: str,
    now: datetime,
    inner_error: bool = True,
    extra: dict[str, Any] | None = None,
) -> bytes:
    error: dict[str, Any] = {"code": code, "message": message}
    if inner_error:
        error["innerError"] = {
            "date": inner_error_date(now),
            "request-id": request_id,
            "client-request-id": client_request_id,
            **(extra or {}),
        }
    return dumps({"error": error})


def graph_error_body(exc: GraphError, *, request_id: str, client_request_id: str, now: datetime) -> bytes:
    return error_body(
        exc.code,
        exc.message,
        request_id=request_id,
        client_request_id=client_request_id,
        now=now,
        inner_error=exc.inner_error,
    )
