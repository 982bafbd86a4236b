"""The bundle every service works with: stores, settings, clock, token service, id source and journal."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from graphattach.auth.team import TeamConfig
from graphattach.auth.tokens import TokenService
from graphattach.domain.ids import IdSource
from graphattach.services.clock import Clock
from graphattach.services.journal import Journal
from graphattach.settings import Settings
from graphattach.storage.interfaces import BlobStore, MetadataStore


@dataclass(slots=True)
class Context:
    settings: Settings
    metadata: MetadataStore
    blobs: BlobStore
    clock: Clock
    tokens: TokenService
    tenant_id: str
    #: Per-process helpers the services create on first use (the notification dispatcher).
    extensions: dict[str, Any] = field(default_factory=dict)
    #: App registrations and team users (``--config``); empty in the zero-config default.
    team: TeamConfig = field(default_factory=TeamConfig)
    #: Where ids come from while serving (seeded under ``--seed``); restarted by a reset.
    ids: IdSource = field(default_factory=IdSource)
    #: Where the admin API's requests mint (request ids, token ids, added users): a stream of its
    #: own, so that a test's admin calls (reading the journal, the clock, a mailbox) do not shift
    #: the ids its Graph calls get.
    admin_ids: IdSource = field(default_factory=IdSource)
    journal: Journal = field(default_factory=Journal)
    #: Called by a reset after the stores are emptied, for in-process state a feature keeps
    #: (fault rules, throttling windows...): each returns nothing or an awaitable.
    reset_hooks: list[Callable[[], Awaitable[None] | None]] = field(default_factory=list)
    #: What a seed data file adds to the seeded state (a ``protocol.seed_data.SeedPlan``), if any.
    seed_plan: Any = None
    #: The seeded state as the stores copied it (``storage.interfaces.Checkpointable``), with the
    #: seed data files it was read from: a reset restores it instead of seeding again.
    seeded_checkpoint: Any = None
    #: One reset at a time.
    reset_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def free_blobs(self, keys: list[str]) -> None:
        """Delete blobs that no record references any more (after the metadata commit)."""
        for key in keys:
            await self.blobs.delete(key)
