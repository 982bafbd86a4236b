from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from graphattach.storage.conformance import BlobStoreConformance, MetadataStoreConformance
from graphattach.storage.memory import MemoryBlobStore, MemoryMetadataStore


class TestMemoryMetadataStore(MetadataStoreConformance):
    @pytest.fixture
    async def metadata_store(self) -> AsyncIterator[MemoryMetadataStore]:
        store = MemoryMetadataStore()
        await store.open()
        yield store
        await store.close()


class TestMemoryBlobStore(BlobStoreConformance):
    @pytest.fixture
    async def blob_store(self) -> AsyncIterator[MemoryBlobStore]:
        store = MemoryBlobStore()
        await store.open()
        yield store
        await store.close()


async def test_session_locks_are_forgotten_when_free() -> None:
    store = MemoryMetadataStore()
    async with store.lock_session("a"), store.lock_session("b"):
        assert len(store._locks) == 2
    assert len(store._locks) == 0
