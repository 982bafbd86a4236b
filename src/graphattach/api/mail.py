"""Graph routes: messages, mail folders, send and sendMail."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from graphattach.api.call import GraphCall, Routes
from graphattach.api.outlook import entity_context, expansions, mailbox
from graphattach.api.responses import graph_json
from graphattach.auth.permissions import MAIL_READ, MAIL_WRITE
from graphattach.domain.models import Item
from graphattach.protocol import messages as proto
from graphattach.protocol.shape import project
from graphattach.services import mail
from graphattach.services.access import resolve_containers, resolve_item


async def _message_body(call: GraphCall, item: Item) -> dict[str, Any]:
    entity = proto.message_json(item, root_url=call.ctx.settings.root_url)
    entity.update(proto.selected_extras(item, call.query.select))
    entity = project(entity, call.query.select, known=set(proto.PROPERTIES))
    entity.update(await expansions(call, item, proto.PROPERTIES, "microsoft.graph.message"))
    return entity


async def create_message(call: GraphCall) -> Response:
    user = await mailbox(call, MAIL_WRITE)
    folder = await resolve_containers(call.ctx, user, call.path.containers)
    data, attachments = proto.parse_create(await call.json(), strict=call.strict)
    item = await mail.create_message(call.ctx, user, folder, data, attachments)
    body = {"@odata.context": entity_context(call, user), **await _message_body(call, item)}
    return graph_json(body, status=201)


async def get_message(call: GraphCall) -> Response:
    user = await mailbox(call, MAIL_READ)
    item = await resolve_item(call.ctx, user, call.path)
    body = {"@odata.context": entity_context(call, user), **await _message_body(call, item)}
    return graph_json(body)


ROUTES: Routes = {
    ("messages", "POST"): create_message,
    ("message", "GET"): get_message,
}
