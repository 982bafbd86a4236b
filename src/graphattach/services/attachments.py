"""Attachments on messages and events: add, list, get, read bytes, delete, copy.

The functions below are the contract other services rely on (sending mail copies attachments;
creating a message may carry an ``attachments`` array).
"""

from __future__ import annotations

from typing import Any

from graphattach.domain.models import Attachment, Item, User
from graphattach.services.context import Context


async def add_from_json(ctx: Context, user: User, item: Item, payload: dict[str, Any]) -> Attachment:
    """Validate one attachment JSON object (file, item or reference) and add it to ``item``."""
    raise NotImplementedError


async def copy_attachments(ctx: Context, source: Item, target: Item) -> list[Attachment]:
    """Copy every attachment of ``source`` onto ``target`` (new ids, identical bytes)."""
    raise NotImplementedError
