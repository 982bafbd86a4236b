"""Graph routes: attachments (POST, list, get, ``$value``, DELETE, ``$count``) and ``$expand=attachments``.

Every URL form reaches these handlers: ``/me`` or ``/users/{id|upn}``, then ``messages/{id}``,
``mailFolders/{id}[/childFolders/{id}...]/messages/{id}``, ``events/{id}``,
``calendar/events/{id}``, ``calendars/{id}/events/{id}`` or
``calendarGroups/{id}/calendars/{id}/events/{id}`` (protocol/paths.py parses them all).

Responses that carry ``contentBytes`` are written as JSON with holes (``protocol/holes.py``): the
JSON around each file is built in memory, the base64 of the file is streamed from the blob store
in between (``services/attachments.fill_holes``), so a GET of a large attachment never holds the
file (nor its base64) in memory.
"""

from __future__ import annotations

from typing import Any

import orjson
import pybase64
from starlette.responses import Response, StreamingResponse

from graphattach.api.call import GraphCall, Routes, read_body, user_key
from graphattach.api.responses import GRAPH_JSON, ChunkStream, PiecesResponse, empty, graph_json
from graphattach.auth.permissions import read_permissions, write_permissions
from graphattach.domain.models import Attachment, Item, User
from graphattach.protocol.attachments import (
    SELECTABLE,
    FileInput,
    attachment_json,
    embedded_item_json,
    expand_item_requested,
    loads_attachment,
    nested_attachment_options,
    parse_attachment,
    wants_bytes,
)
from graphattach.protocol.endpoints import Endpoint
from graphattach.protocol.errors import UpdateNotAllowed
from graphattach.protocol.holes import Hole, Part, entity_parts, hole_bytes, merge_parts, parts_length
from graphattach.protocol.odata import context_path, context_url, next_link, page, quote_key
from graphattach.protocol.paths import Step
from graphattach.protocol.shape import project
from graphattach.services import attachments as service
from graphattach.services.access import authorize, resolve_item, resolve_user

#: Responses whose files total at most this many raw bytes are built in memory; larger ones stream.
INLINE_LIMIT = 1024 * 1024


async def _resolve(call: GraphCall, *, write: bool) -> tuple[User, Item]:
    """The mailbox owner and the item, after checking the caller's permissions on that mailbox."""
    user = await resolve_user(call.ctx, call.principal, call.path)
    kind = call.path.item_kind or "message"
    authorize(call.principal, user, write_permissions(kind) if write else read_permissions(kind))
    item = await resolve_item(call.ctx, user, call.path)
    return user, item


def _item_steps(call: GraphCall) -> tuple[Step, ...]:
    """The path's steps up to the item (everything before ``attachments``)."""
    steps = call.path.steps
    for index, step in enumerate(steps):
        if step.name == "attachments":
            return steps[:index]
    return steps


def _item_context(call: GraphCall, user: User) -> str:
    return context_path(user_key(call, user), _item_steps(call))


def _entity_context(call: GraphCall, user: User) -> str:
    return context_url(call.service_root, f"{_item_context(call, user)}/attachments/$entity")


def _item_expand_context(call: GraphCall, user: User, attachment: Attachment) -> str:
    fragment = f"{_item_context(call, user)}/attachments('{quote_key(attachment.id)}')/microsoft.graph.itemAttachment/item/$entity"
    return context_url(call.service_root, fragment)


# ------------------------------------------------------------------------------------------------
# JSON with holes


async def _json_response(call: GraphCall, parts: list[Part], status: int = 200) -> Response:
    await service.check_holes(call.ctx, parts)
    if hole_bytes(parts) <= INLINE_LIMIT:
        body = b"".join([piece async for piece in service.fill_holes(call.ctx, parts)])
        return Response(body, status_code=status, headers={"OData-Version": "4.0"}, media_type=GRAPH_JSON)
    return StreamingResponse(
        service.fill_holes(call.ctx, parts),
        status_code=status,
        headers={"OData-Version": "4.0", "Content-Type": GRAPH_JSON, "Content-Length": str(parts_length(parts))},
    )


# ------------------------------------------------------------------------------------------------
# shaping


def _shape(
    call: GraphCall,
    user: User,
    attachment: Attachment,
    *,
    select: list[str] | None,
    expand_item: bool,
    context: str | None = None,
) -> list[Part]:
    entity: dict[str, Any] = {}
    if context is not None:
        entity["@odata.context"] = context
    entity.update(attachment_json(attachment, version=call.path.version, media_type_annotation=select is not None))
    entity = project(entity, select, known=set(SELECTABLE))
    if expand_item and attachment.kind == "item":
        entity["item@odata.context"] = _item_expand_context(call, user, attachment)
        entity["item"] = embedded_item_json(attachment, version=call.path.version)
    hole = None
    if attachment.kind == "file" and attachment.blob_key is not None and wants_bytes(select):
        hole = Hole(attachment.blob_key, attachment.content_length)
    return entity_parts(entity, hole)


# ------------------------------------------------------------------------------------------------
# handlers


async def add_attachment(call: GraphCall) -> Response:
    """``POST .../attachments``: 201 with the attachment (contentBytes echoed for a file)."""
    body = await read_body(call.request, call.ctx.settings.max_request_body)
    user, item = await _resolve(call, write=True)
    payload, lifted = loads_attachment(body)
    parsed = parse_attachment(payload, version=call.path.version, strict=call.strict, lifted=lifted)
    attachment = await service.add_parsed(call.ctx, user, item, parsed)
    entity: dict[str, Any] = {"@odata.context": _entity_context(call, user)}
    entity.update(attachment_json(attachment, version=call.path.version))
    if attachment.kind == "item":
        # The POST answer of an item attachment also carries its canonical URL (the event-post-attachments example, beta).
        canonical = (
            f"{call.service_root}/users('{user.id}@{call.ctx.tenant_id}')/{item.kind}s('{item.id}')"
            f"/attachments('{attachment.id}')"
        )
        entity = {
            "@odata.context": entity.pop("@odata.context"),
            "@odata.type": entity.pop("@odata.type"),
            "@odata.id": canonical,
            **entity,
        }
    if isinstance(parsed, FileInput):
        # Spliced in as bytes, sent apart from the rest: base64 needs no JSON escaping, and a
        # megabyte string need not go through the encoder again nor be copied into one body.
        if isinstance(parsed.encoded, bytes):
            encoded = parsed.encoded
        else:
            encoded = parsed.encoded.encode("ascii") if parsed.encoded else pybase64.b64encode(parsed.content)
        pieces = [orjson.dumps(entity)[:-1] + b',"contentBytes":"', encoded, b'"}']
        return PiecesResponse(pieces, status_code=201, headers={"OData-Version": "4.0"}, media_type=GRAPH_JSON)
    return graph_json(entity, status=201)


async def list_attachments(call: GraphCall) -> Response:
    """``$skip``/``$top`` are honoured, ``$filter``/``$orderby``/``$search`` ignored, no server-side
    page size (docs/fidelity.md)."""
    user, item = await _resolve(call, write=False)
    expand_item = expand_item_requested(call.query.expand)
    attachments = await service.list_for_item(call.ctx, item)
    total = len(attachments)
    skip = call.query.skip or 0
    chosen, following = page(attachments, skip, call.query.top)
    parts: list[Part] = [
        b'{"@odata.context":',
        orjson.dumps(context_url(call.service_root, f"{_item_context(call, user)}/attachments")),
    ]
    if call.query.count:
        parts.append(b',"@odata.count":' + str(total).encode())
    parts.append(b',"value":[')
    for index, attachment in enumerate(chosen):
        if index:
            parts.append(b",")
        parts += _shape(call, user, attachment, select=call.query.select, expand_item=expand_item)
    parts.append(b"]")
    if following is not None:
        link = next_link(call.url_without_query(), call.request.url.query, following)
        parts.append(b',"@odata.nextLink":' + orjson.dumps(link))
    parts.append(b"}")
    return await _json_response(call, merge_parts(parts))


async def get_attachment(call: GraphCall) -> Response:
    user, item = await _resolve(call, write=False)
    expand_item = expand_item_requested(call.query.expand)
    assert call.path.attachment_id is not None
    attachment = await service.get(call.ctx, item, call.path.attachment_id)
    parts = _shape(
        call,
        user,
        attachment,
        select=call.query.select,
        expand_item=expand_item,
        context=_entity_context(call, user),
    )
    return await _json_response(call, parts)


async def get_value(call: GraphCall) -> Response:
    """``$value``: the raw bytes of a file (streamed), MIME / iCalendar / vCard of an item, 405 for a
    reference attachment."""
    _, item = await _resolve(call, write=False)
    assert call.path.attachment_id is not None
    attachment = await service.get(call.ctx, item, call.path.attachment_id)
    raw = await service.read_value(call.ctx, attachment)
    return ChunkStream(
        raw.chunks,
        headers={"Content-Type": raw.content_type, "Content-Length": str(raw.length)},
    )


async def delete_attachment(call: GraphCall) -> Response:
    _, item = await _resolve(call, write=True)
    assert call.path.attachment_id is not None
    await service.delete(call.ctx, item, call.path.attachment_id)
    return empty(204)


async def patch_attachment(call: GraphCall) -> Response:
    """Attachments are not updatable (CSDL ``UpdateRestrictions``; "update not allowed")."""
    await _resolve(call, write=True)
    raise UpdateNotAllowed()


async def count_attachments(call: GraphCall) -> Response:
    """``/attachments/$count``: the number as ``text/plain``."""
    _, item = await _resolve(call, write=False)
    total = len(await service.list_for_item(call.ctx, item))
    return Response(str(total).encode("ascii"), headers={"Content-Type": "text/plain", "OData-Version": "4.0"})


# ------------------------------------------------------------------------------------------------
# $expand=attachments on a message or event


async def expand_attachments(call: GraphCall, item: Item) -> list[dict[str, Any]]:
    """The ``attachments`` array for ``GET .../messages/{id}?$expand=attachments`` (and events).

    Each file attachment carries its ``contentBytes`` unless a nested ``$select`` leaves it out.
    The caller has already authorised reading ``item``.
    """
    select, expand_item = nested_attachment_options(call.query.expand)
    result: list[dict[str, Any]] = []
    for attachment in await service.list_for_item(call.ctx, item):
        entity = attachment_json(attachment, version=call.path.version, media_type_annotation=select is not None)
        entity = project(entity, select, known=set(SELECTABLE))
        if expand_item and attachment.kind == "item":
            entity["item"] = embedded_item_json(attachment, version=call.path.version)
        if attachment.kind == "file" and attachment.blob_key is not None and wants_bytes(select):
            data = await service.file_bytes(call.ctx, attachment)
            entity["contentBytes"] = pybase64.b64encode(data).decode("ascii")
        result.append(entity)
    return result


ROUTES: Routes = {
    (Endpoint.ATTACHMENTS, "POST"): add_attachment,
    (Endpoint.ATTACHMENTS, "GET"): list_attachments,
    (Endpoint.ATTACHMENTS_COUNT, "GET"): count_attachments,
    (Endpoint.ATTACHMENT, "GET"): get_attachment,
    (Endpoint.ATTACHMENT, "DELETE"): delete_attachment,
    (Endpoint.ATTACHMENT, "PATCH"): patch_attachment,
    (Endpoint.ATTACHMENT_VALUE, "GET"): get_value,
}
