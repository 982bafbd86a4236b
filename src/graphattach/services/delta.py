"""Delta query over the messages of one folder, read from the store's change tracking
(``MetadataStore.change_mark`` / ``item_changes``): a round pages through the changes numbered up
to the mailbox's change mark when it began, so nothing committed meanwhile is lost (it comes in
the next round) and a page costs one indexed range query."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace

from graphattach.domain.models import Folder, Item, User
from graphattach.protocol.delta import DeltaState, passes_filter
from graphattach.protocol.jsonio import graph_datetime
from graphattach.services.context import Context
from graphattach.storage.interfaces import RESET_GENERATION

_KEY_SETTING = "delta_token_key"


async def token_key(ctx: Context) -> bytes:
    """The HMAC key of delta tokens, kept in the store so that tokens outlive a restart and every
    process of a scaled-out server accepts them."""
    value = await ctx.metadata.get_setting(_KEY_SETTING)
    if value is None:
        value = await ctx.metadata.set_setting_if_absent(_KEY_SETTING, secrets.token_hex(32))
    return bytes.fromhex(value)


async def sync_generation(ctx: Context) -> int:
    """The store's reset generation: tokens of an earlier one are stale (their change numbers
    were reset)."""
    return int(await ctx.metadata.get_setting(RESET_GENERATION) or 0)


@dataclass(frozen=True, slots=True)
class DeltaPage:
    items: list[Item]
    #: Ids of messages deleted or moved out of the folder.
    removed: list[str]
    #: The state of the next link: a skipToken when not ``final``, else the deltaToken.
    next_state: DeltaState
    final: bool


async def message_delta(ctx: Context, user: User, folder: Folder, state: DeltaState) -> DeltaPage:
    """One page of a delta round over ``folder``'s messages."""
    upto = state.upto or await ctx.metadata.change_mark(user.id)
    changes = await ctx.metadata.item_changes(user.id, folder.id, after=state.after, upto=upto, limit=state.page_size)
    found: list[Item] = []
    removed: list[str] = []
    for change in changes:
        if change.removed:
            if not state.initial:  # the first round reports what exists now
                removed.append(change.item_id)
            continue
        item = change.item
        # Gone or moved since the round began: its removal is numbered later, in the next round.
        if item is None or item.folder_id != folder.id or item.kind != "message":
            continue
        received = item.data.get("receivedDateTime") or graph_datetime(item.created)  # as message_json shows it
        if passes_filter(received, state.received_filter):
            found.append(item)
    if len(changes) < state.page_size:
        return DeltaPage(found, removed, replace(state, after=upto, upto=0, initial=False), final=True)
    return DeltaPage(found, removed, replace(state, after=changes[-1].seq, upto=upto), final=False)


async def event_delta(
    ctx: Context, user: User, calendar: Folder, state: DeltaState, in_window: Callable[[Item], bool]
) -> DeltaPage:
    """One page of a calendarView delta round over the default calendar. Events outside the
    window are reported as removed, as Graph does ("clients filter", event-delta.md); the first
    round reports only the events in the window."""
    upto = state.upto or await ctx.metadata.change_mark(user.id)
    changes = await ctx.metadata.item_changes(user.id, calendar.id, after=state.after, upto=upto, limit=state.page_size)
    found: list[Item] = []
    removed: list[str] = []
    for change in changes:
        item = change.item
        if change.removed or item is None or item.folder_id != calendar.id or item.kind != "event":
            if not state.initial and change.removed:
                removed.append(change.item_id)
            continue
        if in_window(item):
            found.append(item)
        elif not state.initial:
            removed.append(item.id)
    if len(changes) < state.page_size:
        return DeltaPage(found, removed, replace(state, after=upto, upto=0, initial=False), final=True)
    return DeltaPage(found, removed, replace(state, after=changes[-1].seq, upto=upto), final=False)
