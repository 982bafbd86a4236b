"""Graph routes: messages, mail folders, send and sendMail.

Handlers are thin: resolve the mailbox and check permissions, parse the body with
``protocol.messages``/``protocol.folders``, make one service call, shape the answer.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from graphattach.api.call import GraphCall, Routes
from graphattach.api.mailbox import (
    apply_query,
    collection_page,
    count_response,
    entity_context,
    expansions,
    mailbox,
    page_bounds,
    refuse_unsupported_options,
    wants_query,
)
from graphattach.api.responses import empty, graph_json
from graphattach.auth.permissions import MAIL_READ, MAIL_SEND, MAIL_WRITE
from graphattach.domain.models import Folder, Item, User
from graphattach.protocol import folders as folder_proto
from graphattach.protocol import messages as proto
from graphattach.protocol import outlook as o
from graphattach.protocol.endpoints import Endpoint
from graphattach.protocol.errors import InvalidParameter, ItemNotFound
from graphattach.protocol.shape import project
from graphattach.services import mail
from graphattach.services.access import resolve_containers, resolve_item

# ---- messages ---------------------------------------------------------------------------------------


async def _message_entity(call: GraphCall, item: Item) -> dict[str, Any]:
    entity = proto.message_json(item, root_url=call.ctx.settings.root_url)
    entity.update(proto.selected_extras(item, call.query.select))
    entity = project(entity, call.query.select, known=set(proto.PROPERTIES))
    entity.update(await expansions(call, item, proto.PROPERTIES, "microsoft.graph.message"))
    return entity


async def _message_response(call: GraphCall, user: User, item: Item, status: int = 200) -> Response:
    body = {"@odata.context": entity_context(call, user), **await _message_entity(call, item)}
    return graph_json(body, status=status, headers={"ETag": proto.etag(item)})


async def create_message(call: GraphCall) -> Response:
    user = await mailbox(call, MAIL_WRITE)
    folder = await resolve_containers(call.ctx, user, call.path.containers)
    data, attachments = proto.parse_create(await call.json(), strict=call.strict)
    item = await mail.create_message(call.ctx, user, folder, data, attachments, version=call.path.version)
    return await _message_response(call, user, item, status=201)


async def list_messages(call: GraphCall) -> Response:
    user = await mailbox(call, MAIL_READ)
    folder = await resolve_containers(call.ctx, user, call.path.containers)
    refuse_unsupported_options(call)
    skip, top = page_bounds(call)
    if wants_query(call):
        everything = await mail.list_messages(call.ctx, user, folder, skip=0, top=None)
        root = call.ctx.settings.root_url
        chosen = apply_query(
            call,
            everything.items,
            lambda item: proto.message_json(item, root_url=root),
            proto.PROPERTIES,
            "microsoft.graph.message",
        )
        page = mail.Page(chosen[skip : skip + top], len(chosen))
    else:
        page = await mail.list_messages(call.ctx, user, folder, skip=skip, top=top)
    values = [await _message_entity(call, item) for item in page.items]
    return graph_json(collection_page(call, user, values, total=page.total, skip=skip, top=top))


async def count_messages(call: GraphCall) -> Response:
    user = await mailbox(call, MAIL_READ)
    folder = await resolve_containers(call.ctx, user, call.path.containers)
    page = await mail.list_messages(call.ctx, user, folder, skip=0, top=0)
    return count_response(page.total)


async def get_message(call: GraphCall) -> Response:
    user = await mailbox(call, MAIL_READ)
    item = await resolve_item(call.ctx, user, call.path)
    return await _message_response(call, user, item)


async def update_message(call: GraphCall) -> Response:
    user = await mailbox(call, MAIL_WRITE)
    item = await resolve_item(call.ctx, user, call.path)
    changes = proto.parse_update(await call.json(), strict=call.strict, is_draft=bool(item.data.get("isDraft")))
    item = await mail.update_message(call.ctx, item, changes)
    return await _message_response(call, user, item)


async def delete_message(call: GraphCall) -> Response:
    user = await mailbox(call, MAIL_WRITE)
    item = await resolve_item(call.ctx, user, call.path)
    await mail.delete_item(call.ctx, item)
    return empty(204)


async def send_message(call: GraphCall) -> Response:
    """``POST .../messages/{id}/send``: 202 and no body (message-send.md)."""
    user = await mailbox(call, MAIL_SEND)
    item = await resolve_item(call.ctx, user, call.path)
    await mail.send_draft(call.ctx, user, item)
    return empty(202)


SEND_MAIL = o.Schema(
    "Microsoft.OutlookServices.SendMailParameters",
    writable={"message": lambda v, n: v, "saveToSentItems": o.boolean},
)


async def send_mail(call: GraphCall) -> Response:
    """``POST /sendMail`` with ``{"message": {...}, "saveToSentItems": bool}`` (parameter names
    matched case-insensitively: msgraph-sdk sends ``Message``/``SaveToSentItems``)."""
    user = await mailbox(call, MAIL_SEND)
    params = SEND_MAIL.validate(await call.json(), strict=call.strict)
    if params.get("message") is None:
        raise InvalidParameter("The 'message' parameter is required.")
    data, attachments = proto.parse_create(params["message"], strict=call.strict)
    await mail.send_mail(
        call.ctx,
        user,
        data,
        attachments,
        save_to_sent_items=params.get("saveToSentItems", True),
        version=call.path.version,
    )
    return empty(202)


# ---- mail folders -----------------------------------------------------------------------------------


async def _full_folder(call: GraphCall, folder: Folder) -> dict[str, Any]:
    view = await mail.folder_view(call.ctx, folder)
    return folder_proto.mail_folder_json(folder, child_count=view.child_count, total=view.total, unread=view.unread)


async def _folder_entity(call: GraphCall, folder: Folder) -> dict[str, Any]:
    entity = await _full_folder(call, folder)
    return project(entity, call.query.select, known=set(folder_proto.MAIL_FOLDER_PROPERTIES))


async def _addressed_folder(call: GraphCall, user: User) -> Folder:
    folder = await resolve_containers(call.ctx, user, call.path.containers)
    if folder is None or folder.kind != "mail":  # pragma: no cover - the path grammar guarantees one
        raise ItemNotFound()
    return folder


async def list_folders(call: GraphCall) -> Response:
    """``/mailFolders`` (children of the top of the store) and ``.../childFolders`` at any depth."""
    user = await mailbox(call, MAIL_READ)
    parent = await resolve_containers(call.ctx, user, call.path.containers)
    refuse_unsupported_options(call)
    skip, top = page_bounds(call)
    children = [f for f in await mail.child_folders(call.ctx, user, parent) if not f.data.get("isHidden")]
    if wants_query(call):
        full = {f.id: await _full_folder(call, f) for f in children}
        children = apply_query(
            call, children, lambda f: full[f.id], folder_proto.MAIL_FOLDER_PROPERTIES, "microsoft.graph.mailFolder"
        )
    values = [await _folder_entity(call, f) for f in children[skip : skip + top]]
    return graph_json(collection_page(call, user, values, total=len(children), skip=skip, top=top))


async def count_folders(call: GraphCall) -> Response:
    user = await mailbox(call, MAIL_READ)
    parent = await resolve_containers(call.ctx, user, call.path.containers)
    children = [f for f in await mail.child_folders(call.ctx, user, parent) if not f.data.get("isHidden")]
    return count_response(len(children))


async def create_folder(call: GraphCall) -> Response:
    user = await mailbox(call, MAIL_WRITE)
    parent = await resolve_containers(call.ctx, user, call.path.containers)
    name, hidden = folder_proto.parse_mail_folder_create(await call.json(), strict=call.strict)
    folder = await mail.create_folder(call.ctx, user, parent, name, is_hidden=hidden)
    body = {"@odata.context": entity_context(call, user), **await _folder_entity(call, folder)}
    return graph_json(body, status=201)


async def get_folder(call: GraphCall) -> Response:
    user = await mailbox(call, MAIL_READ)
    folder = await _addressed_folder(call, user)
    body = {"@odata.context": entity_context(call, user), **await _folder_entity(call, folder)}
    return graph_json(body)


async def update_folder(call: GraphCall) -> Response:
    user = await mailbox(call, MAIL_WRITE)
    folder = await _addressed_folder(call, user)
    name = folder_proto.parse_mail_folder_update(await call.json(), strict=call.strict)
    folder = await mail.rename_folder(call.ctx, user, folder, name)
    body = {"@odata.context": entity_context(call, user), **await _folder_entity(call, folder)}
    return graph_json(body)


async def delete_folder(call: GraphCall) -> Response:
    user = await mailbox(call, MAIL_WRITE)
    folder = await _addressed_folder(call, user)
    await mail.delete_folder(call.ctx, user, folder)
    return empty(204)


ROUTES: Routes = {
    (Endpoint.MESSAGES, "GET"): list_messages,
    (Endpoint.MESSAGES, "POST"): create_message,
    (Endpoint.MESSAGES_COUNT, "GET"): count_messages,
    (Endpoint.MESSAGE, "GET"): get_message,
    (Endpoint.MESSAGE, "PATCH"): update_message,
    (Endpoint.MESSAGE, "DELETE"): delete_message,
    (Endpoint.MESSAGE_SEND, "POST"): send_message,
    (Endpoint.SEND_MAIL, "POST"): send_mail,
    (Endpoint.MAIL_FOLDERS, "GET"): list_folders,
    (Endpoint.MAIL_FOLDERS, "POST"): create_folder,
    (Endpoint.MAIL_FOLDERS_COUNT, "GET"): count_folders,
    (Endpoint.MAIL_FOLDER, "GET"): get_folder,
    (Endpoint.MAIL_FOLDER, "PATCH"): update_folder,
    (Endpoint.MAIL_FOLDER, "DELETE"): delete_folder,
}
