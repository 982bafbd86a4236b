"""``PostgresMetadataStore``: the conformance suite, migrations, and locks across OS processes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest

from graphattach.storage.conformance import (
    PersistentMetadataStoreConformance,
    can_lock,
    make_attachment,
    make_folder,
    make_item,
    make_session,
    make_user,
)
from graphattach.storage.interfaces import LimitExceeded
from graphattach.storage.postgres import PostgresMetadataStore, load_migrations, migrate, session_lock_key

Reopen = Callable[[PostgresMetadataStore], Awaitable[PostgresMetadataStore]]


@pytest.fixture
async def store(pg_url: str) -> AsyncIterator[PostgresMetadataStore]:
    store = PostgresMetadataStore(pg_url)
    await store.open()
    yield store
    await store.close()


class TestPostgresMetadataStore(PersistentMetadataStoreConformance):
    persistent = True

    @pytest.fixture
    async def metadata_store(self, store: PostgresMetadataStore) -> PostgresMetadataStore:
        return store

    @pytest.fixture
    async def reopen_metadata_store(self) -> AsyncIterator[Reopen]:
        opened: list[PostgresMetadataStore] = []

        async def reopen(old: PostgresMetadataStore) -> PostgresMetadataStore:
            await old.close()
            fresh = PostgresMetadataStore(old.url)
            await fresh.open()
            opened.append(fresh)
            return fresh

        yield reopen
        for fresh in opened:
            await fresh.close()

    @pytest.fixture
    def metadata_store_spec(self, pg_url: str) -> tuple[str, str]:
        return ("graphattach.storage.postgres:PostgresMetadataStore", pg_url)


# migrations ---------------------------------------------------------------------------------------


async def _versions(url: str) -> list[int]:
    conn = await asyncpg.connect(url)
    try:
        return [r[0] for r in await conn.fetch("SELECT version FROM graphattach_schema_migrations ORDER BY version")]
    finally:
        await conn.close()


def test_migrations_are_numbered() -> None:
    migrations = load_migrations()
    assert [version for version, _, _ in migrations] == list(range(1, len(migrations) + 1))
    assert migrations[0][1] == "0001_initial.sql"


async def test_migrations_are_applied_once(pg_url: str) -> None:
    for _ in range(3):
        store = PostgresMetadataStore(pg_url)
        await store.open()
        assert await store.schema_version() == len(load_migrations())
        await store.set_setting_if_absent("k", "v")
        await store.close()
    assert await _versions(pg_url) == list(range(1, len(load_migrations()) + 1))
    conn = await asyncpg.connect(pg_url)
    try:
        assert await migrate(conn) == []  # nothing pending
        tables = {r[0] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        columns = {
            r[0]
            for r in await conn.fetch("SELECT column_name FROM information_schema.columns WHERE table_name = 'items'")
        }
    finally:
        await conn.close()
    assert {"settings", "users", "folders", "items", "attachments", "upload_sessions"} <= tables
    assert "has_attachments" not in columns


async def test_refuses_a_newer_schema(pg_url: str) -> None:
    store = PostgresMetadataStore(pg_url)
    await store.open()
    await store.close()
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute("INSERT INTO graphattach_schema_migrations (version, name) VALUES (999, '0999_future.sql')")
    finally:
        await conn.close()
    with pytest.raises(RuntimeError, match="newer"):
        await PostgresMetadataStore(pg_url).open()


async def test_concurrent_opens_migrate_once(pg_url: str) -> None:
    stores = [PostgresMetadataStore(pg_url) for _ in range(6)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        assert await _versions(pg_url) == list(range(1, len(load_migrations()) + 1))
        await stores[0].add_user(make_user("a@contoso.example"))
        assert await stores[5].get_user_by_upn("A@contoso.example") is not None
    finally:
        for s in stores:
            await s.close()


async def test_not_open_is_an_error(pg_url: str) -> None:
    store = PostgresMetadataStore(pg_url)
    with pytest.raises(RuntimeError):
        await store.get_setting("x")
    with pytest.raises(RuntimeError):
        async with store.lock_session("s"):
            pass


async def test_pool_sizes_come_from_the_environment(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRAPHATTACH_PG_POOL_MAX", "3")
    monkeypatch.setenv("GRAPHATTACH_PG_LOCK_POOL_MAX", "2")
    store = PostgresMetadataStore(pg_url)
    await store.open()
    try:
        assert store.pool.get_max_size() == 3
        assert store._lock_pool is not None and store._lock_pool.get_max_size() == 2
        # more sessions locked at once than lock connections: the third waits, then gets one
        held = [store.lock_session(f"s{i}") for i in range(3)]
        await held[0].__aenter__()
        await held[1].__aenter__()
        third = asyncio.create_task(held[2].__aenter__())
        await asyncio.sleep(0.2)
        assert not third.done()
        await held[0].__aexit__(None, None, None)
        await asyncio.wait_for(third, 10)
        await held[1].__aexit__(None, None, None)
        await held[2].__aexit__(None, None, None)
    finally:
        await store.close()


# two stores on one database, as two processes would have -----------------------------------------


async def test_two_stores_share_limits_and_transitions(pg_url: str) -> None:
    first, second = PostgresMetadataStore(pg_url), PostgresMetadataStore(pg_url)
    await first.open()
    await second.open()
    try:
        user = make_user()
        await first.add_user(user)
        inbox = make_folder(user)
        await first.add_folder(inbox)
        item = make_item(inbox)
        await second.add_item(item)

        async def add(store: PostgresMetadataStore) -> bool:
            try:
                await store.add_attachment(make_attachment(item, size=10), max_count=7, max_total_size=1000)
            except LimitExceeded:
                return False
            return True

        results = await asyncio.gather(*(add(first if i % 2 else second) for i in range(30)))
        assert results.count(True) == 7
        assert len(await first.list_attachments(user.id, item.id)) == 7

        other = make_item(inbox)
        await first.add_item(other)
        session = make_session(other)
        await first.add_session(session)
        advanced = await asyncio.gather(
            *((first if i % 2 else second).advance_session(session.id, 0, 100 + i, (0, 99 + i)) for i in range(10))
        )
        assert advanced.count(True) == 1
        received = 100 + advanced.index(True)
        completions = await asyncio.gather(
            *(
                (first if i % 2 else second).complete_session(
                    session.id, received, make_attachment(other, blob_key=session.blob_key)
                )
                for i in range(6)
            )
        )
        assert completions.count(True) == 1
        assert len(await second.list_attachments(user.id, other.id)) == 1
    finally:
        await first.close()
        await second.close()


# locks --------------------------------------------------------------------------------------------


async def test_a_waiter_that_gives_up_leaves_no_lock_behind(store: PostgresMetadataStore, pg_url: str) -> None:
    """Cancelled waiters (of another store: this one's would queue in-process) discard their
    connection, so no advisory lock survives them."""
    other = PostgresMetadataStore(pg_url)
    await other.open()
    try:
        for _ in range(5):
            async with store.lock_session("session-c"):
                assert await can_lock(other, "session-c", 0.05) is False
        assert await can_lock(other, "session-c", 10) is True
    finally:
        await other.close()
    conn = await asyncpg.connect(pg_url)
    try:
        held = await conn.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND ((classid::bigint << 32) | objid::bigint) = $1",
            session_lock_key("session-c"),
        )
    finally:
        await conn.close()
    assert held == 0
    assert await can_lock(store, "session-c", 10) is True
