"""Graph routes: messages, mail folders, send and sendMail.

Handlers are thin: resolve the mailbox and check permissions, parse the body with
``protocol.messages``/``protocol.folders``, make one service call, shape the answer.
"""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.responses import Response

from graphattach.api.call import GraphCall, Handler, Routes
from graphattach.api.mailbox import (
    apply_query,
    collection_context,
    collection_page,
    count_response,
    delta_state,
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
from graphattach.protocol import delta as delta_proto
from graphattach.protocol import folders as folder_proto
from graphattach.protocol import messages as proto
from graphattach.protocol import outlook as o
from graphattach.protocol import search as search_proto
from graphattach.protocol.endpoints import Endpoint
from graphattach.protocol.errors import InvalidParameter, InvalidUrlQuery, ItemNotFound
from graphattach.protocol.paths import Step
from graphattach.protocol.shape import project
from graphattach.services import delta as delta_service
from graphattach.services import mail
from graphattach.services import search as search_service
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


async def _action_response(call: GraphCall, user: User, item: Item, status: int = 201) -> Response:
    """The message an action returns (move, copy, createReply...), in the user's ``messages``
    entity set whatever path the action was called on (the message may now be in another folder)."""
    context = entity_context(call, user, (call.path.steps[0], Step("messages")))
    body = {"@odata.context": context, **await _message_entity(call, item)}
    return graph_json(body, status=status, headers={"ETag": proto.etag(item)})


async def create_message(call: GraphCall) -> Response:
    user = await mailbox(call, MAIL_WRITE)
    folder = await resolve_containers(call.ctx, user, call.path.containers)
    data, attachments = proto.parse_create(await call.json(), strict=call.strict)
    item = await mail.create_message(call.ctx, user, folder, data, attachments, version=call.path.version)
    return await _message_response(call, user, item, status=201)


async def search_messages(call: GraphCall, user: User, folder: Folder | None) -> Response:
    """``$search`` on messages: KQL (protocol/search.py), newest sent first, paged by
    ``$skiptoken``. Graph refuses ``$search`` with ``$orderby``, ``$filter`` or ``$skip``
    (search-query-parameter; PipedreamHQ/pipedream#19132)."""
    q = call.query
    for name, present in (
        ("$orderBy", q.orderby is not None),
        ("$filter", q.filter is not None),
        ("$skip", q.skip is not None),
    ):
        if present:
            raise InvalidUrlQuery(f"The query parameter '{name}' is not supported with '$search'.")
    assert q.search is not None
    tree = search_proto.parse_search(q.search)
    _, top = page_bounds(call)
    offset = 0
    if q.skiptoken is not None:
        offset = search_proto.decode_skiptoken(q.skiptoken)
    found = await search_service.search_messages(call.ctx, user, folder, tree)
    values = [await _message_entity(call, item) for item in found[offset : offset + top]]
    body: dict[str, Any] = {"@odata.context": collection_context(call, user), "value": values}
    if offset + top < len(found):
        pairs = [
            (k, v) for k, v in parse_qsl(call.request.url.query, keep_blank_values=True) if k.lower() != "$skiptoken"
        ]
        pairs.append(("$skiptoken", search_proto.encode_skiptoken(offset + top)))
        body["@odata.nextLink"] = f"{call.url_without_query()}?{urlencode(pairs, safe='$,()/:')}"
    return graph_json(body)


async def list_messages(call: GraphCall) -> Response:
    user = await mailbox(call, MAIL_READ)
    folder = await resolve_containers(call.ctx, user, call.path.containers)
    if call.query.search is not None:
        return await search_messages(call, user, folder)
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


async def message_delta(call: GraphCall) -> Response:
    """``GET .../mailFolders/{id}/messages/delta`` (delta-query-messages): one page of changes, with
    an ``@odata.nextLink`` ($skiptoken) or, on the last page, an ``@odata.deltaLink`` ($deltatoken)."""
    user = await mailbox(call, MAIL_READ)
    if not call.path.containers:
        raise InvalidUrlQuery(
            "Delta query on messages is supported per folder: use .../mailFolders/{id}/messages/delta."
        )
    folder = await _addressed_folder(call, user)
    q = call.query
    if q.search is not None:
        raise InvalidUrlQuery("The query parameter '$search' is not supported with delta.")
    if q.skip is not None or q.count or q.expand:
        raise InvalidUrlQuery("Only $select, $top, $filter and $orderby are supported with delta.")
    if q.orderby is not None and " ".join(q.orderby.lower().split()) != "receiveddatetime desc":
        raise InvalidUrlQuery("Only 'receivedDateTime desc' is supported in $orderby with delta.")
    key = await delta_service.token_key(call.ctx)
    preferred = delta_proto.page_size(call.request.headers.get("prefer"))
    # an empty $deltatoken (a synchronization reset's Location) starts a new round
    token = q.skiptoken or q.deltatoken or None
    if token is not None:
        state = await delta_state(call, token, key, user_id=user.id, folder_id=folder.id)
    else:
        if q.select:
            project({}, q.select, known=set(proto.PROPERTIES))  # unknown names are a 400 now, not later
        state = delta_proto.DeltaState(
            user_id=user.id,
            folder_id=folder.id,
            after=0,
            upto=0,
            initial=True,
            generation=await delta_service.sync_generation(call.ctx),
            select=tuple(q.select) if q.select else None,
            page_size=min(q.top, delta_proto.MAX_PAGE_SIZE) if q.top else delta_proto.DEFAULT_PAGE_SIZE,
            received_filter=delta_proto.parse_received_filter(q.filter),
        )
    if preferred is not None:
        state = dataclasses.replace(state, page_size=preferred)
    page = await delta_service.message_delta(call.ctx, user, folder, state)
    select = list(state.select) if state.select is not None else None
    root = call.ctx.settings.root_url
    values: list[dict[str, Any]] = []
    for item in page.items:
        entity = proto.message_json(item, root_url=root)
        entity.update(proto.selected_extras(item, select))
        values.append(
            {"@odata.type": "#microsoft.graph.message", **project(entity, select, known=set(proto.PROPERTIES))}
        )
    values += [delta_proto.removed_entry(item_id) for item_id in page.removed]
    link = delta_proto.encode_token(page.next_state, key)
    body: dict[str, Any] = {"@odata.context": f"{call.service_root}/$metadata#Collection(message)"}
    if page.final:
        body["@odata.deltaLink"] = f"{call.url_without_query()}?$deltatoken={link}"
    else:
        body["@odata.nextLink"] = f"{call.url_without_query()}?$skiptoken={link}"
    body["value"] = values
    headers = {"Preference-Applied": f"odata.maxpagesize={preferred}"} if preferred is not None else None
    return graph_json(body, headers=headers)


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


async def move_message(call: GraphCall) -> Response:
    """``POST .../messages/{id}/move``: 201 and the message in its new folder, under a new id."""
    user = await mailbox(call, MAIL_WRITE)
    item = await resolve_item(call.ctx, user, call.path)
    destination = await mail.destination_folder(call.ctx, user, proto.parse_move(await call.json(), strict=call.strict))
    moved = await mail.move_message(call.ctx, user, item, destination)
    return await _action_response(call, user, moved)


async def copy_message(call: GraphCall) -> Response:
    """``POST .../messages/{id}/copy``: 201 and the new copy (the docs' example says 200, the text 201)."""
    user = await mailbox(call, MAIL_WRITE)
    item = await resolve_item(call.ctx, user, call.path)
    destination = await mail.destination_folder(call.ctx, user, proto.parse_move(await call.json(), strict=call.strict))
    copy = await mail.copy_message(call.ctx, user, item, destination)
    return await _action_response(call, user, copy)


async def _reply_parameters(call: GraphCall, forward: bool) -> proto.ReplyParameters:
    """The action's body; createReply "does not require a request body" (message-createreply.md)."""
    from graphattach.api.call import read_body
    from graphattach.protocol.jsonio import loads_object

    raw = await read_body(call.request, call.ctx.settings.max_request_body)
    payload = loads_object(raw) if raw.strip() else {}
    return proto.parse_reply(payload, strict=call.strict, forward=forward)


def _create_reply(kind: mail.ReplyKind) -> Handler:
    async def handler(call: GraphCall) -> Response:
        """createReply, createReplyAll, createForward: 201 and the new draft (in Drafts)."""
        user = await mailbox(call, MAIL_WRITE)
        original = await resolve_item(call.ctx, user, call.path)
        params = await _reply_parameters(call, forward=kind == "forward")
        draft = await mail.create_reply(call.ctx, user, original, kind, params, version=call.path.version)
        return await _action_response(call, user, draft)

    return handler


def _send_reply(kind: mail.ReplyKind) -> Handler:
    async def handler(call: GraphCall) -> Response:
        """reply, replyAll, forward: 202 and no body; Sent Items keeps a copy."""
        user = await mailbox(call, MAIL_SEND)
        original = await resolve_item(call.ctx, user, call.path)
        params = await _reply_parameters(call, forward=kind == "forward")
        await mail.reply(call.ctx, user, original, kind, params, version=call.path.version)
        return empty(202)

    return handler


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
    (Endpoint.MESSAGES_DELTA, "GET"): message_delta,
    (Endpoint.MESSAGE, "GET"): get_message,
    (Endpoint.MESSAGE, "PATCH"): update_message,
    (Endpoint.MESSAGE, "DELETE"): delete_message,
    (Endpoint.MESSAGE_SEND, "POST"): send_message,
    (Endpoint.MESSAGE_MOVE, "POST"): move_message,
    (Endpoint.MESSAGE_COPY, "POST"): copy_message,
    (Endpoint.MESSAGE_CREATE_REPLY, "POST"): _create_reply("reply"),
    (Endpoint.MESSAGE_CREATE_REPLY_ALL, "POST"): _create_reply("replyAll"),
    (Endpoint.MESSAGE_CREATE_FORWARD, "POST"): _create_reply("forward"),
    (Endpoint.MESSAGE_REPLY, "POST"): _send_reply("reply"),
    (Endpoint.MESSAGE_REPLY_ALL, "POST"): _send_reply("replyAll"),
    (Endpoint.MESSAGE_FORWARD, "POST"): _send_reply("forward"),
    (Endpoint.SEND_MAIL, "POST"): send_mail,
    (Endpoint.MAIL_FOLDERS, "GET"): list_folders,
    (Endpoint.MAIL_FOLDERS, "POST"): create_folder,
    (Endpoint.MAIL_FOLDERS_COUNT, "GET"): count_folders,
    (Endpoint.MAIL_FOLDER, "GET"): get_folder,
    (Endpoint.MAIL_FOLDER, "PATCH"): update_folder,
    (Endpoint.MAIL_FOLDER, "DELETE"): delete_folder,
}
