"""``$search`` over a mailbox's messages (the query tree comes from ``protocol.search``)."""

from __future__ import annotations

from typing import Any

from graphattach.domain.models import Folder, Item, User
from graphattach.protocol.jsonio import graph_datetime
from graphattach.protocol.search import (
    Node,
    SearchDocument,
    evaluate,
    plain_body,
    required_prefixes,
    uses_attachments,
)
from graphattach.services.context import Context

#: "$search ... returns up to 1000 results" (search-query-parameter).
MAX_RESULTS = 1000


def _addresses(recipients: list[dict[str, Any]] | None) -> list[str]:
    out = []
    for recipient in recipients or []:
        address = (recipient or {}).get("emailAddress") or {}
        out.append(f"{address.get('name') or ''} {address.get('address') or ''}")
    return out


def document(item: Item, attachment_names: list[str]) -> SearchDocument:
    d = item.data
    body = d.get("body") or {}
    sender = d.get("from") or d.get("sender")
    return SearchDocument(
        from_=_addresses([sender] if sender else []),
        to=_addresses(d.get("toRecipients")),
        cc=_addresses(d.get("ccRecipients")),
        bcc=_addresses(d.get("bccRecipients")),
        subject=str(d.get("subject") or ""),
        body=plain_body(str(body.get("content") or ""), str(body.get("contentType") or "text")),
        has_attachments=item.has_attachments,
        importance=str(d.get("importance") or "normal"),
        received=d.get("receivedDateTime") or graph_datetime(item.created),
        sent=d.get("sentDateTime") or graph_datetime(item.created),
        attachment_names=attachment_names,
    )


async def search_messages(ctx: Context, user: User, folder: Folder | None, tree: Node) -> list[Item]:
    """The messages of ``folder`` (every folder when None) that match, newest sent first, at most 1000."""
    folder_ids = None if folder is None else [folder.id]
    prefixes = required_prefixes(tree)
    indexed = getattr(ctx.metadata, "messages_with_words", None)  # a MessageTextSearcher
    if indexed is not None and prefixes:
        candidates: list[Item] = await indexed(user.id, folder_ids, prefixes)
    else:
        candidates, _ = await ctx.metadata.list_items(user.id, "message", folder_ids)
    with_names = uses_attachments(tree)
    found: list[Item] = []
    for item in candidates:
        names: list[str] = []
        if with_names and item.has_attachments:
            names = [a.name or "" for a in await ctx.metadata.list_attachments(user.id, item.id)]
        if evaluate(tree, document(item, names)):
            found.append(item)
    found.sort(key=lambda i: (i.data.get("sentDateTime") or graph_datetime(i.created), i.id), reverse=True)
    return found[:MAX_RESULTS]
