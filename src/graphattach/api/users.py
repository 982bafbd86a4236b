"""Graph routes: ``/users``, ``/users/{id|upn}``, ``/me``."""

from __future__ import annotations

from starlette.responses import Response

from graphattach.api.call import GraphCall, Routes
from graphattach.api.responses import graph_json
from graphattach.auth.permissions import USER_READ, USERS_READ_ALL
from graphattach.protocol.endpoints import Endpoint
from graphattach.protocol.errors import AccessDenied, AuthorizationRequestDenied, DirectoryResourceNotFound
from graphattach.protocol.odata import context_url, next_link
from graphattach.protocol.shape import collection, project
from graphattach.protocol.users import USER_PROPERTIES, user_json
from graphattach.services import journal
from graphattach.services.access import me_not_allowed
from graphattach.services.users import find_user


async def list_users(call: GraphCall) -> Response:
    journal.note_permission(USERS_READ_ALL)
    if not call.principal.has_any(USERS_READ_ALL):
        raise AuthorizationRequestDenied()
    users = await call.ctx.metadata.list_users()
    total = len(users)
    skip, top = call.query.skip or 0, call.query.top or 100
    page = users[skip : skip + top]
    values = [project(user_json(u), call.query.select, known=USER_PROPERTIES) for u in page]
    link = next_link(call.url_without_query(), call.request.url.query, skip + top) if skip + top < total else None
    return graph_json(
        collection(
            context_url(call.service_root, "users"),
            values,
            count=total if call.query.count else None,
            next_link=link,
        )
    )


async def get_user(call: GraphCall) -> Response:
    if call.path.is_me:
        if not call.principal.is_delegated:
            raise me_not_allowed()
        user = await call.ctx.metadata.get_user(call.principal.user_id or "")
        key = call.principal.upn or ""
    else:
        key = call.path.user or ""
        user = await find_user(call.ctx, key)
    if user is None:
        raise DirectoryResourceNotFound(key=key)
    own = call.principal.is_delegated and call.principal.user_id == user.id
    # Reading one's own profile needs User.Read (https://learn.microsoft.com/graph/api/user-get#permissions).
    journal.note_permission(USER_READ if own else USERS_READ_ALL)
    if not own and not call.principal.has_any(USERS_READ_ALL):
        if call.principal.is_delegated:
            raise AuthorizationRequestDenied()
        raise AccessDenied()
    body = {
        "@odata.context": context_url(call.service_root, "users/$entity"),
        **project(user_json(user), call.query.select, known=USER_PROPERTIES),
    }
    return graph_json(body)


ROUTES: Routes = {
    (Endpoint.USERS, "GET"): list_users,
    (Endpoint.USER, "GET"): get_user,
}
