"""The bundle every service works with: stores, settings, clock and token service."""

from __future__ import annotations

from dataclasses import dataclass, field

from graphattach.auth.team import TeamConfig
from graphattach.auth.tokens import TokenService
from graphattach.services.clock import Clock
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
    #: App registrations and team users (``--config``); empty in the zero-config default.
    team: TeamConfig = field(default_factory=TeamConfig)

    async def free_blobs(self, keys: list[str]) -> None:
        """Delete blobs that no record references any more (after the metadata commit)."""
        for key in keys:
            await self.blobs.delete(key)
