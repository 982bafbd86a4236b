"""Attachments on messages and events: add, list, get, read bytes, delete, copy.

The functions below are the contract other services rely on (sending mail copies attachments;
creating a message may carry an ``attachments`` array; attendee copies of an event follow the
organizer's attachments).

Invariants:
- a new blob key is announced to the metadata store (``announce_blobs``) before its bytes are
  written; the record then goes to the metadata store with the limits checked and the
  announcement consumed in the same transaction. The sweeper never deletes an announced key, so
  an insert in flight cannot lose its bytes, whatever the server's clock or the real one says
  (services/sweeper.py). If anything fails, the blob is deleted and the announcement withdrawn,
  so an attachment is either wholly visible or not at all;
- limits are Exchange's: at most 250 attachments per item, and the item's attachments may not
  exceed the mailbox's maximum message size, counted on raw bytes (``content_length``) for file
  attachments and on the reported ``size`` for item and reference attachments (domain/sizes.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from graphattach.domain import ids, limits
from graphattach.domain.content_types import guess_content_type
from graphattach.domain.errors import GraphError
from graphattach.domain.models import Attachment, Item, User
from graphattach.domain.sizes import file_attachment_size, item_attachment_size, reference_attachment_size
from graphattach.protocol.attachments import (
    STREAM_CHUNK,
    AttachmentInput,
    FileInput,
    ItemInput,
    base64_stream,
    header_content_type,
    item_kind_of,
    parse_attachment,
)
from graphattach.protocol.errors import (
    MESSAGE_SIZE_EXCEEDED_ON_SAVE,
    AttachmentLimitExceeded,
    ContentMissing,
    ItemNotFound,
    MessageSizeExceeded,
    ReferenceValueNotAllowed,
    SaveInterrupted,
)
from graphattach.protocol.holes import Hole, Part
from graphattach.protocol.item_mime import render_item
from graphattach.services import notifications
from graphattach.services.access import check_id
from graphattach.services.context import Context
from graphattach.storage.errors import RecordNotFound
from graphattach.storage.interfaces import AnnouncementLost, BlobChunk, ItemUsage, LimitExceeded, limit_weight

MAX_ATTACHMENTS = limits.MAX_ATTACHMENTS_PER_ITEM
#: Key in ``Attachment.data`` naming the attachment a copy was made from (never rendered).
COPIED_FROM = "copiedFrom"


def message_size_exceeded() -> GraphError:
    """A POST past the mailbox's maximum message size (office365-mail#39's wording)."""
    return MessageSizeExceeded(MESSAGE_SIZE_EXCEEDED_ON_SAVE)


def too_many_attachments() -> GraphError:
    """Exchange Online allows 250 attachments on one item (docs/fidelity.md: code is our choice)."""
    return AttachmentLimitExceeded(limit=MAX_ATTACHMENTS)


def size_allowance(existing: ItemUsage, new: Attachment, max_message_size: int) -> int:
    """The ``max_total_size`` to give the store so that its check on the sum of ``size`` becomes a
    check on raw bytes: the maximum plus the overhead (``size`` - raw) of every attachment involved.

    A concurrent add between reading the usage and inserting only makes the store's check
    stricter (its overhead is not in the allowance), never laxer; ``insert`` then looks again.
    """
    overhead = (existing.size - existing.weight) + (new.size - limit_weight(new))
    return max_message_size + overhead


def blob_key_for(attachment_id: str) -> str:
    return f"attachments/{attachment_id}"


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _drop_blob(ctx: Context, key: str) -> None:
    """Delete a blob and withdraw its announcement, even while the caller is being cancelled."""

    async def drop() -> None:
        await ctx.blobs.delete(key)
        await ctx.metadata.withdraw_blobs([key])

    await asyncio.shield(drop())


def save_interrupted() -> GraphError:
    """An insert whose announced blob the sweeper reclaimed (the insert outlived the grace
    period): nothing was stored, and the client may retry."""
    return SaveInterrupted()


#: How often an add is retried when a concurrent add made the store's size check (which counts
#: the newcomer by its reported size) refuse what raw bytes still allow.
_LIMIT_RETRIES = 8


async def _insert_limited(ctx: Context, user: User, attachment: Attachment, announced: bool, item: Item) -> None:
    for _ in range(_LIMIT_RETRIES):
        existing = await ctx.metadata.item_usage(attachment.user_id, attachment.item_id)
        if existing.count >= MAX_ATTACHMENTS:
            raise too_many_attachments()
        if existing.weight + limit_weight(attachment) > user.max_message_size:
            raise message_size_exceeded()
        try:
            await ctx.metadata.add_attachment(
                attachment,
                max_count=MAX_ATTACHMENTS,
                max_total_size=size_allowance(existing, attachment, user.max_message_size),
                announced=announced,
                outbox=notifications.outbox(ctx, notifications.updated(item)),
            )
            return
        except LimitExceeded as exc:
            if exc.which == "count":
                raise too_many_attachments() from None
            # another attachment arrived meanwhile: look again with a fresh snapshot
    raise message_size_exceeded()


async def insert(ctx: Context, user: User, attachment: Attachment, *, item: Item, limited: bool = True) -> None:
    """Store the record with Exchange's limits (and the ``updated`` notification of ``item`` in
    the same transaction); on any failure delete the attachment's blob. A blob-backed
    attachment's key must have been announced (``announce_blobs``)."""
    announced = attachment.blob_key is not None
    try:
        if limited:
            await _insert_limited(ctx, user, attachment, announced, item)
        else:
            await ctx.metadata.add_attachment(
                attachment, announced=announced, outbox=notifications.outbox(ctx, notifications.updated(item))
            )
    except AnnouncementLost:
        await _discard(ctx, attachment)
        raise save_interrupted() from None
    except LimitExceeded as exc:
        await _discard(ctx, attachment)
        raise too_many_attachments() if exc.which == "count" else message_size_exceeded() from None
    except RecordNotFound:
        await _discard(ctx, attachment)
        raise ItemNotFound() from None
    except BaseException:
        await _discard(ctx, attachment)
        raise


async def _discard(ctx: Context, attachment: Attachment) -> None:
    if attachment.blob_key is not None:
        await _drop_blob(ctx, attachment.blob_key)


async def add_from_json(
    ctx: Context,
    user: User,
    item: Item,
    payload: dict[str, Any],
    *,
    version: str = "v1.0",
    strict: bool | None = None,
) -> Attachment:
    """Validate one attachment JSON object (file, item or reference) and add it to ``item``."""
    parsed = parse_attachment(payload, version=version, strict=ctx.settings.strict if strict is None else strict)
    return await add_parsed(ctx, user, item, parsed)


async def add_parsed(ctx: Context, user: User, item: Item, parsed: AttachmentInput) -> Attachment:
    """Add an already validated attachment to ``item``."""
    if isinstance(parsed, FileInput):
        return await add_file(
            ctx,
            user,
            item,
            name=parsed.name,
            content=parsed.content,
            content_type=parsed.content_type,
            is_inline=parsed.is_inline,
            content_id=parsed.content_id,
        )
    now = ctx.clock.now()
    attachment_id = ids.new_id("attachment")
    if isinstance(parsed, ItemInput):
        attachment = Attachment(
            id=attachment_id,
            user_id=user.id,
            item_id=item.id,
            kind="item",
            name=parsed.name,
            content_type=parsed.content_type,
            size=item_attachment_size(parsed.item),
            is_inline=parsed.is_inline,
            last_modified=now,
            data={"item": parsed.item},
        )
    else:
        attachment = Attachment(
            id=attachment_id,
            user_id=user.id,
            item_id=item.id,
            kind="reference",
            name=parsed.name,
            content_type=parsed.content_type,
            size=reference_attachment_size(parsed.properties),
            is_inline=parsed.is_inline,
            last_modified=now,
            data={"reference": parsed.properties} if parsed.properties else {},
        )
    await insert(ctx, user, attachment, item=item)
    return attachment


async def add_file(
    ctx: Context,
    user: User,
    item: Item,
    *,
    name: str,
    content: bytes,
    content_type: str | None = None,
    is_inline: bool = False,
    content_id: str | None = None,
) -> Attachment:
    """A file attachment: bytes to the blob store, then the record (limits checked atomically)."""
    attachment_id = ids.new_id("attachment")
    attachment = Attachment(
        id=attachment_id,
        user_id=user.id,
        item_id=item.id,
        kind="file",
        name=name,
        content_type=content_type or guess_content_type(name),
        size=file_attachment_size(len(content)),
        is_inline=is_inline,
        content_id=content_id,
        last_modified=ctx.clock.now(),
        content_length=len(content),
        blob_key=blob_key_for(attachment_id),
    )
    assert attachment.blob_key is not None
    await ctx.metadata.announce_blobs([attachment.blob_key])
    try:
        await ctx.blobs.write(attachment.blob_key, _one(content))
    except BaseException:
        await _drop_blob(ctx, attachment.blob_key)
        raise
    await insert(ctx, user, attachment, item=item)
    return attachment


async def list_for_item(ctx: Context, item: Item) -> list[Attachment]:
    return await ctx.metadata.list_attachments(item.user_id, item.id)


async def get(ctx: Context, item: Item, attachment_id: str) -> Attachment:
    """One attachment of ``item``; 400 for an id we could never have minted, else 404."""
    found = await ctx.metadata.get_attachment(item.user_id, item.id, check_id(attachment_id))
    if found is None:
        raise ItemNotFound()
    return found


async def delete(ctx: Context, item: Item, attachment_id: str) -> None:
    freed = await ctx.metadata.delete_attachment(
        item.user_id, item.id, check_id(attachment_id), outbox=notifications.outbox(ctx, notifications.updated(item))
    )
    if freed is None:
        raise ItemNotFound()
    await ctx.free_blobs(freed)


@dataclass(slots=True)
class RawContent:
    """The ``$value`` of an attachment: stream it, ``length`` bytes of ``content_type``."""

    content_type: str
    length: int
    chunks: AsyncIterator[BlobChunk]


async def read_value(ctx: Context, attachment: Attachment) -> RawContent:
    """Raw bytes of a file (streamed from the blob store), MIME/iCalendar/vCard of an item."""
    if attachment.kind == "file":
        assert attachment.blob_key is not None
        length = await ctx.blobs.size(attachment.blob_key)
        if length is None:
            raise ContentMissing()
        return RawContent(
            header_content_type(attachment.content_type),
            length,
            ctx.blobs.read(attachment.blob_key, chunk_size=STREAM_CHUNK),
        )
    if attachment.kind == "item":
        body, content_type = render_item(
            item_kind_of(attachment) or "message", attachment.data.get("item") or {}, stamp=attachment.last_modified
        )
        return RawContent(content_type, len(body), _one(body))
    raise ReferenceValueNotAllowed()


def copy_record(source: Attachment, target: Item) -> Attachment:
    """A copy of ``source`` on ``target``: a new id, the same metadata, no blob yet (the caller
    shares ``source``'s blob key or copies the bytes to a new one)."""
    return Attachment(
        id=ids.new_id("attachment"),
        user_id=target.user_id,
        item_id=target.id,
        kind=source.kind,
        name=source.name,
        content_type=source.content_type,
        size=source.size,
        is_inline=source.is_inline,
        content_id=source.content_id,
        last_modified=source.last_modified,
        content_length=source.content_length,
        blob_key=None,
        data={**{k: v for k, v in source.data.items() if k != COPIED_FROM}, COPIED_FROM: source.id},
    )


async def _copy_one(ctx: Context, source: Attachment, target: Item) -> Attachment:
    copy = copy_record(source, target)
    new_id = copy.id
    if source.blob_key is not None:
        copy.blob_key = blob_key_for(new_id)
        await ctx.metadata.announce_blobs([copy.blob_key])
        try:
            await ctx.blobs.copy(source.blob_key, copy.blob_key)
        except BaseException:
            await _drop_blob(ctx, copy.blob_key)
            raise
    owner = await ctx.metadata.get_user(target.user_id)
    if owner is None:
        await _discard(ctx, copy)
        raise ItemNotFound()
    await insert(ctx, owner, copy, limited=False, item=target)
    return copy


async def copy_attachments(ctx: Context, source: Item, target: Item) -> list[Attachment]:
    """Make ``target`` carry a copy of every attachment of ``source`` (new ids, identical bytes and
    metadata) and return those copies.

    Idempotent: attachments already copied from ``source`` are kept, copies of attachments that
    ``source`` no longer has are removed, and ``target``'s own attachments are left alone. So an
    attendee's copy of an event follows the organizer's current attachments however often the
    organizer updates it. No limits are checked: the copy already fitted in ``source``.
    """
    originals = await ctx.metadata.list_attachments(source.user_id, source.id)
    present = await ctx.metadata.list_attachments(target.user_id, target.id)
    source_ids = {a.id for a in originals}
    copies: dict[str, Attachment] = {}
    for attachment in present:
        origin = attachment.data.get(COPIED_FROM)
        if origin is None:
            continue
        if origin in source_ids and origin not in copies:
            copies[origin] = attachment
        else:
            freed = await ctx.metadata.delete_attachment(
                target.user_id,
                target.id,
                attachment.id,
                outbox=notifications.outbox(ctx, notifications.updated(target)),
            )
            if freed:
                await ctx.free_blobs(freed)
    result: list[Attachment] = []
    for original in originals:
        existing = copies.get(original.id)
        result.append(existing if existing is not None else await _copy_one(ctx, original, target))
    return result


# reading bytes for JSON responses -----------------------------------------------------------------


async def file_bytes(ctx: Context, attachment: Attachment) -> bytes:
    """The whole content of a file attachment (for ``$expand=attachments``)."""
    assert attachment.blob_key is not None
    return b"".join([chunk async for chunk in ctx.blobs.read(attachment.blob_key, chunk_size=STREAM_CHUNK)])


async def check_holes(ctx: Context, parts: list[Part]) -> None:
    """Every blob a response will stream is there, whole: else ``ContentMissing`` before a byte
    of the answer goes out."""
    for part in parts:
        if isinstance(part, Hole) and await ctx.blobs.size(part.blob_key) != part.raw_length:
            raise ContentMissing()


async def fill_holes(ctx: Context, parts: list[Part]) -> AsyncIterator[bytes]:
    """The body: JSON pieces as they are, holes as the base64 of their blob, streamed."""
    for part in parts:
        if isinstance(part, Hole):
            async for piece in base64_stream(ctx.blobs.read(part.blob_key, chunk_size=STREAM_CHUNK)):
                yield piece
        else:
            yield part
