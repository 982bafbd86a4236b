"""Graph routes: events, calendars and calendar groups."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from starlette.responses import Response

from graphattach.api.call import GraphCall, Routes
from graphattach.api.mailbox import (
    apply_query,
    collection_page,
    count_response,
    delta_state,
    entity_context,
    expansions,
    mailbox,
    page_bounds,
    preferred_time_zone,
    refuse_unsupported_options,
    wants_query,
)
from graphattach.api.responses import empty, graph_json
from graphattach.auth.permissions import CALENDARS_READ, CALENDARS_WRITE
from graphattach.domain.models import Folder, Item, User
from graphattach.protocol import delta as delta_proto
from graphattach.protocol import events as proto
from graphattach.protocol import folders as folder_proto
from graphattach.protocol.endpoints import Endpoint
from graphattach.protocol.errors import BadRequest, InvalidUrlQuery, ItemNotFound
from graphattach.protocol.shape import project
from graphattach.services import calendar
from graphattach.services import delta as delta_service
from graphattach.services.access import resolve_containers, resolve_item
from graphattach.services.mail import Page, owner_recipient

# ---- events -----------------------------------------------------------------------------------------


async def _event_entity(call: GraphCall, user: User, item: Item, zone: str | None) -> dict[str, Any]:
    entity = proto.event_json(item, owner=owner_recipient(user), root_url=call.ctx.settings.root_url, zone_name=zone)
    entity = project(entity, call.query.select, known=set(proto.PROPERTIES))
    entity.update(await expansions(call, item, proto.PROPERTIES, "microsoft.graph.event"))
    return entity


async def _event_response(call: GraphCall, user: User, item: Item, zone: str | None, status: int = 200) -> Response:
    body = {"@odata.context": entity_context(call, user), **await _event_entity(call, user, item, zone)}
    return graph_json(body, status=status, headers={"ETag": f'W/"{item.change_key}"'})


async def create_event(call: GraphCall) -> Response:
    user = await mailbox(call, CALENDARS_WRITE)
    container = await resolve_containers(call.ctx, user, call.path.containers)
    zone = preferred_time_zone(call)  # a bad Prefer header fails before anything is stored
    data, attachments = proto.parse_create(await call.json(), strict=call.strict)
    item = await calendar.create_event(call.ctx, user, container, data, attachments, version=call.path.version)
    return await _event_response(call, user, item, zone, status=201)


async def list_events(call: GraphCall) -> Response:
    user = await mailbox(call, CALENDARS_READ)
    container = await resolve_containers(call.ctx, user, call.path.containers)
    zone = preferred_time_zone(call)
    refuse_unsupported_options(call)
    skip, top = page_bounds(call)
    if wants_query(call):
        everything = await calendar.list_events(call.ctx, user, container, skip=0, top=None)
        owner, root = owner_recipient(user), call.ctx.settings.root_url
        chosen = apply_query(
            call,
            everything.items,
            lambda item: proto.event_json(item, owner=owner, root_url=root),
            proto.PROPERTIES,
            "microsoft.graph.event",
        )
        page = Page(chosen[skip : skip + top], len(chosen))
    else:
        page = await calendar.list_events(call.ctx, user, container, skip=skip, top=top)
    values = [await _event_entity(call, user, item, zone) for item in page.items]
    return graph_json(collection_page(call, user, values, total=page.total, skip=skip, top=top))


async def calendar_view_delta(call: GraphCall) -> Response:
    """``GET /me/calendarView/delta?startDateTime=...&endDateTime=...`` (event-delta.md): the
    primary calendar's events in the window, page by page, then what changed. No ``$select``,
    ``$filter``, ``$orderby``, ``$expand`` or ``$search``; the window and page size live in the
    tokens."""
    user = await mailbox(call, CALENDARS_READ)
    zone = preferred_time_zone(call)
    q = call.query
    for name, present in (
        ("$select", q.select is not None),
        ("$filter", q.filter is not None),
        ("$orderby", q.orderby is not None),
        ("$expand", q.expand is not None),
        ("$search", q.search is not None),
        ("$skip", q.skip is not None),
    ):
        if present:
            raise InvalidUrlQuery(f"The query parameter '{name}' is not supported with calendarView delta.")
    default = await call.ctx.metadata.get_well_known_folder(user.id, "calendar", "calendar")
    if default is None:  # pragma: no cover - every mailbox is provisioned with one
        raise BadRequest("The mailbox has no default calendar.")
    key = await delta_service.token_key(call.ctx)
    preferred = delta_proto.page_size(call.request.headers.get("prefer"))
    # an empty $deltatoken (a synchronization reset's Location) starts a new round
    token = q.skiptoken or q.deltatoken or None
    if token is not None:
        state = await delta_state(call, token, key, user_id=user.id, folder_id=default.id)
    else:
        start, end = delta_proto.parse_window(q.extra.get("startDateTime"), q.extra.get("endDateTime"))
        state = delta_proto.DeltaState(
            user_id=user.id,
            folder_id=default.id,
            after=0,
            upto=0,
            initial=True,
            generation=await delta_service.sync_generation(call.ctx),
            select=None,
            page_size=min(q.top, delta_proto.MAX_PAGE_SIZE) if q.top else delta_proto.DEFAULT_PAGE_SIZE,
            received_filter=None,
            window=(start.isoformat(), end.isoformat()),
        )
    if preferred is not None:
        state = dataclasses.replace(state, page_size=preferred)
    assert state.window is not None
    low, high = (datetime.fromisoformat(v) for v in state.window)

    def in_window(item: Item) -> bool:
        starts, ends = proto.event_interval(item.data)
        return starts < high and ends > low

    page = await delta_service.event_delta(call.ctx, user, default, state, in_window)
    values: list[dict[str, Any]] = []
    for item in page.items:
        entity = proto.event_json(
            item, owner=owner_recipient(user), root_url=call.ctx.settings.root_url, zone_name=zone
        )
        values.append({"@odata.type": "#microsoft.graph.event", **entity})
    values += [delta_proto.removed_entry(item_id, "event") for item_id in page.removed]
    link = delta_proto.encode_token(page.next_state, key)
    body: dict[str, Any] = {"@odata.context": f"{call.service_root}/$metadata#Collection(event)"}
    name = "deltaLink" if page.final else "nextLink"
    param = "$deltatoken" if page.final else "$skiptoken"
    body[f"@odata.{name}"] = f"{call.url_without_query()}?{param}={link}"
    body["value"] = values
    headers = {"Preference-Applied": f"odata.maxpagesize={preferred}"} if preferred is not None else None
    return graph_json(body, headers=headers)


async def count_events(call: GraphCall) -> Response:
    user = await mailbox(call, CALENDARS_READ)
    container = await resolve_containers(call.ctx, user, call.path.containers)
    page = await calendar.list_events(call.ctx, user, container, skip=0, top=0)
    return count_response(page.total)


async def get_event(call: GraphCall) -> Response:
    user = await mailbox(call, CALENDARS_READ)
    item = await resolve_item(call.ctx, user, call.path)
    return await _event_response(call, user, item, preferred_time_zone(call))


async def update_event(call: GraphCall) -> Response:
    user = await mailbox(call, CALENDARS_WRITE)
    item = await resolve_item(call.ctx, user, call.path)
    zone = preferred_time_zone(call)
    changes = proto.parse_update(await call.json(), strict=call.strict, current=item.data)
    item = await calendar.update_event(call.ctx, user, item, changes)
    return await _event_response(call, user, item, zone)


async def delete_event(call: GraphCall) -> Response:
    user = await mailbox(call, CALENDARS_WRITE)
    item = await resolve_item(call.ctx, user, call.path)
    await calendar.delete_event(call.ctx, user, item)
    return empty(204)


# ---- calendars ----------------------------------------------------------------------------------------


def _calendar_entity(call: GraphCall, user: User, folder: Folder) -> dict[str, Any]:
    owner = owner_recipient(user)["emailAddress"]
    entity = folder_proto.calendar_json(folder, owner=owner, change_key=calendar.folder_change_key(folder))
    return project(entity, call.query.select, known=set(folder_proto.CALENDAR_PROPERTIES))


async def _group_of_path(call: GraphCall, user: User) -> Folder | None:
    group = await resolve_containers(call.ctx, user, call.path.containers)
    if group is not None and group.kind != "calendarGroup":  # pragma: no cover - grammar
        raise ItemNotFound()
    return group


async def _addressed_calendar(call: GraphCall, user: User) -> Folder:
    folder = await resolve_containers(call.ctx, user, call.path.containers)
    if folder is None or folder.kind != "calendar":  # pragma: no cover - grammar
        raise ItemNotFound()
    return folder


async def list_calendars(call: GraphCall) -> Response:
    """``/calendars`` (every calendar) and ``/calendarGroups/{id}/calendars``."""
    user = await mailbox(call, CALENDARS_READ)
    group = await _group_of_path(call, user)
    refuse_unsupported_options(call)
    skip, top = page_bounds(call)
    found = await calendar.list_calendars(call.ctx, user, group)
    found = apply_query(
        call,
        found,
        lambda f: folder_proto.calendar_json(
            f, owner=owner_recipient(user)["emailAddress"], change_key=calendar.folder_change_key(f)
        ),
        folder_proto.CALENDAR_PROPERTIES,
        "microsoft.graph.calendar",
    )
    values = [_calendar_entity(call, user, f) for f in found[skip : skip + top]]
    return graph_json(collection_page(call, user, values, total=len(found), skip=skip, top=top))


async def count_calendars(call: GraphCall) -> Response:
    user = await mailbox(call, CALENDARS_READ)
    group = await _group_of_path(call, user)
    return count_response(len(await calendar.list_calendars(call.ctx, user, group)))


async def create_calendar(call: GraphCall) -> Response:
    user = await mailbox(call, CALENDARS_WRITE)
    group = await _group_of_path(call, user)
    data = folder_proto.parse_calendar(await call.json(), strict=call.strict, create=True)
    folder = await calendar.create_calendar(call.ctx, user, group, data)
    body = {"@odata.context": entity_context(call, user), **_calendar_entity(call, user, folder)}
    return graph_json(body, status=201)


async def get_calendar(call: GraphCall) -> Response:
    user = await mailbox(call, CALENDARS_READ)
    folder = await _addressed_calendar(call, user)
    body = {"@odata.context": entity_context(call, user), **_calendar_entity(call, user, folder)}
    return graph_json(body)


async def update_calendar(call: GraphCall) -> Response:
    user = await mailbox(call, CALENDARS_WRITE)
    folder = await _addressed_calendar(call, user)
    data = folder_proto.parse_calendar(await call.json(), strict=call.strict, create=False)
    folder = await calendar.update_calendar(call.ctx, user, folder, data)
    body = {"@odata.context": entity_context(call, user), **_calendar_entity(call, user, folder)}
    return graph_json(body)


async def delete_calendar(call: GraphCall) -> Response:
    user = await mailbox(call, CALENDARS_WRITE)
    folder = await _addressed_calendar(call, user)
    await calendar.delete_calendar(call.ctx, user, folder)
    return empty(204)


# ---- calendar groups ------------------------------------------------------------------------------------


def _group_entity(call: GraphCall, folder: Folder) -> dict[str, Any]:
    entity = folder_proto.calendar_group_json(folder, change_key=calendar.folder_change_key(folder))
    return project(entity, call.query.select, known=set(folder_proto.GROUP_PROPERTIES))


async def list_groups(call: GraphCall) -> Response:
    user = await mailbox(call, CALENDARS_READ)
    refuse_unsupported_options(call)
    skip, top = page_bounds(call)
    found = await calendar.list_groups(call.ctx, user)
    found = apply_query(
        call,
        found,
        lambda f: folder_proto.calendar_group_json(f, change_key=calendar.folder_change_key(f)),
        folder_proto.GROUP_PROPERTIES,
        "microsoft.graph.calendarGroup",
    )
    values = [_group_entity(call, f) for f in found[skip : skip + top]]
    return graph_json(collection_page(call, user, values, total=len(found), skip=skip, top=top))


async def count_groups(call: GraphCall) -> Response:
    user = await mailbox(call, CALENDARS_READ)
    return count_response(len(await calendar.list_groups(call.ctx, user)))


async def create_group(call: GraphCall) -> Response:
    user = await mailbox(call, CALENDARS_WRITE)
    name = folder_proto.parse_calendar_group(await call.json(), strict=call.strict, create=True)
    assert name is not None
    group = await calendar.create_group(call.ctx, user, name)
    body = {"@odata.context": entity_context(call, user), **_group_entity(call, group)}
    return graph_json(body, status=201)


async def get_group(call: GraphCall) -> Response:
    user = await mailbox(call, CALENDARS_READ)
    group = await _group_of_path(call, user)
    assert group is not None
    body = {"@odata.context": entity_context(call, user), **_group_entity(call, group)}
    return graph_json(body)


ROUTES: Routes = {
    (Endpoint.EVENTS, "GET"): list_events,
    (Endpoint.EVENTS, "POST"): create_event,
    (Endpoint.EVENTS_COUNT, "GET"): count_events,
    (Endpoint.CALENDAR_VIEW_DELTA, "GET"): calendar_view_delta,
    (Endpoint.EVENT, "GET"): get_event,
    (Endpoint.EVENT, "PATCH"): update_event,
    (Endpoint.EVENT, "DELETE"): delete_event,
    (Endpoint.CALENDARS, "GET"): list_calendars,
    (Endpoint.CALENDARS, "POST"): create_calendar,
    (Endpoint.CALENDARS_COUNT, "GET"): count_calendars,
    (Endpoint.CALENDAR, "GET"): get_calendar,
    (Endpoint.CALENDAR, "PATCH"): update_calendar,
    (Endpoint.CALENDAR, "DELETE"): delete_calendar,
    (Endpoint.CALENDAR_GROUPS, "GET"): list_groups,
    (Endpoint.CALENDAR_GROUPS, "POST"): create_group,
    (Endpoint.CALENDAR_GROUPS_COUNT, "GET"): count_groups,
    (Endpoint.CALENDAR_GROUP, "GET"): get_group,
}
