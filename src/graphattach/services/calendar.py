"""Events, calendars and calendar groups.

Fidelity notes (docs/fidelity.md):
- ``/events`` is the default calendar (create and list);
- the organizer defaults to the mailbox owner;
- attendees who are users of this tenant get their own copy of the event in their default
  calendar (``isOrganizer`` false, ``responseStatus`` notResponded), with the organizer's
  ``iCalUId``; ``propagate_to_attendees`` keeps the copies in step on every create and update by
  the organizer, mirroring the organizer's attachments onto them;
- deleting the organizer's event cancels the copies (``isCancelled``, subject "Canceled: ...").
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from graphattach.domain import ids
from graphattach.domain.errors import GraphError
from graphattach.domain.models import Folder, Item, User, replace
from graphattach.protocol.errors import DeleteDistinguishedFolder, FolderExists, ItemNotFound
from graphattach.protocol.events import NO_TIME, ical_uid
from graphattach.services import items, notifications
from graphattach.services.context import Context
from graphattach.services.mail import (
    Page,
    copy_attachments,
    delete_item,
    insert_item,
    owner_recipient,
    reload,
    tenant_users_by_address,
)
from graphattach.storage.errors import RecordNotFound

#: Where the link from an attendee's copy to the organizer's event is kept in ``Item.data``.
SOURCE = "_organizerEvent"

# ---- events -----------------------------------------------------------------------------------------


async def default_calendar(ctx: Context, user: User) -> Folder:
    calendar = await ctx.metadata.get_well_known_folder(user.id, "calendar", "calendar")
    if calendar is None:  # pragma: no cover - every mailbox is provisioned with one
        raise ItemNotFound()
    return calendar


async def event_calendar(ctx: Context, user: User, container: Folder | None) -> Folder:
    """The calendar a path names: the default one for ``/events`` and ``/calendar``."""
    if container is None:
        return await default_calendar(ctx, user)
    if container.kind != "calendar":
        raise ItemNotFound()
    return container


async def create_event(
    ctx: Context,
    user: User,
    calendar: Folder | None,
    data: dict[str, Any],
    attachments: list[dict[str, Any]] | None = None,
    *,
    version: str = "v1.0",
) -> Item:
    """A new event in ``calendar`` (the default calendar when None), organised by the owner;
    tenant attendees get their copies. Nothing is kept if an attachment is refused."""
    target = await event_calendar(ctx, user, calendar)
    now = ctx.clock.now()
    stored: dict[str, Any] = {
        "originalStartTimeZone": data["start"]["timeZone"],
        "originalEndTimeZone": data["end"]["timeZone"],
        "iCalUId": ical_uid(ids.token_hex(28).upper()),
        "isOrganizer": True,
        "responseStatus": {"response": "organizer", "time": NO_TIME},
        **data,
    }
    item = await insert_item(ctx, user, "event", target, stored, now, attachments, version=version)
    await propagate_to_attendees(ctx, user, item)
    return item


async def list_events(ctx: Context, user: User, calendar: Folder | None, *, skip: int, top: int | None) -> Page:
    target = await event_calendar(ctx, user, calendar)
    found, total = await ctx.metadata.list_items(user.id, "event", [target.id], skip=skip, top=top)
    return Page(found, total)


async def update_event(ctx: Context, user: User, event: Item, changes: dict[str, Any]) -> Item:
    """Apply validated PATCH properties; an organizer's update reaches every attendee's copy
    (even an empty PATCH: O365 saves an event after uploading attachments to send them)."""
    before = _attendee_addresses(event)
    if changes:
        updated = replace(event, data=items.apply_changes(event.data, changes))
        items.touch(updated, ctx.clock.now())
        try:
            await ctx.metadata.update_item(updated, outbox=notifications.outbox(ctx, notifications.updated(updated)))
        except RecordNotFound:
            raise ItemNotFound() from None
    event = await reload(ctx, event)
    removed = before - _attendee_addresses(event)
    await propagate_to_attendees(ctx, user, event, removed=removed)
    return event


async def delete_event(ctx: Context, user: User, event: Item) -> None:
    """Delete an event; when the owner organised it, the attendees' copies are cancelled."""
    if event.data.get("isOrganizer", True):
        await cancel_copies(ctx, event, _attendee_addresses(event))
    await delete_item(ctx, event)


def _attendee_addresses(event: Item) -> set[str]:
    return {a["emailAddress"]["address"].lower() for a in event.data.get("attendees") or []}


async def _find_copy(ctx: Context, attendee: User, event: Item) -> Item | None:
    found, _ = await ctx.metadata.list_items(attendee.id, "event", None)
    for item in found:
        link = item.data.get(SOURCE)
        if isinstance(link, dict) and link.get("itemId") == event.id and link.get("userId") == event.user_id:
            return item
    return None


def _copy_data(organizer: User, event: Item, previous: dict[str, Any] | None) -> dict[str, Any]:
    data = {k: v for k, v in event.data.items() if not k.startswith("_")}
    data.update(
        {
            "isOrganizer": False,
            "organizer": event.data.get("organizer") or owner_recipient(organizer),
            "responseStatus": (previous or {}).get("responseStatus") or {"response": "notResponded", "time": NO_TIME},
            "showAs": "tentative",
            "isCancelled": False,
            SOURCE: {"userId": event.user_id, "itemId": event.id},
        }
    )
    if previous is not None and "categories" in previous:
        data["categories"] = previous["categories"]  # the attendee's own
    return data


async def propagate_to_attendees(
    ctx: Context, organizer: User, event: Item, *, removed: set[str] | None = None
) -> None:
    """Create or update each tenant attendee's copy of the organizer's ``event``.

    Each copy lives in the attendee's default calendar, is linked to ``event`` through
    ``data[SOURCE]`` (so a later update finds the same copy), and gets the organizer's
    attachments: the copy's own are replaced so that they mirror the organizer's. Attendees in
    ``removed`` (addresses dropped by this update) have their copies cancelled."""
    if not event.data.get("isOrganizer", True):
        return  # an attendee's copy: changes stay in that mailbox
    now = ctx.clock.now()
    for attendee in await tenant_users_by_address(ctx, _attendee_addresses(event)):
        if attendee.id == organizer.id:
            continue
        copy = await _find_copy(ctx, attendee, event)
        if copy is None:
            calendar = await default_calendar(ctx, attendee)
            copy = Item(
                id=ids.new_id("event"),
                user_id=attendee.id,
                kind="event",
                folder_id=calendar.id,
                created=now,
                last_modified=now,
                change_key=items.new_change_key(),
                data=_copy_data(organizer, event, None),
            )
            await ctx.metadata.add_item(copy, outbox=notifications.outbox(ctx, notifications.created(copy)))
        else:
            copy = replace(copy, data=_copy_data(organizer, event, copy.data))
            items.touch(copy, now)
            await ctx.metadata.update_item(copy, outbox=notifications.outbox(ctx, notifications.updated(copy)))
        await mirror_attachments(ctx, event, copy)
    if removed:
        await cancel_copies(ctx, event, removed)


async def mirror_attachments(ctx: Context, source: Item, copy: Item) -> None:
    """Make ``copy``'s attachments those of ``source``: drop its own, copy the source's."""
    freed: list[str] = []
    for attachment in await ctx.metadata.list_attachments(copy.user_id, copy.id):
        keys = await ctx.metadata.delete_attachment(copy.user_id, copy.id, attachment.id)
        freed.extend(keys or [])
    await ctx.free_blobs(freed)
    await copy_attachments(ctx, source, copy)


async def cancel_copies(ctx: Context, event: Item, addresses: set[str]) -> None:
    now = ctx.clock.now()
    for attendee in await tenant_users_by_address(ctx, addresses):
        copy = await _find_copy(ctx, attendee, event)
        if copy is None or copy.data.get("isCancelled"):
            continue
        subject = copy.data.get("subject") or ""
        cancelled = replace(copy, data={**copy.data, "isCancelled": True, "subject": f"Canceled: {subject}".rstrip()})
        items.touch(cancelled, now)
        await ctx.metadata.update_item(cancelled, outbox=notifications.outbox(ctx, notifications.updated(cancelled)))


# ---- calendars and calendar groups --------------------------------------------------------------------


def folder_change_key(folder: Folder) -> str:
    """Calendars carry a change key too; provisioned ones get a stable one derived from the id."""
    stored = folder.data.get("changeKey")
    if isinstance(stored, str):
        return stored
    return base64.b64encode(hashlib.sha256(folder.id.encode()).digest()[:18]).decode("ascii")


async def default_group(ctx: Context, user: User) -> Folder:
    group = await ctx.metadata.get_well_known_folder(user.id, "calendarGroup", "mycalendars")
    if group is None:  # pragma: no cover - every mailbox is provisioned with one
        raise ItemNotFound()
    return group


async def list_calendars(ctx: Context, user: User, group: Folder | None) -> list[Folder]:
    if group is None:
        return await ctx.metadata.list_folders(user.id, "calendar", None, any_parent=True)
    return await ctx.metadata.list_folders(user.id, "calendar", group.id)


def _exists() -> GraphError:
    return FolderExists()


async def create_calendar(ctx: Context, user: User, group: Folder | None, data: dict[str, Any]) -> Folder:
    group = group or await default_group(ctx, user)
    if group.kind != "calendarGroup":
        raise ItemNotFound()
    name = data["name"]
    for other in await ctx.metadata.list_folders(user.id, "calendar", None, any_parent=True):
        if other.display_name.casefold() == name.casefold():
            raise _exists()
    extra = {k: v for k, v in data.items() if k != "name"}
    calendar = Folder(
        id=ids.new_id("calendar"),
        user_id=user.id,
        kind="calendar",
        display_name=name,
        parent_id=group.id,
        created=ctx.clock.now(),
        data={**extra, "isDefaultCalendar": False, "changeKey": items.new_change_key()},
    )
    await ctx.metadata.add_folder(calendar)
    return calendar


async def update_calendar(ctx: Context, user: User, calendar: Folder, data: dict[str, Any]) -> Folder:
    name = data.get("name", calendar.display_name)
    if name.casefold() != calendar.display_name.casefold():
        for other in await ctx.metadata.list_folders(user.id, "calendar", None, any_parent=True):
            if other.id != calendar.id and other.display_name.casefold() == name.casefold():
                raise _exists()
    extra = {k: v for k, v in data.items() if k != "name"}
    updated = replace(calendar, display_name=name, data={**calendar.data, **extra, "changeKey": items.new_change_key()})
    try:
        await ctx.metadata.update_folder(updated)
    except RecordNotFound:
        raise ItemNotFound() from None
    return updated


async def delete_calendar(ctx: Context, user: User, calendar: Folder) -> None:
    """Delete a secondary calendar and its events; the default calendar cannot be deleted."""
    if calendar.data.get("isDefaultCalendar"):
        raise DeleteDistinguishedFolder("The default calendar cannot be deleted.")
    found, _ = await ctx.metadata.list_items(user.id, "event", [calendar.id])
    for event in found:
        if event.data.get("isOrganizer", True):
            await cancel_copies(ctx, event, _attendee_addresses(event))
    gone = notifications.outbox(ctx, *(notifications.deleted(event) for event in found))
    keys = await ctx.metadata.delete_folder(user.id, calendar.id, outbox=gone)
    await ctx.free_blobs(keys)


async def list_groups(ctx: Context, user: User) -> list[Folder]:
    return await ctx.metadata.list_folders(user.id, "calendarGroup", None)


async def create_group(ctx: Context, user: User, name: str) -> Folder:
    for other in await list_groups(ctx, user):
        if other.display_name.casefold() == name.casefold():
            raise _exists()
    group = Folder(
        id=ids.new_id("calendarGroup"),
        user_id=user.id,
        kind="calendarGroup",
        display_name=name,
        created=ctx.clock.now(),
        data={"changeKey": items.new_change_key(), "classId": ids.new_guid()},
    )
    await ctx.metadata.add_folder(group)
    return group
