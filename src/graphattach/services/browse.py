"""Read-only views of the tenant for the web UI: mailbox summaries, folder trees, searching a
folder, an event's attendees and their copies, recent upload sessions.

Everything here is bounded: a page of items, a scan limit for searches, a limit on sessions, so a
mailbox of any size answers in the time of one page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from graphattach.domain.models import Attachment, Folder, Item, UploadSession, User
from graphattach.services.calendar import SOURCE
from graphattach.services.context import Context
from graphattach.services.mail import root_folder, tenant_users_by_address
from graphattach.services.users import find_user
from graphattach.storage.interfaces import MailboxUsage

#: A search reads at most this many of a folder's newest messages (and says so when it stops).
SEARCH_SCAN_LIMIT = 5000
_SCAN_BATCH = 250


@dataclass(frozen=True, slots=True)
class UserSummary:
    user: User
    usage: MailboxUsage


async def user_summaries(ctx: Context) -> list[UserSummary]:
    """Every user of the tenant with what their mailbox holds."""
    return [UserSummary(u, await ctx.metadata.mailbox_usage(u.id)) for u in await ctx.metadata.list_users()]


@dataclass(slots=True)
class FolderNode:
    folder: Folder
    depth: int
    children: list[FolderNode] = field(default_factory=list)


async def mail_folder_tree(ctx: Context, user: User) -> list[FolderNode]:
    """The mail folders under the top of the information store, depth first (childFolders at
    any depth), as a flat list with each folder's depth."""
    root = await root_folder(ctx, user)
    flat: list[FolderNode] = []

    async def walk(parent: Folder, depth: int) -> None:
        for child in await ctx.metadata.list_folders(user.id, "mail", parent.id):
            flat.append(FolderNode(child, depth))
            await walk(child, depth + 1)

    await walk(root, 0)
    return flat


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _addresses(data: dict[str, Any], *keys: str) -> str:
    out: list[str] = []
    for key in keys:
        value = data.get(key)
        recipients = value if isinstance(value, list) else [value]
        for recipient in recipients:
            if isinstance(recipient, dict) and isinstance(recipient.get("emailAddress"), dict):
                address = recipient["emailAddress"]
                out.append(f"{_text(address.get('name'))} {_text(address.get('address'))}")
    return " ".join(out)


def matches(item: Item, needle: str) -> bool:
    """Case-insensitive substring match on subject, sender, recipients and body text."""
    data = item.data
    body = data.get("body") if isinstance(data.get("body"), dict) else {}
    haystack = " ".join(
        (
            _text(data.get("subject")),
            _addresses(data, "from", "sender", "toRecipients", "ccRecipients", "organizer", "attendees"),
            _text((body or {}).get("content")),
        )
    )
    return needle.casefold() in haystack.casefold()


@dataclass(frozen=True, slots=True)
class ItemPage:
    items: list[Item]
    #: Items in the folder (without a query), or matches found so far (with one).
    total: int
    has_more: bool
    #: With a query: True when the scan stopped at ``SEARCH_SCAN_LIMIT`` before the folder's end.
    truncated: bool = False


async def items_page(
    ctx: Context, user: User, kind: str, folder: Folder | None, *, skip: int, top: int, query: str = ""
) -> ItemPage:
    """A page of messages or events (newest first) of ``folder`` (all when None), filtered by
    ``query`` when given: the store's text search narrows the candidates when it has one (at most
    ``SEARCH_SCAN_LIMIT``), else the newest ``SEARCH_SCAN_LIMIT`` items are read."""
    folders = None if folder is None else [folder.id]
    if not query:
        found, total = await ctx.metadata.list_items(user.id, kind, folders, skip=skip, top=top)  # type: ignore[arg-type]
        return ItemPage(found, total, skip + len(found) < total)
    search = getattr(ctx.metadata, "search_items", None)  # an ItemSearcher
    if search is not None and _prefilterable(query):
        candidates = await search(user.id, kind, folders, query, SEARCH_SCAN_LIMIT)
        hits = [i for i in candidates if matches(i, query)]
        page = hits[skip : skip + top]
        return ItemPage(page, len(hits), len(hits) > skip + top, truncated=len(candidates) >= SEARCH_SCAN_LIMIT)
    hits = []
    scanned = 0
    total = 0
    while scanned < SEARCH_SCAN_LIMIT:
        batch, total = await ctx.metadata.list_items(user.id, kind, folders, skip=scanned, top=_SCAN_BATCH)  # type: ignore[arg-type]
        scanned += len(batch)
        hits.extend(i for i in batch if matches(i, query))
        if len(hits) > skip + top or not batch or scanned >= total:
            break
    page = hits[skip : skip + top]
    return ItemPage(page, len(hits), len(hits) > skip + top, truncated=scanned < total and len(hits) <= skip + top)


def _prefilterable(query: str) -> bool:
    """Whether the store's text search finds every item ``matches`` would: the needle is printable
    ASCII (the stores fold ASCII case only) that JSON writes unescaped."""
    return query.isascii() and query.isprintable() and '"' not in query and "\\" not in query


@dataclass(frozen=True, slots=True)
class Attendee:
    address: str
    name: str
    kind: str
    response: str
    #: The attendee when they are a user of this tenant, and their copy of the event.
    user: User | None
    copy: Item | None


async def attendees(ctx: Context, event: Item) -> list[Attendee]:
    """The event's attendees; for those who are users here, their copy of the event."""
    listed = [a for a in event.data.get("attendees") or [] if isinstance(a, dict)]
    addresses = [_text((a.get("emailAddress") or {}).get("address")) for a in listed]
    users = {u.mail.lower(): u for u in await tenant_users_by_address(ctx, [a for a in addresses if a])}
    out: list[Attendee] = []
    for attendee, address in zip(listed, addresses, strict=True):
        user = users.get(address.lower())
        copy = await find_copy(ctx, user, event) if user is not None and user.id != event.user_id else None
        out.append(
            Attendee(
                address=address,
                name=_text((attendee.get("emailAddress") or {}).get("name")),
                kind=_text(attendee.get("type")) or "required",
                response=_text((attendee.get("status") or {}).get("response")) or "none",
                user=user,
                copy=copy,
            )
        )
    return out


async def find_copy(ctx: Context, attendee: User, event: Item) -> Item | None:
    """The attendee's copy of the organizer's ``event`` (scans the attendee's events)."""
    skip = 0
    while True:
        batch, total = await ctx.metadata.list_items(attendee.id, "event", None, skip=skip, top=_SCAN_BATCH)
        for item in batch:
            link = item.data.get(SOURCE)
            if isinstance(link, dict) and link.get("itemId") == event.id and link.get("userId") == event.user_id:
                return item
        skip += len(batch)
        if not batch or skip >= total:
            return None


async def organizer_event(ctx: Context, copy: Item) -> tuple[User, Item] | None:
    """For an attendee's copy, the organizer and the organizer's event (None if not a copy)."""
    link = copy.data.get(SOURCE)
    if not isinstance(link, dict):
        return None
    organizer = await find_user(ctx, str(link.get("userId") or ""))
    if organizer is None:
        return None
    event = await ctx.metadata.get_item(organizer.id, str(link.get("itemId") or ""))
    return (organizer, event) if event is not None else None


async def sessions(ctx: Context, limit: int = 50) -> list[UploadSession]:
    """The newest upload sessions, any state."""
    return await ctx.metadata.recent_sessions(limit)


async def attachment_of(ctx: Context, session: UploadSession) -> Attachment | None:
    """The attachment a completed session created, if it is still there."""
    if session.attachment_id is None:
        return None
    return await ctx.metadata.get_attachment(session.user_id, session.item_id, session.attachment_id)
