"""The request journal's view: a live tail with filters, and one request with its headers and body excerpts."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from graphattach.protocol.operations import WEB_OPERATION_PREFIX
from graphattach.services.context import Context
from graphattach.web.pages import PageError, ctx_of, render, view

# ---- requests (the request journal, when this build has one) ---------------------------------------

#: Headers whose values the page never shows.
SECRET_HEADERS = {"authorization", "cookie", "set-cookie", "x-graphattach-admin-key"}
REQUEST_FILTERS = ("method", "status", "operation", "user", "path")
BODY_EXCERPT = 4096


def journal_of(ctx: Context) -> Any:
    """The server's request journal (``services/journal.py``), or None on a build without one."""
    return getattr(ctx, "journal", None)


def _is_ui(entry: Any) -> bool:
    return str(entry.operation).startswith(WEB_OPERATION_PREFIX) or str(entry.path).startswith("/static/")


def _redacted_query(query: str) -> str:
    return "&".join(
        f"{part.split('=', 1)[0]}=…" if part.lower().startswith(("authtoken=", "access_token=")) else part
        for part in query.split("&")
    )


def request_row(entry: Any) -> dict[str, Any]:
    query = _redacted_query(str(entry.query or ""))
    return {
        "seq": entry.seq,
        "time": entry.time.strftime("%H:%M:%S.%f")[:-3],
        "method": entry.method,
        "path": entry.path + (f"?{query}" if query else ""),
        "status": entry.status,
        "ms": round(entry.duration_ms, 1),
        "operation": entry.operation,
        "who": entry.user or entry.app_id or entry.caller or "",
        "request_id": entry.request_id,
        "fault": entry.fault or "",
    }


def _selected_requests(ctx: Context, request: Request, since: int = 0) -> list[Any]:
    journal = journal_of(ctx)
    if journal is None:
        raise PageError(404, "This build of graphattach keeps no request journal.")
    params = {k: request.query_params.get(k) or None for k in REQUEST_FILTERS}
    if params["status"] and not re.fullmatch(r"\d{3}|\dxx", params["status"].lower()):
        raise PageError(400, "Filter the status by a code (404) or a class (4xx).")
    entries = journal.select(since=since, **params)
    if not request.query_params.get("ui"):
        entries = [e for e in entries if not _is_ui(e)]
    return list(entries)


@view("requests")
async def requests_page(request: Request) -> Response:
    ctx = ctx_of(request)
    entries = _selected_requests(ctx, request)
    last = entries[-1].seq if entries else 0
    filters = {k: request.query_params.get(k, "") for k in (*REQUEST_FILTERS, "ui")}
    query = urlencode({k: v for k, v in filters.items() if v})
    return render(
        request,
        "requests.html",
        rows=[request_row(e) for e in reversed(entries[-200:])],
        filters=filters,
        live_url=f"/requests/live?{query}{'&' if query else ''}since={last}",
        capacity=journal_of(ctx).size,
        section="requests",
    )


@view("requests.live")
async def requests_live(request: Request) -> Response:
    ctx = ctx_of(request)
    try:  # a reconnecting EventSource says where it stopped
        since = max(0, int(request.headers.get("last-event-id") or request.query_params.get("since", "0")))
    except ValueError:
        since = 0
    _selected_requests(ctx, request, since)  # checks the filters before the stream starts

    async def events() -> AsyncIterator[bytes]:
        last = since
        quiet = 0.0
        yield b"retry: 1000\n\n"
        while True:
            fresh = _selected_requests(ctx, request, last)
            if fresh:
                last = fresh[-1].seq
                quiet = 0.0
                rows = orjson.dumps({"requests": [request_row(e) for e in fresh]})
                yield f"id: {last}\n".encode() + b"data: " + rows + b"\n\n"
            elif quiet > 15:
                quiet = 0.0
                yield b": keep-alive\n\n"
            await asyncio.sleep(0.5)
            quiet += 0.5

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"cache-control": "no-store", "x-accel-buffering": "no"}
    )


def _excerpt(body: bytes) -> str | None:
    if not body:
        return None
    text = body[:BODY_EXCERPT].decode("utf-8", errors="replace")
    if "\ufffd" in text[:200] and not text.isprintable():
        return f"({len(body)} bytes of binary data)"
    return text + ("\n…" if len(body) > BODY_EXCERPT else "")


@view("request")
async def request_detail(request: Request) -> Response:
    ctx = ctx_of(request)
    journal = journal_of(ctx)
    if journal is None:
        raise PageError(404, "This build of graphattach keeps no request journal.")
    try:
        seq = int(request.path_params["seq"])
    except ValueError:
        raise PageError(404, "No such request.") from None
    found = [e for e in journal.select(since=seq - 1, limit=None) if e.seq == seq]
    if not found:
        raise PageError(404, "This request is not in the journal (any more): it keeps the newest ones only.")
    entry = found[0]

    def headers(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
        return [(k, "(redacted)" if k.lower() in SECRET_HEADERS else v) for k, v in pairs]

    return render(
        request,
        "request.html",
        row=request_row(entry),
        entry=entry,
        request_headers=headers(entry.request_headers),
        response_headers=headers(entry.response_headers),
        request_body=_excerpt(entry.request_body),
        response_body=_excerpt(entry.response_body),
        section="requests",
    )
