from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from graphattach.domain.models import UploadSession
from graphattach.storage.conformance import (
    PersistentMetadataStoreConformance,
    make_attachment,
    make_folder,
    make_item,
    make_session,
    make_user,
)
from graphattach.storage.interfaces import LimitExceeded
from graphattach.storage.sqlite import SqliteMetadataStore, load_migrations, split_statements

Reopen = Callable[[SqliteMetadataStore], Awaitable[SqliteMetadataStore]]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "metadata.sqlite3"


@pytest.fixture
async def reopen(db_path: Path) -> AsyncIterator[Reopen]:
    opened: list[SqliteMetadataStore] = []

    async def reopen(store: SqliteMetadataStore) -> SqliteMetadataStore:
        await store.close()
        fresh = SqliteMetadataStore(store.path)
        await fresh.open()
        opened.append(fresh)
        return fresh

    yield reopen
    for store in opened:
        await store.close()


class TestSqliteMetadataStore(PersistentMetadataStoreConformance):
    persistent = True

    @pytest.fixture
    async def metadata_store(self, db_path: Path) -> AsyncIterator[SqliteMetadataStore]:
        store = SqliteMetadataStore(db_path)
        await store.open()
        yield store
        await store.close()

    @pytest.fixture
    def reopen_metadata_store(self, reopen: Reopen) -> Reopen:
        return reopen

    @pytest.fixture
    def metadata_store_spec(self, db_path: Path) -> tuple[str, str]:
        return ("graphattach.storage.sqlite:SqliteMetadataStore", str(db_path))


async def _pragma(store: SqliteMetadataStore, name: str) -> object:
    return await store._run(lambda conn: conn.execute(f"PRAGMA {name}").fetchone()[0])


async def test_connection_settings(db_path: Path) -> None:
    store = SqliteMetadataStore(db_path)
    await store.open()
    try:
        assert await _pragma(store, "journal_mode") == "wal"
        assert await _pragma(store, "synchronous") == 2  # FULL
        assert await _pragma(store, "foreign_keys") == 1
        assert await _pragma(store, "busy_timeout") == 30_000
        assert await _pragma(store, "user_version") == len(load_migrations())
    finally:
        await store.close()


async def test_has_attachments_is_not_stored(db_path: Path) -> None:
    store = SqliteMetadataStore(db_path)
    await store.open()
    await store.close()
    with sqlite3.connect(db_path) as conn:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(items)")}
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    conn.close()
    assert "has_attachments" not in columns
    assert {"settings", "users", "folders", "items", "attachments", "upload_sessions"} <= tables


async def test_migrations_are_applied_once(db_path: Path) -> None:
    for _ in range(3):
        store = SqliteMetadataStore(db_path)
        await store.open()
        await store.set_setting_if_absent("k", "v")
        await store.close()
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(load_migrations())
    conn.close()


async def test_refuses_a_newer_schema(db_path: Path) -> None:
    store = SqliteMetadataStore(db_path)
    await store.open()
    await store.close()
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA user_version = 999")
    conn.commit()
    conn.close()
    with pytest.raises(RuntimeError, match="newer"):
        await SqliteMetadataStore(db_path).open()


def test_migrations_are_numbered_and_split() -> None:
    migrations = load_migrations()
    assert [version for version, _, _ in migrations] == list(range(1, len(migrations) + 1))
    assert migrations[0][1] == "0001_initial.sql"
    script = "-- comment\nCREATE TABLE a (x TEXT DEFAULT ';');\n\nCREATE TRIGGER t AFTER INSERT ON a\nBEGIN\n"
    script += "  SELECT 1;\n  SELECT 2;\nEND;\n-- trailing comment\n"
    statements = list(split_statements(script))
    assert len(statements) == 2
    assert statements[1].startswith("CREATE TRIGGER") and statements[1].endswith("END;")
    with pytest.raises(ValueError):
        list(split_statements("CREATE TABLE b (x"))


async def test_not_open_is_an_error(db_path: Path) -> None:
    with pytest.raises(RuntimeError):
        await SqliteMetadataStore(db_path).get_setting("x")


async def test_two_stores_on_one_file_share_limits(db_path: Path) -> None:
    """Two connections (as two processes would have) racing for the last attachment slots."""
    first, second = SqliteMetadataStore(db_path), SqliteMetadataStore(db_path)
    await first.open()
    await second.open()
    try:
        user = make_user()
        await first.add_user(user)
        inbox = make_folder(user)
        await first.add_folder(inbox)
        item = make_item(inbox)
        await second.add_item(item)

        async def add(store: SqliteMetadataStore) -> bool:
            try:
                await store.add_attachment(make_attachment(item, size=10), max_count=7, max_total_size=1000)
            except LimitExceeded:
                return False
            return True

        results = await asyncio.gather(*(add(first if i % 2 else second) for i in range(30)))
        assert results.count(True) == 7
        assert len(await first.list_attachments(user.id, item.id)) == 7
        assert (await second.get_user_by_upn(user.user_principal_name.upper())) == user
    finally:
        await first.close()
        await second.close()


# several OS processes ---------------------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from graphattach.storage.sqlite import SqliteMetadataStore

    async def main(path, mode, arg):
        store = SqliteMetadataStore(Path(path))
        await store.open()
        if mode == "open":
            from graphattach.storage.conformance import make_user
            await store.add_user(make_user(f"{arg}@contoso.example"))
            print("opened", flush=True)
            if len(sys.argv) > 4 and sys.argv[4] == "then-hang":
                await asyncio.sleep(3600)
        await store.close()

    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
    """
)


def _child(db_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db_path), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def _wait_for_line(process: subprocess.Popen[str], expected: str) -> None:
    assert process.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), 30)
    if line.strip() != expected:
        process.kill()
        _, err = process.communicate()
        pytest.fail(f"child said {line!r}, expected {expected!r}; stderr: {err}")


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[SqliteMetadataStore]:
    store = SqliteMetadataStore(db_path)
    await store.open()
    yield store
    await store.close()


async def _stored_session(store: SqliteMetadataStore) -> UploadSession:
    user = make_user()
    folder = make_folder(user)
    item = make_item(folder)
    session = make_session(item)
    await store.add_user(user)
    await store.add_folder(folder)
    await store.add_item(item)
    await store.add_session(session)
    return session


async def test_a_lock_file_lives_as_long_as_its_session(store: SqliteMetadataStore) -> None:
    session = await _stored_session(store)
    lock = store.lock_dir / f"{session.id}.lock"
    async with store.lock_session(session.id):
        assert lock.exists()
    inode = lock.stat().st_ino
    async with store.lock_session(session.id):  # the same file again: none made and removed per PUT
        assert lock.stat().st_ino == inode
    async with store.lock_session(session.id):
        assert await store.delete_session(session.id) == session
        assert lock.exists()  # still held: it goes when the holder lets go
    assert not lock.exists()
    async with store.lock_session("../../weird id/"):
        names = os.listdir(store.lock_dir)
        assert len(names) == 1 and names[0].startswith("h-")


async def test_sweep_locks_removes_stale_files_of_sessions_that_are_gone(store: SqliteMetadataStore) -> None:
    live = await _stored_session(store)
    for name in (live.id, "session-gone", "../../weird id/", "session-held"):
        async with store.lock_session(name):
            pass
    assert len(os.listdir(store.lock_dir)) == 4
    # deleted without holding the lock: the file stays for the sweeper
    deleted = await _stored_session(store)
    async with store.lock_session(deleted.id):
        pass
    await store.delete_session(deleted.id)
    # younger than the cutoff: all stay
    assert await store.sweep_locks(datetime.now(UTC) - timedelta(hours=1)) == 0
    assert len(os.listdir(store.lock_dir)) == 5
    later = datetime.now(UTC) + timedelta(seconds=5)
    async with store.lock_session("session-held"):  # in use: stays, whatever its session
        assert await store.sweep_locks(later) == 3
    assert sorted(os.listdir(store.lock_dir)) == sorted([f"{live.id}.lock", "session-held.lock"])
    # and the lock still works on a file the sweeper removed
    async with store.lock_session("session-gone"):
        assert (store.lock_dir / "session-gone.lock").exists()


async def test_processes_opening_a_fresh_file_at_once(db_path: Path) -> None:
    children = [_child(db_path, "open", f"user{i}") for i in range(4)]
    try:
        for child in children:
            await _wait_for_line(child, "opened")
            assert child.wait(60) == 0
    finally:
        for child in children:
            child.kill()
            child.communicate()
    store = SqliteMetadataStore(db_path)
    await store.open()
    try:
        assert len(await store.list_users()) == 4
        assert await _pragma(store, "user_version") == len(load_migrations())
    finally:
        await store.close()


async def test_a_returned_write_survives_the_process_being_killed(db_path: Path) -> None:
    child = _child(db_path, "open", "survivor", "then-hang")
    try:
        await _wait_for_line(child, "opened")
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
    finally:
        child.kill()
        child.communicate()
    store = SqliteMetadataStore(db_path)
    await store.open()
    try:
        assert await store.get_user_by_upn("SURVIVOR@contoso.example") is not None
    finally:
        await store.close()
