"""Calendars and events, with the attendees' copies linked."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from graphattach.services import browse
from graphattach.services import calendar as calendar_service
from graphattach.services.calendar import SOURCE
from graphattach.web.pages import (
    PAGE_SIZE,
    PageError,
    address,
    attachment_rows,
    body_of,
    ctx_of,
    graph_path,
    item_of,
    item_url,
    page_url,
    render,
    skip_of,
    url_part,
    user_of,
    view,
)

# ---- calendar ------------------------------------------------------------------------------------------


@view("calendar")
async def calendar(request: Request) -> Response:
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
    usages = await ctx.metadata.items_usage(user.id, [i.id for i in page.items])
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
                "copy": isinstance(event.data.get(SOURCE), dict),
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
        prev_url=page_url(base, query, max(0, skip - PAGE_SIZE)) if skip else None,
        next_url=page_url(base, query, skip + PAGE_SIZE) if page.has_more else None,
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
        attachments=await attachment_rows(ctx, user, item),
        graph=graph_path(user, item),
        section="calendar",
    )
