"""What every page of the web UI shares: templates and their filters, the ``view`` decorator
(operation name, login, error pages), forms with CSRF checks, links and sandboxed responses.

The pages themselves read through the services layer and render a template; their URLs (each
view can be opened directly and shared):

- ``/`` tenant: users, mailbox sizes, add a user, mint a token;
- ``/mail/{user}`` and ``/mail/{user}/folders/{folder}?q=&skip=`` a mailbox: folder tree, messages;
- ``/mail/{user}/messages/{id}`` a message (``/body`` its sandboxed HTML, ``/mime`` its MIME);
- ``/calendar/{user}`` and ``/calendar/{user}/calendars/{id}`` events; ``/calendar/{user}/events/{id}``;
- ``/attachments/{user}/{item}/{id}`` an attachment (``/download``, ``/content``, ``/body``, ``/mime``);
- ``/uploads`` upload sessions, updated live from ``/uploads/live`` (server-sent events);
- ``/requests`` the request journal, when the build keeps one;
- ``/controls`` reset and clock; ``/login`` when the server has an admin key.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from graphattach import __version__
from graphattach.domain.errors import GraphError
from graphattach.domain.models import Attachment, Item, User
from graphattach.protocol.attachments import item_kind_of
from graphattach.protocol.jsonio import parse_datetime
from graphattach.protocol.operations import OPERATION_KEY, WEB_OPERATION_PREFIX
from graphattach.services import attachments as attachment_service
from graphattach.services import users as user_service
from graphattach.services.context import Context
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
            return str(value)
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
        response.set_cookie(
            security.CSRF_COOKIE,
            token,
            httponly=True,
            samesite="strict",
            path="/",
            secure=request.url.scheme == "https",
        )
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


def page_url(base: str, query: str, skip: int) -> str:
    params = {k: v for k, v in (("q", query), ("skip", str(skip) if skip else "")) if v}
    return base + (f"?{urlencode(params)}" if params else "")


async def attachment_rows(ctx: Context, user: User, item: Item) -> list[dict[str, Any]]:
    return [
        {
            "a": a,
            "url": attachment_url(user, a),
            "link": reference_link(a) if a.kind == "reference" else None,
            "item_kind": item_kind_of(a) if a.kind == "item" else None,
        }
        for a in await attachment_service.list_for_item(ctx, item)
    ]
