"""The Graph endpoint: ``/{v1.0|beta}/...`` → authenticate, parse, dispatch by (endpoint, method).

Each feature module (``users``, ``mail``, ``calendar``, ``attachments``, ``create_upload_session``)
exports ``ROUTES: dict[(endpoint, METHOD), handler]``; ``endpoint`` is ``GraphPath.endpoint``.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from graphattach.api import attachments, batch, calendar, create_upload_session, mail, subscriptions, users
from graphattach.api.call import GraphCall, Routes
from graphattach.domain.errors import GraphError
from graphattach.protocol.errors import MethodNotSupported, UnsupportedResource
from graphattach.protocol.odata import parse_query
from graphattach.protocol.operations import OPERATION_KEY, graph_operation
from graphattach.protocol.paths import parse_graph_path
from graphattach.services import journal, notifications
from graphattach.services.access import me_not_allowed
from graphattach.services.context import Context

ROUTES: Routes = {}
for _module in (users, mail, calendar, attachments, create_upload_session, subscriptions):
    overlap = ROUTES.keys() & _module.ROUTES.keys()
    assert not overlap, f"routes defined twice: {overlap}"
    ROUTES.update(_module.ROUTES)

ENDPOINTS = frozenset(endpoint for endpoint, _ in ROUTES)

#: Query parameters (not ``$`` options) an endpoint takes.
EXTRA_PARAMETERS = {"calendarView.delta": frozenset({"startDateTime", "endDateTime"})}

WWW_AUTHENTICATE = (
    'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
    'client_id="00000003-0000-0000-c000-000000000000"'
)


async def graph_v1(request: Request) -> Response:
    return await graph_endpoint(request, "v1.0")


async def graph_beta(request: Request) -> Response:
    return await graph_endpoint(request, "beta")


async def graph_endpoint(request: Request, version: str) -> Response:
    ctx: Context = request.app.state.ctx
    try:
        principal = ctx.tokens.verify_graph_token(request.headers.get("authorization"), now=ctx.clock.now().timestamp())
    except GraphError as exc:
        exc.headers.setdefault("WWW-Authenticate", WWW_AUTHENTICATE)
        raise
    journal.note_principal(principal)
    raw_path = request.scope.get("raw_path")
    raw = raw_path.decode("latin-1") if raw_path else request.url.path
    raw = raw.split("?", 1)[0]
    prefix = f"/{version}/"
    rest = raw[raw.index(prefix) + len(prefix) - 1 :] if prefix in raw else raw
    if batch.is_batch_path(rest):
        if request.method.upper() != "POST":
            raise MethodNotSupported(method=request.method.upper())
        return await batch.run_batch(request, version)
    path = parse_graph_path(version, rest)
    if path.is_me and not principal.is_delegated:
        raise me_not_allowed()
    method = request.method.upper()
    request.scope["state"][OPERATION_KEY] = graph_operation(path.endpoint, method)
    handler = ROUTES.get((path.endpoint, method))
    if handler is None:
        if path.endpoint in ENDPOINTS:
            raise MethodNotSupported(method=method)
        raise UnsupportedResource(endpoint=path.endpoint)
    query = parse_query(
        request.url.query, strict=ctx.settings.strict, allowed_extra=EXTRA_PARAMETERS.get(path.endpoint, frozenset())
    )
    # one request's item changes become its notifications, coalesced, before it is answered
    async with notifications.changes(ctx):
        return await handler(GraphCall(request, ctx, path, query, principal))
