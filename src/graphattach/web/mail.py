"""Mailboxes, messages and attachments (downloads, previews, raw MIME, the item an item attachment holds)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pybase64
from starlette.requests import Request
from starlette.responses import Response

from graphattach.api.responses import ChunkStream
from graphattach.domain.models import Attachment, Folder, Item, User
from graphattach.protocol.attachments import STREAM_CHUNK, item_kind_of
from graphattach.protocol.item_mime import render_item
from graphattach.protocol.jsonio import graph_datetime
from graphattach.protocol.messages import message_json
from graphattach.services import attachments as attachment_service
from graphattach.services import browse
from graphattach.services.access import WELL_KNOWN_MAIL
from graphattach.services.context import Context
from graphattach.web import security
from graphattach.web.pages import (
    MIME_ATTACHMENT_BUDGET,
    PAGE_SIZE,
    TEXT_PREVIEW_BYTES,
    PageError,
    address,
    addresses,
    attachment_rows,
    attachment_url,
    body_of,
    ctx_of,
    graph_path,
    item_of,
    item_url,
    page_url,
    preview_kind,
    reference_link,
    render,
    sandboxed,
    short,
    skip_of,
    url_part,
    user_of,
    view,
)

# ---- mailbox ------------------------------------------------------------------------------------------


async def _message_rows(ctx: Context, user: User, found: list[Item]) -> list[dict[str, Any]]:
    usages = await ctx.metadata.items_usage(user.id, [i.id for i in found])
    rows = []
    for item in found:
        usage = usages[item.id]
        _, content = body_of(item.data)
        rows.append(
            {
                "item": item,
                "url": item_url(user, item),
                "subject": item.data.get("subject") or "",
                "from": short(item.data.get("from") or item.data.get("sender")),
                "from_full": address(item.data.get("from") or item.data.get("sender")),
                "to": ", ".join(short(r) for r in item.data.get("toRecipients") or []),
                "to_full": addresses(item.data.get("toRecipients")),
                "date": item.data.get("receivedDateTime") or graph_datetime(item.created),
                "attachments": usage.count,
                "size": len(content.encode()) + usage.weight,
                "draft": bool(item.data.get("isDraft", False)),
                "unread": not item.data.get("isRead", True),
            }
        )
    return rows


@view("mailbox")
async def mailbox(request: Request) -> Response:
    ctx = ctx_of(request)
    user = await user_of(request)
    key = request.path_params.get("folder", "inbox")
    folder = await _mail_folder(ctx, user, key)
    tree = await browse.mail_folder_tree(ctx, user)
    query = request.query_params.get("q", "").strip()[:200]
    skip = skip_of(request)
    page = await browse.items_page(ctx, user, "message", folder, skip=skip, top=PAGE_SIZE, query=query)
    base = f"/mail/{url_part(user.user_principal_name)}/folders/{folder.well_known_name or folder.id}"
    return render(
        request,
        "mailbox.html",
        user=user,
        folder=folder,
        tree=tree,
        rows=await _message_rows(ctx, user, page.items),
        page=page,
        query=query,
        skip=skip,
        page_size=PAGE_SIZE,
        base=base,
        prev_url=page_url(base, query, max(0, skip - PAGE_SIZE)) if skip else None,
        next_url=page_url(base, query, skip + PAGE_SIZE) if page.has_more else None,
        section="mail",
    )


async def _mail_folder(ctx: Context, user: User, key: str) -> Folder:
    if key.lower() in WELL_KNOWN_MAIL:
        folder = await ctx.metadata.get_well_known_folder(user.id, "mail", key.lower())
    else:
        folder = await ctx.metadata.get_folder(user.id, key)
    if folder is None or folder.kind != "mail":
        raise PageError(404, "This folder does not exist (any more).")
    return folder


@view("message")
async def message(request: Request) -> Response:
    ctx = ctx_of(request)
    user = await user_of(request)
    item = await item_of(request, user, "message")
    folder = await ctx.metadata.get_folder(user.id, item.folder_id)
    body_type, content = body_of(item.data)
    base = item_url(user, item)
    return render(
        request,
        "message.html",
        user=user,
        item=item,
        data=item.data,
        folder=folder,
        body_type=body_type,
        content=content,
        body_url=f"{base}/body",
        mime_url=f"{base}/mime",
        attachments=await attachment_rows(ctx, user, item),
        graph=graph_path(user, item),
        embedded=False,
        section="mail",
    )


@view("message.body")
async def message_body(request: Request) -> Response:
    user = await user_of(request)
    item = await item_of(request, user)
    body_type, content = body_of(item.data)
    return sandboxed(content, "text/html; charset=utf-8" if body_type == "html" else "text/plain; charset=utf-8")


@view("message.mime")
async def message_mime(request: Request) -> Response:
    ctx = ctx_of(request)
    user = await user_of(request)
    item = await item_of(request, user, "message")
    data = message_json(item, root_url=ctx.settings.root_url)
    nested: list[dict[str, Any]] = []
    budget = MIME_ATTACHMENT_BUDGET
    for a in await attachment_service.list_for_item(ctx, item):
        entry: dict[str, Any] = {"name": a.name, "contentType": a.content_type, "isInline": a.is_inline}
        if a.kind == "file" and a.blob_key and a.content_length <= budget:
            budget -= a.content_length
            raw = bytearray()
            async for chunk in ctx.blobs.read(a.blob_key, chunk_size=STREAM_CHUNK):
                raw += chunk
            entry.update(
                {"@odata.type": "#microsoft.graph.fileAttachment", "contentBytes": pybase64.b64encode(raw).decode()}
            )
            entry["contentId"] = a.content_id
        elif a.kind == "item":
            entry.update({"@odata.type": "#microsoft.graph.itemAttachment", "item": a.data.get("item") or {}})
        elif a.kind == "reference":
            entry.update({"@odata.type": "#microsoft.graph.referenceAttachment", **(a.data.get("reference") or {})})
        else:
            continue  # over the memory budget: listed on the message page
        nested.append(entry)
    body, _ = render_item("message", {**data, "attachments": nested}, stamp=item.last_modified)
    return sandboxed(body, "text/plain; charset=utf-8")


# ---- attachments ----------------------------------------------------------------------------------------


async def _attachment(request: Request) -> tuple[Context, User, Item, Attachment]:
    ctx = ctx_of(request)
    user = await user_of(request)
    item = await item_of(request, user)
    found = await ctx.metadata.get_attachment(user.id, item.id, request.path_params["attachment"])
    if found is None:
        raise PageError(404, "This attachment does not exist (any more).")
    return ctx, user, item, found


@view("attachment")
async def attachment_page(request: Request) -> Response:
    ctx, user, item, attachment = await _attachment(request)
    base = attachment_url(user, attachment)
    preview = preview_kind(attachment)
    text = None
    truncated = False
    if preview == "text" and attachment.blob_key:
        raw = bytearray()
        async for chunk in ctx.blobs.read(attachment.blob_key, end=TEXT_PREVIEW_BYTES + 1, chunk_size=STREAM_CHUNK):
            raw += chunk
        truncated = len(raw) > TEXT_PREVIEW_BYTES
        text = bytes(raw[:TEXT_PREVIEW_BYTES]).decode("utf-8", errors="replace")
    embedded: dict[str, Any] | None = None
    if attachment.kind == "item":
        embedded = dict(attachment.data.get("item") or {})
    body_type, content = body_of(embedded or {})
    return render(
        request,
        "attachment.html",
        user=user,
        item=item,
        item_url=item_url(user, item),
        a=attachment,
        base=base,
        preview=preview,
        text=text,
        truncated=truncated,
        link=reference_link(attachment),
        reference=attachment.data.get("reference") or {},
        embedded=embedded,
        item_kind=item_kind_of(attachment) if attachment.kind == "item" else None,
        body_type=body_type,
        content=content,
        nested=[n for n in (embedded or {}).get("attachments") or [] if isinstance(n, dict)],
        graph=graph_path(user, item, attachment),
        section="mail" if item.kind == "message" else "calendar",
    )


def content_disposition(kind: str, name: str | None) -> str:
    """``attachment`` or ``inline`` with the name (RFC 6266: an ASCII fallback and ``filename*``)."""
    name = name or "attachment"
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\;' else "_" for c in name)
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


async def _stream(request: Request, kind: str) -> Response:
    ctx, user, item, attachment = await _attachment(request)
    if attachment.kind == "reference":
        raise PageError(405, "A reference attachment has no bytes: it points to a file stored in the cloud.")
    raw = await attachment_service.read_value(ctx, attachment)
    content_type = raw.content_type
    csp = security.SANDBOX_CSP
    if kind == "inline":
        preview = preview_kind(attachment)
        if preview == "pdf":
            content_type, csp = "application/pdf", security.PDF_CSP
        elif preview == "text" or attachment.kind == "item":
            content_type = "text/plain; charset=utf-8"
        elif preview != "image":
            content_type = "application/octet-stream"
    headers = {
        "content-type": content_type,
        "content-length": str(raw.length),
        "content-disposition": content_disposition(kind, attachment.name),
        "content-security-policy": csp,
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
    }
    return ChunkStream(raw.chunks, headers=headers)


@view("attachment.download")
async def attachment_download(request: Request) -> Response:
    return await _stream(request, "attachment")


@view("attachment.content")
async def attachment_content(request: Request) -> Response:
    return await _stream(request, "inline")


@view("attachment.body")
async def attachment_body(request: Request) -> Response:
    _, _, _, attachment = await _attachment(request)
    body_type, content = body_of(dict(attachment.data.get("item") or {}))
    return sandboxed(content, "text/html; charset=utf-8" if body_type == "html" else "text/plain; charset=utf-8")
