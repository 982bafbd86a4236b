"""Graph routes: events, calendars and calendar groups."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from graphattach.api.call import GraphCall, Routes
from graphattach.api.outlook import entity_context, expansions, mailbox, preferred_time_zone
from graphattach.api.responses import graph_json
from graphattach.auth.permissions import CALENDARS_READ, CALENDARS_WRITE
from graphattach.domain.models import Item, User
from graphattach.protocol import events as proto
from graphattach.protocol.shape import project
from graphattach.services import calendar
from graphattach.services.access import resolve_containers, resolve_item
from graphattach.services.mail import owner_recipient


async def _event_body(call: GraphCall, user: User, item: Item) -> dict[str, Any]:
    entity = proto.event_json(
        item,
        owner=owner_recipient(user),
        root_url=call.ctx.settings.root_url,
        zone_name=preferred_time_zone(call),
    )
    entity = project(entity, call.query.select, known=set(proto.PROPERTIES))
    entity.update(await expansions(call, item, proto.PROPERTIES, "microsoft.graph.event"))
    return entity


async def create_event(call: GraphCall) -> Response:
    user = await mailbox(call, CALENDARS_WRITE)
    container = await resolve_containers(call.ctx, user, call.path.containers)
    data, attachments = proto.parse_create(await call.json(), strict=call.strict)
    preferred_time_zone(call)  # a bad Prefer header fails before anything is stored
    item = await calendar.create_event(call.ctx, user, container, data, attachments)
    body = {"@odata.context": entity_context(call, user), **await _event_body(call, user, item)}
    return graph_json(body, status=201)


async def get_event(call: GraphCall) -> Response:
    user = await mailbox(call, CALENDARS_READ)
    item = await resolve_item(call.ctx, user, call.path)
    body = {"@odata.context": entity_context(call, user), **await _event_body(call, user, item)}
    return graph_json(body)


ROUTES: Routes = {
    ("events", "POST"): create_event,
    ("event", "GET"): get_event,
}
