"""Messages: create drafts, read, list, update, delete, send.

Fidelity notes (docs/fidelity.md): a draft POSTed to ``/messages`` lands in Drafts, one POSTed
under ``/mailFolders/{id}/messages`` in that folder; ``from``/``sender`` of a draft stay null
until it is sent, then become the mailbox owner.
"""

from __future__ import annotations

import secrets
from typing import Any

from graphattach.domain import ids
from graphattach.domain.errors import ItemNotFound
from graphattach.domain.models import Folder, Item, User
from graphattach.services import items
from graphattach.services.context import Context


async def drafts_folder(ctx: Context, user: User) -> Folder:
    folder = await ctx.metadata.get_well_known_folder(user.id, "mail", "drafts")
    if folder is None:  # pragma: no cover - every mailbox is provisioned with one
        raise ItemNotFound()
    return folder


def owner_recipient(user: User) -> dict[str, Any]:
    return {"emailAddress": {"name": user.display_name, "address": user.mail}}


def new_internet_message_id(user: User) -> str:
    domain = user.mail.rsplit("@", 1)[-1]
    return f"<{secrets.token_hex(16).upper()}@{domain}>"


async def create_message(
    ctx: Context,
    user: User,
    folder: Folder | None,
    data: dict[str, Any],
    attachments: list[dict[str, Any]] | None = None,
) -> Item:
    """A new draft in ``folder`` (Drafts when None), with its attachments added."""
    target = folder or await drafts_folder(ctx, user)
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
    item = Item(
        id=ids.new_id("message"),
        user_id=user.id,
        kind="message",
        folder_id=target.id,
        created=now,
        last_modified=now,
        change_key=items.new_change_key(),
        data=stored,
    )
    await ctx.metadata.add_item(item)
    if attachments:
        await add_attachments(ctx, user, item, attachments)
    return await reload(ctx, item)


async def add_attachments(ctx: Context, user: User, item: Item, attachments: list[dict[str, Any]]) -> None:
    """Add an ``attachments`` array of a create or sendMail body (validated by the attachment service)."""
    from graphattach.services.attachments import add_from_json

    for payload in attachments:
        try:
            await add_from_json(ctx, user, item, payload)
        except NotImplementedError:
            # TODO(attachments): services.attachments.add_from_json is implemented on the
            # attachments branch; until it is merged the array is ignored.
            return


async def reload(ctx: Context, item: Item) -> Item:
    fresh = await ctx.metadata.get_item(item.user_id, item.id)
    if fresh is None:
        raise ItemNotFound()
    return fresh
