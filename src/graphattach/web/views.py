"""The pages of the web UI. Each handler reads through the services layer and renders a template.

URLs (each view can be opened directly and shared):

- ``/`` tenant: users, mailbox sizes, add a user, mint a token;
- ``/mail/{user}`` and ``/mail/{user}/folders/{folder}?q=&skip=`` a mailbox: folder tree, messages;
- ``/mail/{user}/messages/{id}`` a message (``/body`` its sandboxed HTML, ``/mime`` its MIME);
- ``/calendar/{user}`` and ``/calendar/{user}/calendars/{id}`` events; ``/calendar/{user}/events/{id}``;
- ``/attachments/{user}/{item}/{id}`` an attachment (``/download``, ``/content``, ``/body``, ``/mime``);
- ``/uploads`` upload sessions, updated live from ``/uploads/live`` (server-sent events);
- ``/controls`` reset and clock; ``/login`` when the server has an admin key.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

import orjson
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from graphattach import __version__
from graphattach.api.responses import ChunkStream
from graphattach.auth.permissions import DEFAULT_APP_ROLES, DEFAULT_DELEGATED_SCOPES
from graphattach.auth.tokens import CLI_APP_ID
from graphattach.domain.errors import GraphError
from graphattach.domain.models import Attachment, Folder, Item, User
from graphattach.protocol.attachments import STREAM_CHUNK, item_kind_of
from graphattach.protocol.item_mime import render_item
from graphattach.protocol.jsonio import graph_datetime, parse_datetime
from graphattach.protocol.messages import message_json
from graphattach.protocol.operations import OPERATION_KEY, WEB_OPERATION_PREFIX
from graphattach.services import attachments as attachment_service
from graphattach.services import browse
from graphattach.services import users as user_service
from graphattach.services.context import Context
from graphattach.storage.interfaces import items_usage
from graphattach.web import security

PAGE_SIZE = 50
#: Text attachments are previewed from their first bytes only.
TEXT_PREVIEW_BYTES = 64 * 1024
#: The MIME of a message includes file attachments up to this many bytes in all (memory bound).
MIME_ATTACHMENT_BUDGET = 32 * 1024 * 1024
#: Content types the browser may show inline (anything else is served as octet-stream).
INLINE_IMAGES = {"image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp", "image/x-icon"}
TEXT_TYPES = {"application/json", "application/xml", "text/csv", "application/x-yaml", "application/javascript"}

ALL_SCOPES = (
    "Mail.Read",
    "Mail.ReadWrite",
    "Mail.Send",
    "Calendars.Read",
    "Calendars.ReadWrite",
    "User.Read",
    "offline_access",
)
ALL_ROLES = ("Mail.Read", "Mail.ReadWrite", "Mail.Send", "Calendars.Read", "Calendars.ReadWrite", "User.Read.All")


# ---- formatting -------------------------------------------------------------------------------------


def human_size(value: int | None) -> str:
    if value is None:
        return ""
    size = float(value)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{value} B"  # pragma: no cover


def when(value: Any) -> str:
    """``2026-12-02 07:49 UTC`` from a datetime or a Graph timestamp."""
    if isinstance(value, str):
        try:
            value = parse_datetime(value)
        except Exception:
            return value
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")
    return ""


def address(recipient: Any) -> str:
    """``Name <address>`` of a Graph recipient."""
    if not isinstance(recipient, dict) or not isinstance(recipient.get("emailAddress"), dict):
        return ""
    email = recipient["emailAddress"]
    name, addr = email.get("name") or "", email.get("address") or ""
    if name and addr and name != addr:
        return f"{name} <{addr}>"
    return str(name or addr)


def short(recipient: Any) -> str:
    """The name of a Graph recipient, else its address."""
    if not isinstance(recipient, dict) or not isinstance(recipient.get("emailAddress"), dict):
        return ""
    return str(recipient["emailAddress"].get("name") or recipient["emailAddress"].get("address") or "")


def addresses(value: Any) -> str:
    items = value if isinstance(value, list) else [value] if value else []
    return ", ".join(a for a in (address(v) for v in items) if a)


def url_part(value: str) -> str:
    return quote(value, safe="@")


ENV = Environment(
    loader=PackageLoader("graphattach.web", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.filters.update(size=human_size, when=when, address=address, addresses=addresses, u=url_part)
ENV.globals.update(version=__version__)


# ---- plumbing -----------------------------------------------------------------------------------------


class PageError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def render(request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    token, new = security.csrf_token(request)
    ctx: Context = request.app.state.ctx
    html = ENV.get_template(template).render(
        request=request,
        csrf=token,
        locked=bool(ctx.settings.admin_key),
        now=ctx.clock.now(),
        path=request.url.path,
        has_journal=getattr(ctx, "journal", None) is not None,
        **context,
    )
    response = HTMLResponse(html, status_code=status, headers=security.PAGE_HEADERS)
    if new:
        response.set_cookie(security.CSRF_COOKIE, token, httponly=True, samesite="strict", path="/")
    return response


Handler = Callable[[Request], Awaitable[Response]]


def view(name: str, *, guarded: bool = True) -> Callable[[Handler], Handler]:
    """Name the operation, require the login when the server has an admin key, turn errors into pages."""

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def run(request: Request) -> Response:
            request.scope["state"][OPERATION_KEY] = WEB_OPERATION_PREFIX + name
            ctx: Context = request.app.state.ctx
            if guarded and not security.is_open(ctx, request):
                if request.method == "GET" and "text/html" in request.headers.get("accept", "text/html"):
                    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                    return RedirectResponse(f"/login?{urlencode({'next': target})}", status_code=303)
                return Response("The web UI needs the admin key.", status_code=401, media_type="text/plain")
            try:
                return await handler(request)
            except PageError as exc:
                return render(request, "error.html", status=exc.status, message=exc.message)
            except GraphError as exc:
                return render(request, "error.html", status=exc.status, message=str(exc))

        return run

    return wrap


def ctx_of(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


#: Forms of the UI are small (a UPN, a few checkboxes): anything larger is refused.
FORM_LIMIT = 64 * 1024


async def form_of(request: Request) -> dict[str, Any]:
    """The submitted ``application/x-www-form-urlencoded`` form, after the CSRF check."""
    if request.headers.get("content-type", "").split(";", 1)[0].strip() != "application/x-www-form-urlencoded":
        raise PageError(415, "Forms are sent as application/x-www-form-urlencoded.")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > FORM_LIMIT:
            raise PageError(413, "This form is too large.")
    fields: dict[str, Any] = {}
    for key, values in parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True).items():
        fields[key] = values if len(values) > 1 else values[0]
    if not security.csrf_ok(request, str(fields.get(security.CSRF_FIELD) or "")):
        raise PageError(403, "The form expired or came from another site: reload the page and try again.")
    return fields


async def user_of(request: Request) -> User:
    key = request.path_params["user"]
    user = await user_service.find_user(ctx_of(request), key)
    if user is None:
        raise PageError(404, f"There is no user '{key}' in this tenant.")
    return user


async def item_of(request: Request, user: User, kind: str | None = None) -> Item:
    item = await ctx_of(request).metadata.get_item(user.id, request.path_params["item"])
    if item is None or (kind is not None and item.kind != kind):
        raise PageError(404, "This item does not exist (any more).")
    return item


def skip_of(request: Request) -> int:
    try:
        return max(0, int(request.query_params.get("skip", "0")))
    except ValueError:
        return 0


def item_url(user: User, item: Item) -> str:
    section = "mail" if item.kind == "message" else "calendar"
    kind = "messages" if item.kind == "message" else "events"
    return f"/{section}/{url_part(user.user_principal_name)}/{kind}/{item.id}"


def attachment_url(user: User, attachment: Attachment) -> str:
    return f"/attachments/{url_part(user.user_principal_name)}/{attachment.item_id}/{attachment.id}"


def graph_path(user: User, item: Item, attachment: Attachment | None = None) -> str:
    kind = "messages" if item.kind == "message" else "events"
    path = f"/v1.0/users/{user.id}/{kind}/{item.id}"
    return path + (f"/attachments/{attachment.id}" if attachment else "")


def body_of(data: dict[str, Any]) -> tuple[str, str]:
    """``(content type, content)`` of a message or event body."""
    body = data.get("body") if isinstance(data.get("body"), dict) else {}
    kind = str((body or {}).get("contentType") or "text").lower()
    content = (body or {}).get("content")
    return ("html" if kind == "html" else "text"), content if isinstance(content, str) else ""


def sandboxed(content: str | bytes, content_type: str = "text/html; charset=utf-8") -> Response:
    """An untrusted document for an ``<iframe sandbox>``: no script, a unique origin, loads nothing."""
    return Response(
        content,
        media_type=content_type,
        headers={
            "content-security-policy": security.SANDBOX_CSP,
            "x-content-type-options": "nosniff",
            "referrer-policy": "no-referrer",
            "x-frame-options": "SAMEORIGIN",
        },
    )


def reference_link(attachment: Attachment) -> str | None:
    """The reference attachment's URL when it is http(s) (a javascript: URL is never linked)."""
    url = (attachment.data.get("reference") or {}).get("sourceUrl")
    if isinstance(url, str) and url.lower().startswith(("https://", "http://")):
        return url
    return None


def preview_kind(attachment: Attachment) -> str | None:
    """``image``, ``text`` or ``pdf`` when the attachment can be previewed in the page."""
    if attachment.kind != "file":
        return None
    content_type = (attachment.content_type or "").split(";", 1)[0].strip().lower()
    name = (attachment.name or "").lower()
    if content_type in INLINE_IMAGES:
        return "image"
    if content_type == "application/pdf" or name.endswith(".pdf"):
        return "pdf"
    if content_type.startswith("text/") or content_type in TEXT_TYPES or name.endswith((".txt", ".csv", ".log")):
        return "text"
    return None


# ---- tenant ------------------------------------------------------------------------------------------


@view("tenant")
async def tenant(request: Request) -> Response:
    return await _tenant_page(request)


async def _tenant_page(request: Request, *, status: int = 200, **extra: Any) -> Response:
    ctx = ctx_of(request)
    summaries = await browse.user_summaries(ctx)
    return render(
        request,
        "tenant.html",
        status=status,
        summaries=summaries,
        tenant_id=ctx.tenant_id,
        graph_url=ctx.settings.service_root("v1.0"),
        upload_origin=ctx.settings.upload_root,
        token_endpoint=f"{ctx.settings.root_url}/{ctx.tenant_id}/oauth2/v2.0/token",
        profile=ctx.settings.profile,
        scopes=ALL_SCOPES,
        default_scopes=set(DEFAULT_DELEGATED_SCOPES),
        roles=ALL_ROLES,
        default_roles=set(DEFAULT_APP_ROLES),
        **{"token": None, "token_for": None, "token_error": None, "user_error": None, "added": None, **extra},
    )


@view("users.add")
async def add_user(request: Request) -> Response:
    form = await form_of(request)
    upn = str(form.get("upn") or "").strip()
    name = str(form.get("name") or "").strip() or None
    try:
        user = await user_service.create_user(ctx_of(request), upn, name)
    except GraphError as exc:
        return await _tenant_page(request, status=400, user_error=str(exc))
    return await _tenant_page(request, status=201, added=user)


def _chosen(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


@view("token.mint")
async def mint_token(request: Request) -> Response:
    ctx = ctx_of(request)
    form = await form_of(request)
    now = ctx.clock.now().timestamp()
    try:
        lifetime = int(str(form.get("lifetime") or "3600"))
        if lifetime <= 0:
            raise ValueError
    except ValueError:
        return await _tenant_page(request, status=400, token_error="The lifetime must be a positive number of seconds.")
    if form.get("kind") == "app":
        roles = _chosen(form.get("roles"))
        token = ctx.tokens.mint_app(
            roles=roles, app_id="00000000-0000-0000-0000-0000000a99a7", lifetime=lifetime, now=now
        )
        return await _tenant_page(request, token=token, token_for=f"the app, roles: {' '.join(roles) or '(none)'}")
    key = str(form.get("user") or "")
    user = await user_service.find_user(ctx, key)
    if user is None:
        return await _tenant_page(request, status=400, token_error=f"There is no user '{key}'.")
    scopes = _chosen(form.get("scopes"))
    token = ctx.tokens.mint_delegated(
        user_id=user.id,
        upn=user.user_principal_name,
        name=user.display_name,
        scopes=scopes,
        lifetime=lifetime,
        app_id=CLI_APP_ID,
        now=now,
    )
    return await _tenant_page(
        request, token=token, token_for=f"{user.user_principal_name}, scopes: {' '.join(scopes) or '(none)'}"
    )


# ---- mailbox ------------------------------------------------------------------------------------------


async def _message_rows(ctx: Context, user: User, found: list[Item]) -> list[dict[str, Any]]:
    usages = await items_usage(ctx.metadata, user.id, [i.id for i in found])
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
        prev_url=_page_url(base, query, max(0, skip - PAGE_SIZE)) if skip else None,
        next_url=_page_url(base, query, skip + PAGE_SIZE) if page.has_more else None,
        section="mail",
    )


def _page_url(base: str, query: str, skip: int) -> str:
    params = {k: v for k, v in (("q", query), ("skip", str(skip) if skip else "")) if v}
    return base + (f"?{urlencode(params)}" if params else "")


async def _mail_folder(ctx: Context, user: User, key: str) -> Folder:
    from graphattach.services.access import WELL_KNOWN_MAIL

    if key.lower() in WELL_KNOWN_MAIL:
        folder = await ctx.metadata.get_well_known_folder(user.id, "mail", key.lower())
    else:
        folder = await ctx.metadata.get_folder(user.id, key)
    if folder is None or folder.kind != "mail":
        raise PageError(404, "This folder does not exist (any more).")
    return folder


async def _attachment_rows(ctx: Context, user: User, item: Item) -> list[dict[str, Any]]:
    return [
        {
            "a": a,
            "url": attachment_url(user, a),
            "link": reference_link(a) if a.kind == "reference" else None,
            "item_kind": item_kind_of(a) if a.kind == "item" else None,
        }
        for a in await attachment_service.list_for_item(ctx, item)
    ]


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
        attachments=await _attachment_rows(ctx, user, item),
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
            import pybase64

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


def _disposition(kind: str, name: str | None) -> str:
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
        "content-disposition": _disposition(kind, attachment.name),
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


# ---- calendar ------------------------------------------------------------------------------------------


@view("calendar")
async def calendar(request: Request) -> Response:
    from graphattach.services import calendar as calendar_service

    ctx = ctx_of(request)
    user = await user_of(request)
    calendars = await calendar_service.list_calendars(ctx, user, None)
    key = request.path_params.get("calendar")
    if key is None:
        current = await calendar_service.default_calendar(ctx, user)
    else:
        found = [c for c in calendars if c.id == key]
        if not found:
            raise PageError(404, "This calendar does not exist (any more).")
        current = found[0]
    query = request.query_params.get("q", "").strip()[:200]
    skip = skip_of(request)
    page = await browse.items_page(ctx, user, "event", current, skip=skip, top=PAGE_SIZE, query=query)
    base = f"/calendar/{url_part(user.user_principal_name)}/calendars/{current.id}"
    usages = await items_usage(ctx.metadata, user.id, [i.id for i in page.items])
    rows = []
    for event in page.items:
        usage = usages[event.id].count
        rows.append(
            {
                "item": event,
                "url": item_url(user, event),
                "subject": event.data.get("subject") or "",
                "start": _event_time(event.data.get("start")),
                "end": _event_time(event.data.get("end")),
                "organizer": address(event.data.get("organizer")),
                "attendees": len(event.data.get("attendees") or []),
                "attachments": usage,
                "cancelled": bool(event.data.get("isCancelled")),
                "copy": isinstance(event.data.get(browse.SOURCE), dict),
            }
        )
    return render(
        request,
        "calendar.html",
        user=user,
        calendars=calendars,
        current=current,
        rows=rows,
        page=page,
        query=query,
        skip=skip,
        page_size=PAGE_SIZE,
        base=base,
        prev_url=_page_url(base, query, max(0, skip - PAGE_SIZE)) if skip else None,
        next_url=_page_url(base, query, skip + PAGE_SIZE) if page.has_more else None,
        section="calendar",
    )


def _event_time(value: Any) -> str:
    if not isinstance(value, dict):
        return ""
    return f"{str(value.get('dateTime') or '')[:16].replace('T', ' ')} {value.get('timeZone') or ''}".strip()


@view("event")
async def event(request: Request) -> Response:
    ctx = ctx_of(request)
    user = await user_of(request)
    item = await item_of(request, user, "event")
    cal = await ctx.metadata.get_folder(user.id, item.folder_id)
    body_type, content = body_of(item.data)
    organizer = await browse.organizer_event(ctx, item)
    return render(
        request,
        "event.html",
        user=user,
        item=item,
        data=item.data,
        calendar=cal,
        start=_event_time(item.data.get("start")),
        end=_event_time(item.data.get("end")),
        body_type=body_type,
        content=content,
        body_url=f"{item_url(user, item)}/body",
        attendees=[
            {"a": a, "copy_url": item_url(a.user, a.copy) if a.user is not None and a.copy is not None else None}
            for a in await browse.attendees(ctx, item)
        ],
        organizer_url=item_url(organizer[0], organizer[1]) if organizer else None,
        organizer_user=organizer[0] if organizer else None,
        attachments=await _attachment_rows(ctx, user, item),
        graph=graph_path(user, item),
        section="calendar",
    )


# ---- upload sessions -----------------------------------------------------------------------------------


@view("uploads")
async def uploads(request: Request) -> Response:
    from graphattach.web.live import snapshot

    ctx = ctx_of(request)
    rows = await snapshot(ctx, request.app.state.web_watch)
    return render(request, "uploads.html", rows=rows, section="uploads")


@view("uploads.live")
async def uploads_live(request: Request) -> Response:
    from graphattach.web.live import stream

    ctx = ctx_of(request)
    return StreamingResponse(
        stream(ctx, request.app.state.web_watch),
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )


# ---- controls ------------------------------------------------------------------------------------------


@view("controls")
async def controls(request: Request) -> Response:
    ctx = ctx_of(request)
    return render(
        request,
        "controls.html",
        offset=ctx.clock.offset.total_seconds(),
        done=request.query_params.get("done", ""),
        section="controls",
    )


@view("controls.reset")
async def controls_reset(request: Request) -> Response:
    form = await form_of(request)
    if form.get("confirm") != "reset":
        raise PageError(400, "Type 'reset' in the box to confirm.")
    await user_service.reset_tenant(ctx_of(request))
    return RedirectResponse("/controls?done=reset", status_code=303)


@view("controls.clock")
async def controls_clock(request: Request) -> Response:
    form = await form_of(request)
    ctx = ctx_of(request)
    if form.get("action") == "reset":
        ctx.clock.reset()
    else:
        try:
            seconds = float(str(form.get("seconds") or "0"))
            if seconds < 0 or seconds != seconds or seconds > 10 * 365 * 86400:
                raise ValueError
        except ValueError:
            raise PageError(400, "Advance by a non-negative number of seconds.") from None
        ctx.clock.advance(seconds)
    return RedirectResponse("/controls?done=clock", status_code=303)


# ---- login --------------------------------------------------------------------------------------------


@view("login", guarded=False)
async def login(request: Request) -> Response:
    ctx = ctx_of(request)
    target = security.safe_next(request.query_params.get("next"))
    if request.method == "GET":
        if not ctx.settings.admin_key:
            return RedirectResponse(target, status_code=303)
        return render(request, "login.html", target=target, error=None)
    form = await form_of(request)
    target = security.safe_next(str(form.get("next") or "/"))
    key = ctx.settings.admin_key
    if not key:
        return RedirectResponse(target, status_code=303)
    if not hmac.compare_digest(str(form.get("key") or ""), key):
        return render(request, "login.html", status=401, target=target, error="That is not the admin key.")
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        security.ADMIN_COOKIE, security.admin_cookie_value(key), httponly=True, samesite="strict", path="/"
    )
    return response


@view("logout", guarded=False)
async def logout(request: Request) -> Response:
    await form_of(request)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(security.ADMIN_COOKIE, path="/")
    return response


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
