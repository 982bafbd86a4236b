"""Admin endpoints for tests (under ``/_graphattach``, not Graph): the request journal, its HAR
export, the least-privilege report and read-only views of a mailbox for assertions.

``GET requests`` filters: ``operation`` (a name, or a prefix ending in ``.`` or ``*``), ``method``,
``status`` (``404`` or ``4xx``), ``user`` (UPN or id), ``path`` (substring), ``since`` (the last
``seq`` seen: only newer entries) and ``limit`` (the newest N).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from graphattach import __version__
from graphattach.api.admin import ADMIN_PREFIX
from graphattach.api.admin import require_admin_key as admin_context
from graphattach.api.call import stream_body
from graphattach.api.responses import graph_json
from graphattach.domain.models import ItemKind
from graphattach.domain.testkit import JournalEntry
from graphattach.protocol.errors import BadRequest
from graphattach.protocol.operations import OPERATION_KEY, admin_operation
from graphattach.protocol.snapshot import SnapshotError
from graphattach.protocol.testkit import entry_json, har_json, item_view_json, permissions_report_json
from graphattach.services import inspect, snapshot
from graphattach.services.journal import permissions_report


def _int(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if not raw.isdigit():
        raise BadRequest(f"{name} must be a non-negative integer.")
    return int(raw)


def _selected(request: Request) -> list[JournalEntry]:
    ctx = admin_context(request)
    params = request.query_params
    status = params.get("status")
    if status and not (status.isdigit() or (len(status) == 3 and status[0].isdigit() and status[1:].lower() == "xx")):
        raise BadRequest("status must be a status code (404) or a class (4xx).")
    return ctx.journal.select(
        since=_int(request, "since") or 0,
        operation=params.get("operation"),
        method=params.get("method"),
        status=status,
        user=params.get("user"),
        path=params.get("path"),
        limit=_int(request, "limit"),
    )


async def list_requests(request: Request) -> Response:
    request.scope["state"][OPERATION_KEY] = admin_operation("requests")
    entries = _selected(request)
    ctx = admin_context(request)
    last = entries[-1].seq if entries else (_int(request, "since") or 0)
    return graph_json(
        {"value": [entry_json(e) for e in entries], "lastSeq": last, "capacity": ctx.journal.size},
    )


async def export_har(request: Request) -> Response:
    request.scope["state"][OPERATION_KEY] = admin_operation("requestsHar")
    response = graph_json(har_json(_selected(request), __version__))
    response.headers["content-disposition"] = 'attachment; filename="graphattach.har"'
    return response


async def permissions(request: Request) -> Response:
    request.scope["state"][OPERATION_KEY] = admin_operation("permissionsReport")
    entries = _selected(request)
    return graph_json(permissions_report_json(permissions_report(entries), len(entries)))


async def export_snapshot(request: Request) -> Response:
    request.scope["state"][OPERATION_KEY] = admin_operation("snapshotExport")
    ctx = admin_context(request)
    return StreamingResponse(
        snapshot.export(ctx),
        media_type="application/x-ndjson",
        headers={"content-disposition": 'attachment; filename="graphattach.snapshot.jsonl"'},
    )


async def import_snapshot(request: Request) -> Response:
    """All or nothing: the whole body is checked before the stores are touched."""
    request.scope["state"][OPERATION_KEY] = admin_operation("snapshotImport")
    ctx = admin_context(request)
    try:
        spool = await snapshot.receive(stream_body(request))
    except SnapshotError as exc:
        raise BadRequest(f"The snapshot is refused, nothing was changed: {exc}") from None
    try:
        counts = await snapshot.restore(ctx, spool)
    finally:
        spool.close()
    return graph_json(counts)


async def _items(request: Request, kind: ItemKind) -> Response:
    request.scope["state"][OPERATION_KEY] = admin_operation("mailbox")
    ctx = admin_context(request)
    user = await inspect.mailbox_user(ctx, request.path_params["user"])
    views = await inspect.items_of(ctx, user, kind, request.query_params.get("folder"))
    return graph_json({"value": [item_view_json(v) for v in views]})


async def user_messages(request: Request) -> Response:
    return await _items(request, "message")


async def user_events(request: Request) -> Response:
    return await _items(request, "event")


ROUTES = [
    Route(f"{ADMIN_PREFIX}/requests", list_requests, methods=["GET"]),
    Route(f"{ADMIN_PREFIX}/requests.har", export_har, methods=["GET"]),
    Route(f"{ADMIN_PREFIX}/permissions-report", permissions, methods=["GET"]),
    Route(f"{ADMIN_PREFIX}/snapshot", export_snapshot, methods=["GET"]),
    Route(f"{ADMIN_PREFIX}/snapshot", import_snapshot, methods=["POST"]),
    Route(f"{ADMIN_PREFIX}/users/{{user}}/messages", user_messages, methods=["GET"]),
    Route(f"{ADMIN_PREFIX}/users/{{user}}/events", user_events, methods=["GET"]),
]
