"""Graph routes: attachments (POST, list, get, ``$value``, DELETE) and ``$expand=attachments``."""

from __future__ import annotations

from typing import Any

from graphattach.api.call import GraphCall, Routes
from graphattach.domain.models import Item

ROUTES: Routes = {}


async def expand_attachments(call: GraphCall, item: Item) -> list[dict[str, Any]]:
    """The ``attachments`` array for ``GET .../messages/{id}?$expand=attachments`` (and events)."""
    raise NotImplementedError
