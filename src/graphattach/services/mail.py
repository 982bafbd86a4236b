"""Messages and mail folders: create drafts, read, list, update, delete, send, sendMail.

Fidelity notes (docs/fidelity.md):
- a draft POSTed to ``/messages`` lands in Drafts, one POSTed under ``/mailFolders/{id}/messages``
  in that folder;
- ``from``/``sender`` of a draft stay null until it is sent, then become the mailbox owner;
- sending keeps the message id (Graph's ``Prefer: IdType="ImmutableId"`` behaviour) while moving
  it to Sent Items, and delivers a copy to the Inbox of every recipient who is a user here;
- DELETE removes a message for good (no Deleted Items step).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from graphattach.domain import ids
from graphattach.domain.errors import GraphError
from graphattach.domain.models import Attachment, Folder, Item, ItemKind, User, replace
from graphattach.protocol.errors import (
    AccessDenied,
    DeleteDistinguishedFolder,
    FolderExists,
    InvalidOperation,
    InvalidRecipients,
    IrresolvableConflict,
    ItemNotFound,
)
from graphattach.protocol.jsonio import graph_datetime
from graphattach.protocol.messages import ReplyParameters, prefixed_subject, quoted_body
from graphattach.services import items, notifications
from graphattach.services.access import WELL_KNOWN_MAIL
from graphattach.services.context import Context
from graphattach.services.users import ROOT_FOLDER
from graphattach.storage.errors import RecordNotFound
from graphattach.storage.interfaces import Conflict

# ---- messages ---------------------------------------------------------------------------------------


async def well_known(ctx: Context, user: User, name: str) -> Folder:
    folder = await ctx.metadata.get_well_known_folder(user.id, "mail", name)
    if folder is None:  # pragma: no cover - every mailbox is provisioned with them
        raise ItemNotFound()
    return folder


def owner_recipient(user: User) -> dict[str, Any]:
    return {"emailAddress": {"name": user.display_name, "address": user.mail}}


def new_internet_message_id(user: User) -> str:
    domain = user.mail.rsplit("@", 1)[-1]
    return f"<{ids.token_hex(16).upper()}@{domain}>"


async def create_message(
    ctx: Context,
    user: User,
    folder: Folder | None,
    data: dict[str, Any],
    attachments: list[dict[str, Any]] | None = None,
    *,
    version: str = "v1.0",
) -> Item:
    """A new draft in ``folder`` (Drafts when None), with its attachments added.

    If an attachment is refused, the draft is removed again: nothing is stored on error."""
    target = folder or await well_known(ctx, user, "drafts")
    if target.kind != "mail":
        raise ItemNotFound()
    now = ctx.clock.now()
    stored: dict[str, Any] = {
        "isDraft": True,
        "isRead": True,
        "importance": "normal",
        "inferenceClassification": "focused",
        "conversationId": items.new_conversation_id(),
        "conversationIndex": items.new_conversation_index(now),
        "internetMessageId": new_internet_message_id(user),
        "from": None,
        "sender": None,
        **data,
    }
    return await insert_item(ctx, user, "message", target, stored, now, attachments, version=version)


async def insert_item(
    ctx: Context,
    user: User,
    kind: ItemKind,
    folder: Folder,
    data: dict[str, Any],
    now: datetime,
    attachments: list[dict[str, Any]] | None,
    *,
    version: str = "v1.0",
) -> Item:
    """Store a new message or event with its ``attachments``: all of it, or (on any error) none."""
    item = Item(
        id=ids.new_id(kind),
        user_id=user.id,
        kind=kind,
        folder_id=folder.id,
        created=now,
        last_modified=now,
        change_key=items.new_change_key(),
        data=data,
    )
    await ctx.metadata.add_item(item, outbox=notifications.outbox(ctx, notifications.created(item)))
    if attachments:
        try:
            await add_attachments(ctx, user, item, attachments, version=version)
        except BaseException:
            await delete_item(ctx, item)
            raise
    return await reload(ctx, item)


async def add_attachments(
    ctx: Context, user: User, item: Item, attachments: list[dict[str, Any]], *, version: str = "v1.0"
) -> None:
    """Add the ``attachments`` array of a create or sendMail body (the attachment service validates)."""
    from graphattach.services.attachments import add_from_json

    for payload in attachments:
        await add_from_json(ctx, user, item, payload, version=version)


async def copy_attachments(ctx: Context, source: Item, target: Item) -> None:
    """Copy every attachment of ``source`` onto ``target`` (new ids, the same bytes)."""
    from graphattach.services import attachments

    await attachments.copy_attachments(ctx, source, target)


async def reload(ctx: Context, item: Item) -> Item:
    fresh = await ctx.metadata.get_item(item.user_id, item.id)
    if fresh is None:
        raise ItemNotFound()
    return fresh


async def update_message(ctx: Context, item: Item, changes: dict[str, Any]) -> Item:
    """Apply validated PATCH properties (the protocol layer already refused draft-only ones)."""
    if changes:
        updated = replace(item, data=items.apply_changes(item.data, changes))
        items.touch(updated, ctx.clock.now())
        try:
            await ctx.metadata.update_item(updated, outbox=notifications.outbox(ctx, notifications.updated(updated)))
        except RecordNotFound:
            raise ItemNotFound() from None
    return await reload(ctx, item)


async def delete_item(ctx: Context, item: Item) -> None:
    """Delete a message or event and its attachments; free the bytes nothing references any more."""
    keys = await ctx.metadata.delete_item(
        item.user_id, item.id, outbox=notifications.outbox(ctx, notifications.deleted(item))
    )
    await ctx.free_blobs(keys)


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Item]
    total: int


async def list_messages(ctx: Context, user: User, folder: Folder | None, *, skip: int, top: int | None) -> Page:
    """Messages of ``folder`` (every folder when None), newest first."""
    found, total = await ctx.metadata.list_items(
        user.id, "message", None if folder is None else [folder.id], skip=skip, top=top
    )
    return Page(found, total)


# ---- move and copy ----------------------------------------------------------------------------------


async def destination_folder(ctx: Context, user: User, destination_id: str) -> Folder:
    """The mail folder a ``destinationId`` names: a well-known name (``deleteditems``) or an id."""
    from graphattach.services.access import mail_folder

    return await mail_folder(ctx, user, destination_id)


async def copy_message(ctx: Context, user: User, item: Item, destination: Folder) -> Item:
    """``POST .../copy``: a new message (new id) in ``destination`` with the same properties and a
    copy of every attachment (the blob store shares the bytes where it can: a hard link on files,
    a server-side copy on S3; each copy owns its key, so deleting one never frees the other's).

    All or nothing: if an attachment cannot be copied, the new message is removed again."""
    now = ctx.clock.now()
    copy = Item(
        id=ids.new_id("message"),
        user_id=user.id,
        kind="message",
        folder_id=destination.id,
        created=item.created,
        last_modified=now,
        change_key=items.new_change_key(),
        data=dict(item.data),
    )
    await ctx.metadata.add_item(copy, outbox=notifications.outbox(ctx, notifications.created(copy)))
    try:
        await copy_attachments(ctx, item, copy)
    except BaseException:
        await delete_item(ctx, copy)
        raise
    return await reload(ctx, copy)


async def move_message(ctx: Context, user: User, item: Item, destination: Folder) -> Item:
    """``POST .../move``: Exchange "creates a new copy of the message in the destination folder and
    removes the original" (message-move.md), so the message gets a new id. A move to the folder the
    message is already in changes nothing and keeps the id (choice, docs/fidelity.md).

    The copy is complete before the original goes: a move that fails leaves the message where it was."""
    if destination.id == item.folder_id:
        return item
    moved = await copy_message(ctx, user, item, destination)
    try:
        await delete_item(ctx, item)
    except BaseException:
        await delete_item(ctx, moved)
        raise
    return moved


# ---- reply and forward ------------------------------------------------------------------------------

ReplyKind = Literal["reply", "replyAll", "forward"]


def _same_address(recipient: dict[str, Any] | None, user: User) -> bool:
    address = str(((recipient or {}).get("emailAddress") or {}).get("address") or "").lower()
    return address in (user.mail.lower(), user.user_principal_name.lower())


def _reply_recipients(user: User, original: dict[str, Any], kind: ReplyKind) -> dict[str, Any]:
    """To: the original's ``replyTo`` when set, else its sender (message-reply.md); reply-all adds
    the original To and Cc, without the replying mailbox itself."""
    if kind == "forward":
        return {"toRecipients": [], "ccRecipients": []}
    to = list(original.get("replyTo") or []) or ([original["from"]] if original.get("from") else [])
    cc: list[dict[str, Any]] = []
    if kind == "replyAll":
        to += [r for r in original.get("toRecipients") or [] if not _same_address(r, user)]
        cc = [r for r in original.get("ccRecipients") or [] if not _same_address(r, user)]
    seen: set[str] = set()

    def unique(recipients: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for r in recipients:
            key = str(((r or {}).get("emailAddress") or {}).get("address") or "").lower()
            if key not in seen:
                seen.add(key)
                out.append(r)
        return out

    return {"toRecipients": unique(to), "ccRecipients": unique(cc)}


async def create_reply(
    ctx: Context,
    user: User,
    original: Item,
    kind: ReplyKind,
    params: ReplyParameters,
    *,
    version: str = "v1.0",
) -> Item:
    """A reply, reply-all or forward draft of ``original`` in Drafts (createReply, createReplyAll,
    createForward): same conversation, ``RE:``/``FW:`` subject, the comment above the quoted
    original. A forward carries the original's attachments (microsoftgraph/msgraph-sdk-dotnet#2185);
    a reply does not, as Outlook does. ``params.message`` properties and attachments are applied on
    top. All or nothing: on any error no draft is left behind."""
    now = ctx.clock.now()
    data = original.data
    sent = data.get("sentDateTime") or graph_datetime(original.created)
    draft_data: dict[str, Any] = {
        "subject": prefixed_subject("FW" if kind == "forward" else "RE", data.get("subject")),
        "body": quoted_body(params.comment, data, sent_line(sent), new_body=params.message.get("body")),
        **_reply_recipients(user, data, kind),
        "bccRecipients": [],
        "importance": data.get("importance", "normal"),
        "conversationId": data.get("conversationId") or items.new_conversation_id(),
        "conversationIndex": data.get("conversationIndex") or items.new_conversation_index(now),
    }
    if params.to_recipients is not None:
        draft_data["toRecipients"] = params.to_recipients
    overrides = {k: v for k, v in params.message.items() if k != "body"}
    draft = await create_message(ctx, user, None, {**draft_data, **overrides}, version=version)
    try:
        if kind == "forward":
            await copy_attachments(ctx, original, draft)
        if params.attachments:
            await add_attachments(ctx, user, draft, params.attachments, version=version)
    except BaseException:
        await delete_item(ctx, draft)
        raise
    return await reload(ctx, draft)


def sent_line(value: str) -> str:
    """``Tuesday, December 1, 2026 10:00 AM`` (UTC) from an ISO date-time, as Outlook's quote shows it."""
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    return when.strftime("%A, %B %-d, %Y %-I:%M %p")


async def reply(
    ctx: Context,
    user: User,
    original: Item,
    kind: ReplyKind,
    params: ReplyParameters,
    *,
    version: str = "v1.0",
) -> None:
    """reply, replyAll, forward: the draft of ``create_reply``, sent at once (Sent Items keeps a
    copy, users of this tenant get it in their Inbox with the attachments). If the send fails the
    draft is removed: the call leaves nothing behind."""
    draft = await create_reply(ctx, user, original, kind, params, version=version)
    try:
        await send_draft(ctx, user, draft)
    except GraphError:
        await delete_item(ctx, draft)
        raise


# ---- sending ----------------------------------------------------------------------------------------


def recipients_of(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [*(data.get("toRecipients") or []), *(data.get("ccRecipients") or []), *(data.get("bccRecipients") or [])]


def check_recipients(data: dict[str, Any]) -> None:
    everyone = recipients_of(data)
    if not everyone:
        raise InvalidRecipients()
    for recipient in everyone:
        address = recipient["emailAddress"]["address"]
        local, at, domain = address.partition("@")
        if not (local and at and "." in domain) or any(c.isspace() for c in address):
            raise InvalidRecipients(
                f"At least one recipient isn't valid., Recipient '{address}' is not resolved. All recipients "
                f"must be resolved before a message can be submitted."
            )


async def tenant_users_by_address(ctx: Context, addresses: Iterable[str]) -> list[User]:
    """The users of this tenant whose mail or userPrincipalName is one of ``addresses``
    (case-insensitive), each once, in the order first named."""
    wanted = [a.lower() for a in addresses]
    by_address: dict[str, User] = {}
    for user in await ctx.metadata.list_users():
        by_address.setdefault(user.mail.lower(), user)
        by_address.setdefault(user.user_principal_name.lower(), user)
    found: dict[str, User] = {}
    for address in wanted:
        match = by_address.get(address)
        if match is not None:
            found.setdefault(match.id, match)
    return list(found.values())


async def send_draft(ctx: Context, user: User, draft: Item, *, save_to_sent_items: bool = True) -> Item | None:
    """Send a draft: it moves to Sent Items (or is deleted when not saved) and every recipient
    who is a user of this tenant gets a copy in their Inbox. Returns the sent item, if kept.

    All of it is one metadata transaction (``MetadataStore.send_item``): the recipients get the
    whole message with every attachment, or nothing, and on any failure the draft stays as it
    was. The copies share the draft's blobs (blobs are never written once an attachment owns
    them), so nothing is copied and there are no bytes to clean up after a failure."""
    if not draft.data.get("isDraft", False):
        raise InvalidOperation()
    check_recipients(draft.data)
    from graphattach.services.attachments import copy_record

    now = ctx.clock.now()
    sent_data = {
        **draft.data,
        "isDraft": False,
        "isRead": True,
        "sentDateTime": graph_datetime(now),
        "receivedDateTime": graph_datetime(now),
        "from": draft.data.get("from") or owner_recipient(user),
        "sender": draft.data.get("sender") or draft.data.get("from") or owner_recipient(user),
    }
    sent: Item | None = None
    if save_to_sent_items:
        sent_items = await well_known(ctx, user, "sentitems")
        sent = replace(draft, folder_id=sent_items.id, data=sent_data)
        items.touch(sent, now)
    originals = await ctx.metadata.list_attachments(draft.user_id, draft.id)
    copies: list[tuple[Item, list[Attachment]]] = []
    for recipient in await tenant_users_by_address(
        ctx, (r["emailAddress"]["address"] for r in recipients_of(sent_data))
    ):
        copy = await received_copy(ctx, recipient, sent_data, now)
        attachments = []
        for original in originals:
            attachment = copy_record(original, copy)
            attachment.blob_key = original.blob_key
            attachments.append(attachment)
        copies.append((copy, attachments))
    made = [
        notifications.deleted(draft) if sent is None else notifications.updated(sent, previous_folder=draft.folder_id),
        *(notifications.created(copy) for copy, _ in copies),
    ]
    try:
        freed = await ctx.metadata.send_item(
            draft, sent, copies, [a.id for a in originals], outbox=notifications.outbox(ctx, *made)
        )
    except RecordNotFound:
        raise ItemNotFound() from None
    except Conflict:
        raise IrresolvableConflict(
            "The message changed while it was being sent; nothing was sent. Retry the request."
        ) from None
    await ctx.free_blobs(freed)
    if sent is None:
        return None
    return await reload(ctx, sent)


async def received_copy(ctx: Context, recipient: User, sent_data: dict[str, Any], now: datetime) -> Item:
    """A received copy of a sent message for ``recipient``'s Inbox (Bcc is not shown to recipients)."""
    inbox = await well_known(ctx, recipient, "inbox")
    data = {
        **sent_data,
        "isDraft": False,
        "isRead": False,
        "bccRecipients": [],
        "categories": [],
        "flag": {"flagStatus": "notFlagged"},
        "inferenceClassification": "focused",
    }
    return Item(
        id=ids.new_id("message"),
        user_id=recipient.id,
        kind="message",
        folder_id=inbox.id,
        created=now,
        last_modified=now,
        change_key=items.new_change_key(),
        data=data,
    )


async def send_mail(
    ctx: Context,
    user: User,
    data: dict[str, Any],
    attachments: list[dict[str, Any]],
    *,
    save_to_sent_items: bool,
    version: str = "v1.0",
) -> None:
    """``sendMail``: create the message, send it, keep it in Sent Items only when asked."""
    check_recipients(data)
    draft = await create_message(ctx, user, None, data, attachments, version=version)
    try:
        await send_draft(ctx, user, draft, save_to_sent_items=save_to_sent_items)
    except GraphError:
        await delete_item(ctx, draft)
        raise


# ---- mail folders ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FolderView:
    folder: Folder
    child_count: int
    total: int
    unread: int


async def folder_view(ctx: Context, folder: Folder) -> FolderView:
    children = await ctx.metadata.list_folders(folder.user_id, "mail", folder.id)
    found, total = await ctx.metadata.list_items(folder.user_id, "message", [folder.id])
    unread = sum(1 for item in found if not item.data.get("isRead", True))
    return FolderView(folder, len(children), total, unread)


async def root_folder(ctx: Context, user: User) -> Folder:
    return await well_known(ctx, user, ROOT_FOLDER)


async def child_folders(ctx: Context, user: User, parent: Folder | None) -> list[Folder]:
    """Children of ``parent`` (the top of the information store when None), oldest first."""
    parent = parent or await root_folder(ctx, user)
    return await ctx.metadata.list_folders(user.id, "mail", parent.id)


def _folder_exists() -> GraphError:
    return FolderExists()


async def _check_unique_name(
    ctx: Context, user: User, parent_id: str, name: str, *, except_id: str | None = None
) -> None:
    for sibling in await ctx.metadata.list_folders(user.id, "mail", parent_id):
        if sibling.id != except_id and sibling.display_name.casefold() == name.casefold():
            raise _folder_exists()


async def create_folder(
    ctx: Context, user: User, parent: Folder | None, display_name: str, *, is_hidden: bool
) -> Folder:
    parent = parent or await root_folder(ctx, user)
    if parent.kind != "mail":
        raise ItemNotFound()
    await _check_unique_name(ctx, user, parent.id, display_name)
    folder = Folder(
        id=ids.new_id("folder"),
        user_id=user.id,
        kind="mail",
        display_name=display_name,
        parent_id=parent.id,
        created=ctx.clock.now(),
        data={"isHidden": is_hidden},
    )
    await ctx.metadata.add_folder(folder)
    return folder


def is_distinguished(folder: Folder) -> bool:
    return folder.well_known_name is not None and folder.well_known_name.lower() in WELL_KNOWN_MAIL


async def rename_folder(ctx: Context, user: User, folder: Folder, display_name: str | None) -> Folder:
    if display_name is None or display_name == folder.display_name:
        return folder
    if is_distinguished(folder):
        raise AccessDenied("Distinguished folders cannot be renamed.")
    if folder.parent_id is not None:
        await _check_unique_name(ctx, user, folder.parent_id, display_name, except_id=folder.id)
    updated = replace(folder, display_name=display_name)
    try:
        await ctx.metadata.update_folder(updated)
    except RecordNotFound:
        raise ItemNotFound() from None
    return updated


async def delete_folder(ctx: Context, user: User, folder: Folder) -> None:
    """Delete a custom folder with its subfolders and their messages (and free their bytes)."""
    if is_distinguished(folder):
        raise DeleteDistinguishedFolder()
    doomed = await items_in_tree(ctx, user, folder)
    gone = notifications.outbox(ctx, *(notifications.deleted(item) for item in doomed))
    keys = await ctx.metadata.delete_folder(user.id, folder.id, outbox=gone)
    await ctx.free_blobs(keys)


async def items_in_tree(ctx: Context, user: User, folder: Folder) -> list[Item]:
    """The messages of ``folder`` and its subfolders (what deleting it deletes), for notifications;
    nothing is read when the mailbox has no subscriptions."""
    if not await ctx.metadata.list_subscriptions(user.id):
        return []
    folder_ids, queue = [], [folder.id]
    while queue:
        current = queue.pop()
        folder_ids.append(current)
        queue.extend(f.id for f in await ctx.metadata.list_folders(user.id, "mail", current))
    found, _ = await ctx.metadata.list_items(user.id, "message", folder_ids)
    return found
