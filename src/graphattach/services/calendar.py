"""Events, calendars and calendar groups.

Fidelity notes (docs/fidelity.md): ``/events`` is the default calendar; the organizer defaults
to the mailbox owner; attendees who are users of this tenant get their own copy of the event in
their default calendar, kept in step by ``propagate_to_attendees``.
"""

from __future__ import annotations

import secrets
from typing import Any

from graphattach.domain import ids
from graphattach.domain.errors import ItemNotFound
from graphattach.domain.models import Folder, Item, User
from graphattach.protocol.events import NO_TIME, ical_uid
from graphattach.services import items
from graphattach.services.context import Context


async def default_calendar(ctx: Context, user: User) -> Folder:
    calendar = await ctx.metadata.get_well_known_folder(user.id, "calendar", "calendar")
    if calendar is None:  # pragma: no cover - every mailbox is provisioned with one
        raise ItemNotFound()
    return calendar


async def create_event(
    ctx: Context,
    user: User,
    calendar: Folder | None,
    data: dict[str, Any],
    attachments: list[dict[str, Any]] | None = None,
) -> Item:
    """A new event in ``calendar`` (the default calendar when None), organised by the owner."""
    target = calendar or await default_calendar(ctx, user)
    now = ctx.clock.now()
    stored: dict[str, Any] = {
        "originalStartTimeZone": data["start"]["timeZone"],
        "originalEndTimeZone": data["end"]["timeZone"],
        "iCalUId": ical_uid(secrets.token_hex(28).upper()),
        "isOrganizer": True,
        "responseStatus": {"response": "organizer", "time": NO_TIME},
        **data,
    }
    item = Item(
        id=ids.new_id("event"),
        user_id=user.id,
        kind="event",
        folder_id=target.id,
        created=now,
        last_modified=now,
        change_key=items.new_change_key(),
        data=stored,
    )
    await ctx.metadata.add_item(item)
    if attachments:
        from graphattach.services.mail import add_attachments

        await add_attachments(ctx, user, item, attachments)
    return await reload(ctx, item)


async def reload(ctx: Context, item: Item) -> Item:
    fresh = await ctx.metadata.get_item(item.user_id, item.id)
    if fresh is None:
        raise ItemNotFound()
    return fresh
