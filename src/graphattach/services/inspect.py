"""What a mailbox holds, for assertions in tests (admin API ``/_graphattach/users/{user}/messages``).

Not Graph: a flat view of a user's messages or events with their attachments, and the SHA-256 of
each file attachment's bytes, read from the blob store in bounded chunks.
"""

from __future__ import annotations

import hashlib

from graphattach.domain.models import Attachment, Folder, FolderKind, ItemKind, User
from graphattach.domain.testkit import AttachmentView, ItemView
from graphattach.protocol.errors import InvalidUser
from graphattach.services.context import Context
from graphattach.services.users import find_user


async def mailbox_user(ctx: Context, key: str) -> User:
    user = await find_user(ctx, key)
    if user is None:
        raise InvalidUser(f"The user '{key}' does not exist.")
    return user


async def sha256_of(ctx: Context, attachment: Attachment) -> str | None:
    if attachment.kind != "file" or attachment.blob_key is None:
        return None
    digest = hashlib.sha256()
    if attachment.content_length:
        async for chunk in ctx.blobs.read(attachment.blob_key, end=attachment.content_length):
            digest.update(chunk)
    return digest.hexdigest()


async def items_of(ctx: Context, user: User, kind: ItemKind, folder: str | None = None) -> list[ItemView]:
    """The user's messages or events, newest first, with their attachments (optionally in one folder,
    named by well-known name, display name or id)."""
    folders: dict[str, Folder] = {}
    folder_kind: FolderKind = "mail" if kind == "message" else "calendar"
    for candidate in await ctx.metadata.list_folders(user.id, folder_kind, None, any_parent=True):
        folders[candidate.id] = candidate
    wanted: list[str] | None = None
    if folder is not None:
        key = folder.lower()
        wanted = [
            f.id
            for f in folders.values()
            if f.id == folder or (f.well_known_name or "").lower() == key or f.display_name.lower() == key
        ]
        if not wanted:
            return []
    found, _ = await ctx.metadata.list_items(user.id, kind, wanted)
    views = []
    for item in found:
        home = folders.get(item.folder_id)
        name = (home.well_known_name or home.display_name) if home is not None else item.folder_id
        attachments = [
            AttachmentView(a, await sha256_of(ctx, a)) for a in await ctx.metadata.list_attachments(user.id, item.id)
        ]
        views.append(ItemView(item, name, attachments))
    return views
