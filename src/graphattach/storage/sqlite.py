"""``MetadataStore`` on one SQLite file that several server processes may share.

The stdlib ``sqlite3`` connection lives on one dedicated worker thread; every method sends one
function there, so at most one statement runs at a time per store and the event loop never
blocks on disk. (Point reads on the event loop when the thread was idle were tried: they cut
the server's CPU per ``$batch`` by a fifth, but its wall time went both ways on a loaded machine;
not kept, bench/README.md.)
The database runs in WAL mode with ``synchronous=FULL``: a method that returns has committed
durably (the server acknowledges only after that). Writes that check an invariant
(uniqueness, attachment limits, compare-and-set) run inside ``BEGIN IMMEDIATE`` so that the
check and the write see the same state even with other processes writing. ``busy_timeout`` makes
processes wait for each other's write lock instead of failing.

Datetimes are stored as integer microseconds since the epoch (UTC) and come back as aware UTC
datetimes. Graph properties that are not fields are a JSON text column ``data``.

Schema changes are SQL files in ``migrations/sqlite/NNNN_name.sql``, applied in order by
``open()`` inside one ``BEGIN IMMEDIATE`` transaction, the version kept in ``PRAGMA user_version``.

``lock_session`` combines an ``asyncio.Lock`` per session id (tasks of this process) with an
``fcntl.flock`` on ``<db dir>/locks/<session id>.lock`` (other processes; taken on the event loop
when it is free, waited for in a thread otherwise); the kernel drops a ``flock`` when its holder
dies, however it dies. A lock file lives as long as its session: the holder that deletes the
session removes it (creating and removing it around every PUT slowed small PUTs measurably,
bench/README.md); ``sweep_locks`` removes the files of sessions that are gone (a late request
re-creates one). The lock primitives are in ``storage/filelocks.py``.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import orjson

from graphattach.domain.models import (
    SESSION_STATES,
    Attachment,
    Folder,
    FolderKind,
    Item,
    ItemKind,
    UploadSession,
    User,
)
from graphattach.domain.subscriptions import Claim, DeliveryRecord, DeliveryState, Notification, Outbox, Subscription
from graphattach.storage import sql
from graphattach.storage._common import KeyedLocks, from_micros, to_micros
from graphattach.storage._subscriptions import (
    MAX_BATCH,
    decode_subscription,
    encode_body,
    encode_subscription,
    notification_from,
    record_from,
)
from graphattach.storage.filelocks import (
    flock_in_daemon_thread,
    flock_release,
    flock_try,
    flock_unlock,
    lock_file_name,
)
from graphattach.storage.interfaces import (
    ENDED_SESSIONS_KEPT,
    RESET_GENERATION,
    AnnouncementLost,
    Conflict,
    ItemChange,
    ItemUsage,
    LimitExceeded,
    MailboxUsage,
    RecordNotFound,
    SessionUsage,
)
from graphattach.storage.rows import RowMapper
from graphattach.storage.sql import integrity_error, json_text

__all__ = ["SqliteMetadataStore", "load_migrations"]

R = TypeVar("R")


def load_migrations() -> list[tuple[int, str, str]]:
    """The packaged sqlite migrations (``storage.sql.load_migrations``)."""
    return sql.load_migrations("sqlite")


def split_statements(script: str) -> Iterator[str]:
    """The complete SQL statements of ``script`` (``executescript`` would commit our transaction)."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statement = buffer.strip()
            buffer = ""
            if statement.strip(";").strip() and not _only_comments(statement):
                yield statement
    if buffer.strip() and not _only_comments(buffer):
        raise ValueError(f"incomplete SQL statement at the end of a migration: {buffer.strip()[:80]!r}")


def _only_comments(sql: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in sql.splitlines())


# rows <-> records ---------------------------------------------------------------------------------


_rows = RowMapper(from_micros)
_user, _folder, _item, _attachment, _session = (_rows.user, _rows.folder, _rows.item, _rows.attachment, _rows.session)


_ITEM_COLUMNS = """
    items.id, items.user_id, items.kind, items.folder_id, items.created, items.last_modified,
    items.change_key, items.data,
    EXISTS (SELECT 1 FROM attachments a
            WHERE a.user_id = items.user_id AND a.item_id = items.id AND a.is_inline = 0)
        AS has_attachments
"""

#: count, weight (``limit_weight``: raw bytes of files, ``size`` of the rest) and ``size`` of an
#: item's attachments.
_ITEM_USAGE_SQL = (
    "SELECT count(*), coalesce(sum(CASE kind WHEN 'file' THEN content_length ELSE size END), 0),"
    " coalesce(sum(size), 0) FROM attachments WHERE user_id = ? AND item_id = ?"
)

_UNREFERENCED = """
    SELECT DISTINCT value FROM json_each(?)
    WHERE NOT EXISTS (SELECT 1 FROM attachments WHERE blob_key = value)
      AND NOT EXISTS (SELECT 1 FROM upload_sessions WHERE blob_key = value AND ended IS NULL AND state <> 'completed')
      AND NOT EXISTS (SELECT 1 FROM blob_announcements WHERE blob_key = value)
    ORDER BY value
"""


def _integrity(exc: sqlite3.IntegrityError, what: str) -> Exception:
    name = getattr(exc, "sqlite_errorname", "")
    return integrity_error(exc, what, foreign_key=name == "SQLITE_CONSTRAINT_FOREIGNKEY" or "FOREIGN KEY" in str(exc))


@contextmanager
def _transaction(conn: sqlite3.Connection, mode: str = "IMMEDIATE") -> Iterator[None]:
    conn.execute(f"BEGIN {mode}")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


@contextmanager
def _unsynced(conn: sqlite3.Connection) -> Iterator[None]:
    """Commits in here are not synced (WAL, ``synchronous=NORMAL``): visible to every connection
    at once and kept if the process is killed, but an OS crash may lose them. For commits whose
    loss is repaired from elsewhere; the next synced commit syncs them too."""
    conn.execute("PRAGMA synchronous = NORMAL")
    try:
        yield
    finally:
        conn.execute("PRAGMA synchronous = FULL")


class SqliteMetadataStore:
    """``MetadataStore`` on the SQLite file at ``path`` (created if absent)."""

    answers_inline = False  # every call runs in the store's thread

    def __init__(self, path: Path | str, *, busy_timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.lock_dir = self.path.parent / "locks"
        self._busy_timeout = busy_timeout
        self._conn: sqlite3.Connection | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._locks = KeyedLocks()
        #: Session ids whose lock this process holds, and those of them deleted meanwhile (their
        #: lock file goes when the lock is released).
        self._held: set[str] = set()
        self._retired: set[str] = set()

    # plumbing -----------------------------------------------------------------------------------

    async def _run(self, fn: Callable[..., R], *args: Any) -> R:
        if self._executor is None or self._conn is None:
            raise RuntimeError("the store is not open")
        conn = self._conn
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(conn, *args))

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
            self._retry_busy(lambda: conn.execute("PRAGMA journal_mode = WAL").fetchone())
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            self._migrate(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _retry_busy(self, fn: Callable[[], Any]) -> Any:
        deadline = time.monotonic() + self._busy_timeout
        while True:
            try:
                return fn()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def _migrate(self, conn: sqlite3.Connection) -> None:
        migrations = load_migrations()
        latest = migrations[-1][0] if migrations else 0

        def apply() -> None:
            with _transaction(conn):
                current = conn.execute("PRAGMA user_version").fetchone()[0]
                if current > latest:
                    raise RuntimeError(f"{self.path} has schema version {current}, newer than this code ({latest})")
                for version, _name, sql in migrations:
                    if version <= current:
                        continue
                    for statement in split_statements(sql):
                        conn.execute(statement)
                    conn.execute(f"PRAGMA user_version = {version}")

        self._retry_busy(apply)

    async def open(self) -> None:
        if self._conn is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lock_dir.mkdir(parents=True, exist_ok=True)
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="graphattach-sqlite")
        try:
            self._conn = await asyncio.get_running_loop().run_in_executor(executor, self._connect)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        self._executor = executor

    async def close(self) -> None:
        conn, executor = self._conn, self._executor
        if conn is None or executor is None:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(executor, conn.close)
        finally:
            self._conn = self._executor = None
            executor.shutdown(wait=False)

    async def reset(self) -> None:
        def run(conn: sqlite3.Connection) -> None:
            with _transaction(conn):
                for table in (
                    "attachments",
                    "items",
                    "folders",
                    "upload_sessions",
                    "users",
                    "blob_announcements",
                    "item_versions",
                    "change_marks",
                    "notification_outbox",
                    "subscriptions",
                    "delivery_log",
                ):
                    conn.execute(f"DELETE FROM {table}")
                for counter in ("subscriptions_generation", RESET_GENERATION):
                    conn.execute(
                        "INSERT INTO settings (key, value) VALUES (?, '1')"
                        " ON CONFLICT (key) DO UPDATE SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)",
                        (counter,),
                    )

        await self._run(run)

    # settings -----------------------------------------------------------------------------------

    async def get_setting(self, key: str) -> str | None:
        def run(conn: sqlite3.Connection) -> str | None:
            row = conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
            return row["value"] if row else None

        return await self._run(run)

    async def set_setting_if_absent(self, key: str, value: str) -> str:
        def run(conn: sqlite3.Connection) -> str:
            with _transaction(conn):
                conn.execute("INSERT OR IGNORE INTO settings (key, value) VALUES (?, ?)", (key, value))
                stored: str = conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()[0]
            return stored

        return await self._run(run)

    # users --------------------------------------------------------------------------------------

    async def add_user(self, user: User) -> None:
        def run(conn: sqlite3.Connection) -> None:
            try:
                with _transaction(conn):
                    conn.execute(
                        "INSERT INTO users (id, upn, display_name, mail, max_message_size, created, data)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (
                            user.id,
                            user.user_principal_name,
                            user.display_name,
                            user.mail,
                            user.max_message_size,
                            to_micros(user.created),
                            json_text(user.data),
                        ),
                    )
            except sqlite3.IntegrityError as exc:
                raise Conflict(f"user {user.id!r} / {user.user_principal_name!r} exists") from exc

        await self._run(run)

    async def get_user(self, user_id: str) -> User | None:
        def run(conn: sqlite3.Connection) -> User | None:
            row = conn.execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchone()
            return _user(row) if row else None

        return await self._run(run)

    async def get_user_by_upn(self, upn: str) -> User | None:
        def run(conn: sqlite3.Connection) -> User | None:
            row = conn.execute("SELECT * FROM users WHERE upn = ?", (upn,)).fetchone()
            return _user(row) if row else None

        return await self._run(run)

    async def list_users(self) -> list[User]:
        def run(conn: sqlite3.Connection) -> list[User]:
            return [_user(r) for r in conn.execute("SELECT * FROM users ORDER BY created, seq")]

        return await self._run(run)

    async def update_user(self, user: User) -> None:
        def run(conn: sqlite3.Connection) -> None:
            try:
                with _transaction(conn):
                    cursor = conn.execute(
                        "UPDATE users SET upn = ?, display_name = ?, mail = ?, max_message_size = ?,"
                        " created = ?, data = ? WHERE id = ?",
                        (
                            user.user_principal_name,
                            user.display_name,
                            user.mail,
                            user.max_message_size,
                            to_micros(user.created),
                            json_text(user.data),
                            user.id,
                        ),
                    )
                    if cursor.rowcount != 1:
                        raise RecordNotFound(user.id)
            except sqlite3.IntegrityError as exc:
                raise Conflict(f"user principal name {user.user_principal_name!r} is taken") from exc

        await self._run(run)

    # folders ------------------------------------------------------------------------------------

    async def add_folder(self, folder: Folder) -> None:
        def run(conn: sqlite3.Connection) -> None:
            try:
                with _transaction(conn):
                    conn.execute(
                        "INSERT INTO folders (id, user_id, kind, display_name, parent_id, well_known_name,"
                        " created, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            folder.id,
                            folder.user_id,
                            folder.kind,
                            folder.display_name,
                            folder.parent_id,
                            folder.well_known_name,
                            to_micros(folder.created),
                            json_text(folder.data),
                        ),
                    )
            except sqlite3.IntegrityError as exc:
                raise _integrity(exc, folder.parent_id or folder.user_id) from exc

        await self._run(run)

    async def get_folder(self, user_id: str, folder_id: str) -> Folder | None:
        def run(conn: sqlite3.Connection) -> Folder | None:
            row = conn.execute("SELECT * FROM folders WHERE user_id = ? AND id = ?", (user_id, folder_id)).fetchone()
            return _folder(row) if row else None

        return await self._run(run)

    async def get_well_known_folder(self, user_id: str, kind: FolderKind, name: str) -> Folder | None:
        def run(conn: sqlite3.Connection) -> Folder | None:
            row = conn.execute(
                "SELECT * FROM folders WHERE user_id = ? AND kind = ? AND well_known_name = ?",
                (user_id, kind, name),
            ).fetchone()
            return _folder(row) if row else None

        return await self._run(run)

    async def list_folders(
        self, user_id: str, kind: FolderKind, parent_id: str | None, *, any_parent: bool = False
    ) -> list[Folder]:
        def run(conn: sqlite3.Connection) -> list[Folder]:
            if any_parent:
                rows = conn.execute(
                    "SELECT * FROM folders WHERE user_id = ? AND kind = ? ORDER BY created, seq",
                    (user_id, kind),
                )
            else:
                rows = conn.execute(
                    "SELECT * FROM folders WHERE user_id = ? AND kind = ? AND parent_id IS ? ORDER BY created, seq",
                    (user_id, kind, parent_id),
                )
            return [_folder(r) for r in rows]

        return await self._run(run)

    async def update_folder(self, folder: Folder) -> None:
        def run(conn: sqlite3.Connection) -> None:
            try:
                with _transaction(conn):
                    cursor = conn.execute(
                        "UPDATE folders SET kind = ?, display_name = ?, parent_id = ?, well_known_name = ?,"
                        " created = ?, data = ? WHERE user_id = ? AND id = ?",
                        (
                            folder.kind,
                            folder.display_name,
                            folder.parent_id,
                            folder.well_known_name,
                            to_micros(folder.created),
                            json_text(folder.data),
                            folder.user_id,
                            folder.id,
                        ),
                    )
                    if cursor.rowcount != 1:
                        raise RecordNotFound(folder.id)
            except sqlite3.IntegrityError as exc:
                raise _integrity(exc, folder.parent_id or folder.id) from exc

        await self._run(run)

    async def delete_folder(self, user_id: str, folder_id: str, *, outbox: Outbox | None = None) -> list[str]:
        def run(conn: sqlite3.Connection) -> list[str]:
            with _transaction(conn):
                tree = [
                    r[0]
                    for r in conn.execute(
                        "WITH RECURSIVE tree (id) AS ("
                        "  SELECT id FROM folders WHERE user_id = ?1 AND id = ?2"
                        "  UNION SELECT f.id FROM folders f JOIN tree ON f.parent_id = tree.id"
                        "  WHERE f.user_id = ?1"
                        ") SELECT id FROM tree",
                        (user_id, folder_id),
                    )
                ]
                if not tree:
                    return []
                folders = _json_list(tree)
                items_in_tree = (
                    "SELECT id FROM items WHERE user_id = ?1 AND folder_id IN (SELECT value FROM json_each(?2))"
                )
                keys = [
                    r[0]
                    for r in conn.execute(
                        "SELECT DISTINCT blob_key FROM attachments"
                        f" WHERE user_id = ?1 AND blob_key IS NOT NULL AND item_id IN ({items_in_tree})",
                        (user_id, folders),
                    )
                ]
                conn.execute(
                    f"DELETE FROM attachments WHERE user_id = ?1 AND item_id IN ({items_in_tree})",
                    (user_id, folders),
                )
                conn.execute(
                    "DELETE FROM items WHERE user_id = ?1 AND folder_id IN (SELECT value FROM json_each(?2))",
                    (user_id, folders),
                )
                conn.execute(
                    "DELETE FROM folders WHERE user_id = ?1 AND id IN (SELECT value FROM json_each(?2))",
                    (user_id, folders),
                )
                _queue(conn, outbox)
                return _unreferenced(conn, keys)

        return await self._run(run)

    # items --------------------------------------------------------------------------------------

    async def add_item(self, item: Item, *, outbox: Outbox | None = None) -> None:
        def run(conn: sqlite3.Connection) -> None:
            try:
                with _transaction(conn):
                    _insert_item(conn, item)
                    _queue(conn, outbox)
            except sqlite3.IntegrityError as exc:
                raise _integrity(exc, item.folder_id) from exc

        await self._run(run)

    async def get_item(self, user_id: str, item_id: str) -> Item | None:
        def run(conn: sqlite3.Connection) -> Item | None:
            row = conn.execute(
                f"SELECT {_ITEM_COLUMNS} FROM items WHERE user_id = ? AND id = ?", (user_id, item_id)
            ).fetchone()
            return _item(row) if row else None

        return await self._run(run)

    async def list_items(
        self,
        user_id: str,
        kind: ItemKind,
        folder_ids: list[str] | None,
        *,
        skip: int = 0,
        top: int | None = None,
    ) -> tuple[list[Item], int]:
        if skip < 0 or (top is not None and top < 0):
            raise ValueError("skip and top must not be negative")

        def run(conn: sqlite3.Connection) -> tuple[list[Item], int]:
            where = "items.user_id = ? AND items.kind = ?"
            params: list[Any] = [user_id, kind]
            if folder_ids is not None:
                where += " AND items.folder_id IN (SELECT value FROM json_each(?))"
                params.append(_json_list(folder_ids))
            with _transaction(conn, "DEFERRED"):  # one snapshot for the count and the page
                total = conn.execute(f"SELECT count(*) FROM items WHERE {where}", params).fetchone()[0]
                rows = conn.execute(
                    f"SELECT {_ITEM_COLUMNS} FROM items WHERE {where}"
                    " ORDER BY items.created DESC, items.id DESC LIMIT ? OFFSET ?",
                    [*params, -1 if top is None else top, skip],
                ).fetchall()
            return [_item(r) for r in rows], total

        return await self._run(run)

    async def search_items(
        self, user_id: str, kind: ItemKind, folder_ids: list[str] | None, needle: str, limit: int
    ) -> list[Item]:
        def run(conn: sqlite3.Connection) -> list[Item]:
            where = "items.user_id = ? AND items.kind = ? AND items.data LIKE ? ESCAPE '\\'"
            pattern = "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            params: list[Any] = [user_id, kind, pattern]
            if folder_ids is not None:
                where += " AND items.folder_id IN (SELECT value FROM json_each(?))"
                params.append(_json_list(folder_ids))
            rows = conn.execute(
                f"SELECT {_ITEM_COLUMNS} FROM items WHERE {where} ORDER BY items.created DESC, items.id DESC LIMIT ?",
                [*params, limit],
            ).fetchall()
            return [_item(r) for r in rows]

        return await self._run(run)

    async def update_item(self, item: Item, *, outbox: Outbox | None = None) -> None:
        def run(conn: sqlite3.Connection) -> None:
            try:
                with _transaction(conn):
                    _update_item(conn, item)
                    _queue(conn, outbox)
            except sqlite3.IntegrityError as exc:
                raise _integrity(exc, item.folder_id) from exc

        await self._run(run)

    async def delete_item(self, user_id: str, item_id: str, *, outbox: Outbox | None = None) -> list[str]:
        def run(conn: sqlite3.Connection) -> list[str]:
            with _transaction(conn):
                keys = [
                    r[0]
                    for r in conn.execute(
                        "SELECT DISTINCT blob_key FROM attachments"
                        " WHERE user_id = ? AND item_id = ? AND blob_key IS NOT NULL",
                        (user_id, item_id),
                    )
                ]
                conn.execute("DELETE FROM attachments WHERE user_id = ? AND item_id = ?", (user_id, item_id))
                done = conn.execute("DELETE FROM items WHERE user_id = ? AND id = ?", (user_id, item_id))
                if done.rowcount:
                    _queue(conn, outbox)
                return _unreferenced(conn, keys)

        return await self._run(run)

    # change tracking (kept by triggers, migrations/sqlite/0003_item_changes.sql) ------------------

    async def change_mark(self, user_id: str) -> int:
        def run(conn: sqlite3.Connection) -> int:
            row = conn.execute("SELECT value FROM change_marks WHERE user_id = ?", (user_id,)).fetchone()
            return int(row[0]) if row else 0

        return await self._run(run)

    async def item_changes(
        self, user_id: str, folder_id: str, *, after: int, upto: int, limit: int
    ) -> list[ItemChange]:
        def run(conn: sqlite3.Connection) -> list[ItemChange]:
            rows = conn.execute(
                f"SELECT v.item_id AS change_item, v.seq AS change_seq, v.removed AS change_removed,"
                f" items.seq AS present, {_ITEM_COLUMNS} FROM item_versions v"
                " LEFT JOIN items ON v.removed = 0 AND items.user_id = v.user_id AND items.id = v.item_id"
                " WHERE v.user_id = ? AND v.folder_id = ? AND v.seq > ? AND v.seq <= ? ORDER BY v.seq LIMIT ?",
                (user_id, folder_id, after, upto, limit),
            )
            return [
                ItemChange(
                    r["change_item"],
                    int(r["change_seq"]),
                    bool(r["change_removed"]),
                    _item(r) if r["present"] is not None else None,
                )
                for r in rows
            ]

        return await self._run(run)

    # full-text candidates (migrations/sqlite/0004_message_text.sql) ----------------------------

    async def messages_with_words(self, user_id: str, folder_ids: list[str] | None, prefixes: list[str]) -> list[Item]:
        if not prefixes or not all(p.isascii() and p.isalnum() for p in prefixes):
            raise ValueError("prefixes must be ASCII letters and digits")
        match = " AND ".join(f'"{p}"*' for p in prefixes)

        def run(conn: sqlite3.Connection) -> list[Item]:
            where = "message_text MATCH ? AND message_text.user_id = ?"
            params: list[Any] = [match, user_id]
            if folder_ids is not None:
                where += " AND message_text.folder_id IN (SELECT value FROM json_each(?))"
                params.append(_json_list(folder_ids))
            rows = conn.execute(
                f"SELECT {_ITEM_COLUMNS} FROM message_text JOIN items ON items.seq = message_text.rowid WHERE {where}",
                params,
            ).fetchall()
            return [_item(r) for r in rows]

        return await self._run(run)

    # attachments --------------------------------------------------------------------------------

    async def add_attachment(
        self,
        attachment: Attachment,
        *,
        max_count: int | None = None,
        max_total_size: int | None = None,
        announced: bool = False,
        outbox: Outbox | None = None,
    ) -> None:
        def run(conn: sqlite3.Connection) -> None:
            with _transaction(conn):
                if announced:
                    _consume_announcement(conn, attachment.blob_key)
                _insert_attachment(conn, attachment, max_count, max_total_size)
                _queue(conn, outbox)

        await self._run(run)

    async def send_item(
        self,
        draft: Item,
        sent: Item | None,
        copies: list[tuple[Item, list[Attachment]]],
        sources: list[str],
        *,
        outbox: Outbox | None = None,
    ) -> list[str]:
        def run(conn: sqlite3.Connection) -> list[str]:
            with _transaction(conn):  # BEGIN IMMEDIATE: no other writer until the commit
                row = conn.execute(
                    "SELECT change_key FROM items WHERE user_id = ? AND id = ?", (draft.user_id, draft.id)
                ).fetchone()
                if row is None:
                    raise RecordNotFound(draft.id)
                present = [
                    r[0]
                    for r in conn.execute(
                        "SELECT id FROM attachments WHERE user_id = ? AND item_id = ? ORDER BY seq",
                        (draft.user_id, draft.id),
                    )
                ]
                if row[0] != draft.change_key or present != sources:
                    raise Conflict(f"item {draft.id!r} changed")
                keys: list[str] = []
                try:
                    if sent is None:
                        keys = [
                            r[0]
                            for r in conn.execute(
                                "DELETE FROM attachments WHERE user_id = ? AND item_id = ? RETURNING blob_key",
                                (draft.user_id, draft.id),
                            )
                            if r[0] is not None
                        ]
                        conn.execute("DELETE FROM items WHERE user_id = ? AND id = ?", (draft.user_id, draft.id))
                    else:
                        _update_item(conn, sent)
                    for item, attachments in copies:
                        _insert_item(conn, item)
                        for attachment in attachments:
                            _insert_attachment(conn, attachment, None, None)
                except sqlite3.IntegrityError as exc:
                    raise _integrity(exc, draft.id) from exc
                _queue(conn, outbox)
                return _unreferenced(conn, keys)

        return await self._run(run)

    async def get_attachment(self, user_id: str, item_id: str, attachment_id: str) -> Attachment | None:
        def run(conn: sqlite3.Connection) -> Attachment | None:
            row = conn.execute(
                "SELECT * FROM attachments WHERE user_id = ? AND item_id = ? AND id = ?",
                (user_id, item_id, attachment_id),
            ).fetchone()
            return _attachment(row) if row else None

        return await self._run(run)

    async def list_attachments(self, user_id: str, item_id: str) -> list[Attachment]:
        def run(conn: sqlite3.Connection) -> list[Attachment]:
            rows = conn.execute(
                "SELECT * FROM attachments WHERE user_id = ? AND item_id = ? ORDER BY seq", (user_id, item_id)
            )
            return [_attachment(r) for r in rows]

        return await self._run(run)

    async def item_usage(self, user_id: str, item_id: str) -> ItemUsage:
        def run(conn: sqlite3.Connection) -> ItemUsage:
            row = conn.execute(_ITEM_USAGE_SQL, (user_id, item_id)).fetchone()
            return ItemUsage(row[0], row[1], row[2])

        return await self._run(run)

    async def items_usage(self, user_id: str, item_ids: list[str]) -> dict[str, ItemUsage]:
        def run(conn: sqlite3.Connection) -> dict[str, ItemUsage]:
            rows = conn.execute(
                "SELECT item_id, count(*), coalesce(sum(CASE kind WHEN 'file' THEN content_length ELSE size END), 0),"
                " coalesce(sum(size), 0) FROM attachments"
                " WHERE user_id = ? AND item_id IN (SELECT value FROM json_each(?)) GROUP BY item_id",
                (user_id, _json_list(item_ids)),
            )
            found = {r[0]: ItemUsage(r[1], r[2], r[3]) for r in rows}
            return {i: found.get(i, ItemUsage(0, 0, 0)) for i in item_ids}

        return await self._run(run)

    async def delete_attachment(
        self, user_id: str, item_id: str, attachment_id: str, *, outbox: Outbox | None = None
    ) -> list[str] | None:
        def run(conn: sqlite3.Connection) -> list[str] | None:
            with _transaction(conn):
                row = conn.execute(
                    "DELETE FROM attachments WHERE user_id = ? AND item_id = ? AND id = ? RETURNING blob_key",
                    (user_id, item_id, attachment_id),
                ).fetchone()
                if row is None:
                    return None
                _queue(conn, outbox)
                return _unreferenced(conn, [row[0]] if row[0] is not None else [])

        return await self._run(run)

    # upload sessions ----------------------------------------------------------------------------

    async def add_session(self, session: UploadSession) -> None:
        if session.state not in SESSION_STATES:
            raise ValueError(session.state)
        last = session.last_range or (None, None)

        def run(conn: sqlite3.Connection) -> None:
            try:
                with _transaction(conn):
                    conn.execute(
                        "INSERT INTO upload_sessions (id, user_id, item_id, item_kind, name, content_type,"
                        " is_inline, content_id, size, received, blob_key, state, expires, created,"
                        " attachment_id, last_start, last_end)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            session.id,
                            session.user_id,
                            session.item_id,
                            session.item_kind,
                            session.name,
                            session.content_type,
                            int(session.is_inline),
                            session.content_id,
                            session.size,
                            session.received,
                            session.blob_key,
                            session.state,
                            to_micros(session.expires),
                            to_micros(session.created),
                            session.attachment_id,
                            last[0],
                            last[1],
                        ),
                    )
            except sqlite3.IntegrityError as exc:
                raise Conflict(f"session {session.id!r} exists") from exc

        await self._run(run)

    async def get_session(self, session_id: str) -> UploadSession | None:
        def run(conn: sqlite3.Connection) -> UploadSession | None:
            row = conn.execute("SELECT * FROM upload_sessions WHERE id = ? AND ended IS NULL", (session_id,)).fetchone()
            return _session(row) if row else None

        return await self._run(run)

    async def session_usage(self, session_id: str) -> SessionUsage:
        """The session, its user's maximum message size and its item's attachment bytes, in one
        statement (one snapshot, one trip to the store's thread)."""

        def run(conn: sqlite3.Connection) -> SessionUsage:
            row = conn.execute(
                "SELECT s.*, u.max_message_size AS usage_max,"
                " (SELECT coalesce(sum(a.content_length), 0) FROM attachments a"
                "  WHERE a.user_id = s.user_id AND a.item_id = s.item_id) AS usage_bytes"
                " FROM upload_sessions s LEFT JOIN users u ON u.id = s.user_id WHERE s.id = ? AND s.ended IS NULL",
                (session_id,),
            ).fetchone()
            if row is None:
                return SessionUsage(None, None, 0)
            return SessionUsage(_session(row), row["usage_max"], row["usage_bytes"])

        return await self._run(run)

    async def advance_session(
        self, session_id: str, expected_received: int, received: int, last_range: tuple[int, int]
    ) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            # Not synced: the blob store made the range durable and recorded it
            # (``BlobStore.append``), so after an OS crash that loses this commit the session's
            # progress comes back from the blob (``services.uploads.recover_sessions``); a killed
            # process loses nothing either way.
            with _unsynced(conn), _transaction(conn):
                cursor = conn.execute(
                    "UPDATE upload_sessions SET received = ?, last_start = ?, last_end = ?"
                    " WHERE id = ? AND state = 'active' AND received = ? AND ended IS NULL",
                    (received, last_range[0], last_range[1], session_id, expected_received),
                )
                return cursor.rowcount == 1

        return await self._run(run)

    async def complete_session(
        self,
        session_id: str,
        expected_received: int,
        attachment: Attachment,
        *,
        max_count: int | None = None,
        max_total_size: int | None = None,
        outbox: Outbox | None = None,
    ) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            with _transaction(conn):
                row = conn.execute(
                    "SELECT size FROM upload_sessions"
                    " WHERE id = ? AND state = 'active' AND received = ? AND ended IS NULL",
                    (session_id, expected_received),
                ).fetchone()
                if row is None:
                    return False
                size = row["size"]
                _insert_attachment(conn, attachment, max_count, max_total_size)
                conn.execute(
                    "UPDATE upload_sessions SET state = 'completed', received = ?, attachment_id = ?,"
                    " last_start = ?, last_end = ? WHERE id = ?",
                    (size, attachment.id, expected_received, size - 1, session_id),
                )
                _queue(conn, outbox)
                return True

        return await self._run(run)

    async def set_session_state(self, session_id: str, state: str) -> UploadSession | None:
        if state not in SESSION_STATES:
            raise ValueError(state)

        def run(conn: sqlite3.Connection) -> UploadSession | None:
            with _transaction(conn):
                row = conn.execute(
                    "SELECT * FROM upload_sessions WHERE id = ? AND ended IS NULL", (session_id,)
                ).fetchone()
                if row is None:
                    return None
                conn.execute("UPDATE upload_sessions SET state = ? WHERE id = ?", (state, session_id))
                return _session(row)

        return await self._run(run)

    async def end_session(
        self, session_id: str, state: str, ended: datetime, *, keep: int = ENDED_SESSIONS_KEPT
    ) -> UploadSession | None:
        if state not in SESSION_STATES or state == "active":
            raise ValueError(state)

        def run(conn: sqlite3.Connection) -> UploadSession | None:
            with _transaction(conn):
                row = conn.execute(
                    "SELECT * FROM upload_sessions WHERE id = ? AND ended IS NULL", (session_id,)
                ).fetchone()
                if row is None:
                    return None
                conn.execute(
                    "UPDATE upload_sessions SET state = ?, ended = ? WHERE id = ?",
                    (state, to_micros(ended), session_id),
                )
                conn.execute(
                    "DELETE FROM upload_sessions WHERE user_id = ? AND ended IS NOT NULL AND seq NOT IN"
                    " (SELECT seq FROM upload_sessions WHERE user_id = ? AND ended IS NOT NULL"
                    "  ORDER BY ended DESC, seq DESC LIMIT ?)",
                    (row["user_id"], row["user_id"], max(keep, 0)),
                )
                return _session(row)

        before = await self._run(run)
        if before is not None and session_id in self._held:
            self._retired.add(session_id)  # the lock file goes when the holder releases it
        return before

    async def delete_session(self, session_id: str) -> UploadSession | None:
        def run(conn: sqlite3.Connection) -> UploadSession | None:
            with _transaction(conn):
                row = conn.execute(
                    "DELETE FROM upload_sessions WHERE id = ? AND ended IS NULL RETURNING *", (session_id,)
                ).fetchone()
                return _session(row) if row else None

        deleted = await self._run(run)
        if deleted is not None and session_id in self._held:
            self._retired.add(session_id)  # the lock file goes when the holder releases it
        return deleted

    async def recent_sessions(self, limit: int) -> list[UploadSession]:
        def run(conn: sqlite3.Connection) -> list[UploadSession]:
            rows = conn.execute("SELECT * FROM upload_sessions ORDER BY seq DESC LIMIT ?", (limit,))
            return [_session(r) for r in rows]

        return await self._run(run)

    async def mailbox_usage(self, user_id: str) -> MailboxUsage:
        def run(conn: sqlite3.Connection) -> MailboxUsage:
            with _transaction(conn, "DEFERRED"):
                counts = dict(
                    conn.execute(
                        "SELECT kind, count(*) FROM items WHERE user_id = ? GROUP BY kind", (user_id,)
                    ).fetchall()
                )
                row = conn.execute(
                    "SELECT count(*), coalesce(sum(CASE kind WHEN 'file' THEN content_length ELSE size END), 0)"
                    " FROM attachments WHERE user_id = ?",
                    (user_id,),
                ).fetchone()
            return MailboxUsage(counts.get("message", 0), counts.get("event", 0), row[0], row[1])

        return await self._run(run)

    async def list_sessions_expiring_before(self, when: datetime, limit: int = 100) -> list[UploadSession]:
        def run(conn: sqlite3.Connection) -> list[UploadSession]:
            rows = conn.execute(
                "SELECT * FROM upload_sessions WHERE expires < ? AND ended IS NULL ORDER BY expires, id LIMIT ?",
                (to_micros(when), limit),
            )
            return [_session(r) for r in rows]

        return await self._run(run)

    def lock_session(self, session_id: str) -> AbstractAsyncContextManager[None]:
        return self._lock_session(session_id)

    @asynccontextmanager
    async def _lock_session(self, session_id: str) -> AsyncIterator[None]:
        if self._conn is None:
            raise RuntimeError("the store is not open")
        async with self._locks.hold(session_id):
            path = self.lock_dir / lock_file_name(session_id)
            # Uncontended (the usual case: tasks of this process already queue on the asyncio
            # lock), the flock is taken right here; only a lock held by another process is
            # waited for in a thread.
            fd = flock_try(path)
            if fd is None:
                future = flock_in_daemon_thread(path)
                try:
                    fd = await future
                except asyncio.CancelledError:
                    # Cancelled just as the lock arrived: hand it back.
                    if future.done() and not future.cancelled() and future.exception() is None:
                        flock_unlock(future.result())
                    raise
            self._held.add(session_id)
            try:
                yield
            finally:
                self._held.discard(session_id)
                if session_id in self._retired:
                    self._retired.discard(session_id)
                    flock_release(path, fd)
                else:
                    flock_unlock(fd)

    def try_lock_session(self, session_id: str) -> AbstractAsyncContextManager[bool]:
        return self._try_lock_session(session_id)

    @asynccontextmanager
    async def _try_lock_session(self, session_id: str) -> AsyncIterator[bool]:
        if self._conn is None:
            raise RuntimeError("the store is not open")
        async with self._locks.try_hold(session_id) as free:
            path = self.lock_dir / lock_file_name(session_id)
            fd = flock_try(path) if free else None
            if fd is None:
                yield False
                return
            self._held.add(session_id)
            try:
                yield True
            finally:
                self._held.discard(session_id)
                if session_id in self._retired:
                    self._retired.discard(session_id)
                    flock_release(path, fd)
                else:
                    flock_unlock(fd)

    async def sweep_locks(self, older_than: datetime) -> int:
        """Remove the lock files, older than ``older_than``, of sessions that no longer exist and
        that nobody holds; returns how many. Ids we mint are plain file names, so a hashed name
        never belongs to a session."""
        cutoff = older_than.timestamp()

        def run(conn: sqlite3.Connection) -> int:
            removed = 0
            try:
                entries = list(os.scandir(self.lock_dir))
            except FileNotFoundError:
                return 0
            for entry in entries:
                if not entry.name.endswith(".lock"):
                    continue
                try:
                    if entry.stat().st_mtime >= cutoff:
                        continue
                except FileNotFoundError:
                    continue
                name = entry.name.removesuffix(".lock")
                if (
                    not name.startswith("h-")
                    and conn.execute("SELECT 1 FROM upload_sessions WHERE id = ? AND ended IS NULL", (name,)).fetchone()
                ):
                    continue
                path = Path(entry.path)
                fd = flock_try(path)  # never waits: a held lock is in use, so it stays
                if fd is not None:
                    flock_release(path, fd)
                    removed += 1
            return removed

        return await self._run(run)

    # blobs --------------------------------------------------------------------------------------

    async def referenced_blob_keys(self, keys: list[str]) -> set[str]:
        if not keys:
            return set()

        def run(conn: sqlite3.Connection) -> set[str]:
            rows = conn.execute(
                "SELECT DISTINCT value FROM json_each(?) WHERE"
                " EXISTS (SELECT 1 FROM attachments WHERE blob_key = value)"
                " OR EXISTS (SELECT 1 FROM upload_sessions WHERE blob_key = value AND ended IS NULL AND state <> 'completed')"
                " OR EXISTS (SELECT 1 FROM blob_announcements WHERE blob_key = value)",
                (_json_list(keys),),
            )
            return {r[0] for r in rows}

        return await self._run(run)

    async def announce_blobs(self, keys: list[str]) -> None:
        if not keys:
            return
        now = time.time_ns() // 1000

        def run(conn: sqlite3.Connection) -> None:
            # Not synced: an announcement keeps the sweeper off a blob while its insert is in
            # flight, which needs the commit visible, not durable. An OS crash that loses it
            # leaves the blob unreferenced, an orphan the sweeper removes, as it must: the
            # insert, which syncs (and so syncs this too), never happened.
            with _unsynced(conn), _transaction(conn):
                conn.executemany(
                    "INSERT INTO blob_announcements (blob_key, announced) VALUES (?, ?) ON CONFLICT DO NOTHING",
                    [(key, now) for key in keys],
                )

        await self._run(run)

    async def withdraw_blobs(self, keys: list[str]) -> None:
        if not keys:
            return

        def run(conn: sqlite3.Connection) -> None:
            with _transaction(conn):
                conn.execute(
                    "DELETE FROM blob_announcements WHERE blob_key IN (SELECT value FROM json_each(?))",
                    (_json_list(keys),),
                )

        await self._run(run)

    async def reclaim_announced_blobs(self, older_than: float) -> list[str]:
        cutoff = time.time_ns() // 1000 - int(older_than * 1_000_000)

        def run(conn: sqlite3.Connection) -> list[str]:
            with _transaction(conn):
                keys = [
                    r[0]
                    for r in conn.execute(
                        "DELETE FROM blob_announcements WHERE announced <= ? RETURNING blob_key", (cutoff,)
                    )
                ]
                return _unreferenced(conn, keys)

        return await self._run(run)

    # subscriptions ------------------------------------------------------------------------------

    async def add_subscription(self, subscription: Subscription, *, max_per_user: int | None = None) -> None:
        def run(conn: sqlite3.Connection) -> None:
            with _transaction(conn):
                if max_per_user is not None:
                    (active,) = conn.execute(
                        "SELECT count(*) FROM subscriptions WHERE user_id = ? AND state = 'active'",
                        (subscription.user_id,),
                    ).fetchone()
                    if active >= max_per_user:
                        raise LimitExceeded("count")
                created = to_micros(subscription.created)
                try:
                    conn.execute(
                        "INSERT INTO subscriptions (id, user_id, state, created, doc, next_attempt)"
                        " VALUES (?, ?, ?, ?, ?, ?)",
                        (
                            subscription.id,
                            subscription.user_id,
                            subscription.state,
                            created,
                            encode_subscription(subscription),
                            created,
                        ),
                    )
                except sqlite3.IntegrityError as exc:
                    raise Conflict(f"subscription {subscription.id!r}: {exc}") from None
                conn.execute(
                    "INSERT INTO settings (key, value) VALUES ('subscriptions_generation', '1')"
                    " ON CONFLICT (key) DO UPDATE SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)"
                )

        await self._run(run)

    async def get_subscription(self, subscription_id: str) -> Subscription | None:
        def run(conn: sqlite3.Connection) -> Subscription | None:
            row = conn.execute("SELECT doc FROM subscriptions WHERE id = ?", (subscription_id,)).fetchone()
            return decode_subscription(row[0]) if row else None

        return await self._run(run)

    async def list_subscriptions(self, user_id: str | None = None) -> list[Subscription]:
        def run(conn: sqlite3.Connection) -> list[Subscription]:
            if user_id is None:
                rows = conn.execute("SELECT doc FROM subscriptions ORDER BY created, id").fetchall()
            else:
                rows = conn.execute(
                    "SELECT doc FROM subscriptions WHERE user_id = ? ORDER BY created, id", (user_id,)
                ).fetchall()
            return [decode_subscription(row[0]) for row in rows]

        return await self._run(run)

    async def update_subscription(self, subscription: Subscription) -> None:
        def run(conn: sqlite3.Connection) -> None:
            with _transaction(conn):
                done = conn.execute(
                    "UPDATE subscriptions SET state = ?, doc = ? WHERE id = ?",
                    (subscription.state, encode_subscription(subscription), subscription.id),
                )
                if done.rowcount == 0:
                    raise RecordNotFound(subscription.id)
                conn.execute(
                    "INSERT INTO settings (key, value) VALUES ('subscriptions_generation', '1')"
                    " ON CONFLICT (key) DO UPDATE SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)"
                )

        await self._run(run)

    async def subscriptions_generation(self) -> int:
        def run(conn: sqlite3.Connection) -> int:
            row = conn.execute("SELECT value FROM settings WHERE key = 'subscriptions_generation'").fetchone()
            return int(row[0]) if row else 0

        return await self._run(run)

    async def delete_subscription(self, subscription_id: str) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            with _transaction(conn):
                conn.execute("DELETE FROM notification_outbox WHERE subscription_id = ?", (subscription_id,))
                done = conn.execute("DELETE FROM subscriptions WHERE id = ?", (subscription_id,))
                conn.execute(
                    "INSERT INTO settings (key, value) VALUES ('subscriptions_generation', '1')"
                    " ON CONFLICT (key) DO UPDATE SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)"
                )
                return done.rowcount > 0

        return await self._run(run)

    async def enqueue_notifications(self, notifications: list[Notification]) -> None:
        if not notifications:
            return
        rows = [
            (n.subscription_id, n.url, n.kind, encode_body(n.body), to_micros(n.created), n.subscription_id)
            for n in notifications
        ]

        def run(conn: sqlite3.Connection) -> None:
            with _transaction(conn):
                conn.executemany(
                    "INSERT INTO notification_outbox (subscription_id, url, kind, body, created)"
                    " SELECT ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM subscriptions WHERE id = ?)",
                    rows,
                )

        await self._run(run)

    async def release_notifications(self, seqs: list[int]) -> None:
        if not seqs:
            return

        def run(conn: sqlite3.Connection) -> None:
            with _transaction(conn):
                conn.execute(
                    "UPDATE notification_outbox SET held_until = 0 WHERE seq IN (SELECT value FROM json_each(?))",
                    (orjson.dumps(seqs).decode(),),
                )

        await self._run(run)

    async def claim_notifications(self, now: datetime, lease_until: datetime, limit: int) -> list[Claim]:
        now_us, lease_us = to_micros(now), to_micros(lease_until)

        def run(conn: sqlite3.Connection) -> list[Claim]:
            with _transaction(conn):
                rows = conn.execute(
                    "UPDATE subscriptions SET lease_until = ? WHERE id IN ("
                    " SELECT s.id FROM subscriptions s WHERE s.next_attempt <= ? AND s.lease_until <= ?"
                    " AND (SELECT o.held_until FROM notification_outbox o WHERE o.subscription_id = s.id"
                    "      ORDER BY o.seq LIMIT 1) <= ?"
                    " ORDER BY s.next_attempt LIMIT ?)"
                    " RETURNING doc, next_attempt, attempts, failing_since",
                    (lease_us, now_us, now_us, now_us, limit),
                ).fetchall()
                claims = []
                for row in rows:
                    sub = decode_subscription(row["doc"])
                    waiting = conn.execute(
                        "SELECT seq, subscription_id, url, kind, body, created FROM notification_outbox"
                        " WHERE subscription_id = ?1 AND seq < coalesce((SELECT min(h.seq) FROM notification_outbox h"
                        "  WHERE h.subscription_id = ?1 AND h.held_until > ?2), 9223372036854775807)"
                        " ORDER BY seq LIMIT ?3",
                        (sub.id, now_us, MAX_BATCH),
                    ).fetchall()
                    state = DeliveryState(
                        from_micros(row["next_attempt"]),
                        row["attempts"],
                        None if row["failing_since"] is None else from_micros(row["failing_since"]),
                    )
                    claims.append(Claim(sub, state, [notification_from(*w) for w in waiting]))
                return claims

        return await self._run(run)

    async def finish_delivery(self, subscription_id: str, delivered_through: int, state: DeliveryState) -> None:
        def run(conn: sqlite3.Connection) -> None:
            with _transaction(conn):
                conn.execute(
                    "DELETE FROM notification_outbox WHERE subscription_id = ? AND seq <= ?",
                    (subscription_id, delivered_through),
                )
                conn.execute(
                    "UPDATE subscriptions SET next_attempt = ?, attempts = ?, failing_since = ?, lease_until = 0"
                    " WHERE id = ?",
                    (
                        to_micros(state.next_attempt),
                        state.attempts,
                        None if state.failing_since is None else to_micros(state.failing_since),
                        subscription_id,
                    ),
                )

        await self._run(run)

    async def add_delivery_record(self, record: DeliveryRecord, *, keep: int = 10_000) -> None:
        def run(conn: sqlite3.Connection) -> None:
            with _transaction(conn):
                seq = conn.execute(
                    "INSERT INTO delivery_log (subscription_id, url, at, kind, count, attempt, status, latency_ms,"
                    " error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq",
                    (
                        record.subscription_id,
                        record.url,
                        to_micros(record.at),
                        record.kind,
                        record.count,
                        record.attempt,
                        record.status,
                        record.latency_ms,
                        record.error,
                    ),
                ).fetchone()[0]
                if seq % 100 == 0:
                    conn.execute("DELETE FROM delivery_log WHERE seq <= ?", (seq - keep,))

        await self._run(run)

    async def list_delivery_records(self, subscription_id: str | None = None, limit: int = 100) -> list[DeliveryRecord]:
        def run(conn: sqlite3.Connection) -> list[DeliveryRecord]:
            if subscription_id is None:
                rows = conn.execute("SELECT * FROM delivery_log ORDER BY seq DESC LIMIT ?", (limit,)).fetchall()
            else:
                rows = conn.execute(
                    "SELECT * FROM delivery_log WHERE subscription_id = ? ORDER BY seq DESC LIMIT ?",
                    (subscription_id, limit),
                ).fetchall()
            return [record_from(row) for row in rows]

        return await self._run(run)


def _queue(conn: sqlite3.Connection, outbox: Outbox | None) -> None:
    """Queue what ``outbox`` decides inside the caller's transaction (``Outbox``)."""
    if outbox is None:
        return
    row = conn.execute("SELECT value FROM settings WHERE key = 'subscriptions_generation'").fetchone()
    generation = int(row[0]) if row else 0
    found = outbox.decide(generation, None)
    if found is None:
        rows = conn.execute(
            "SELECT doc FROM subscriptions WHERE user_id IN (SELECT value FROM json_each(?)) ORDER BY created, id",
            (_json_list(list(outbox.user_ids)),),
        ).fetchall()
        found = outbox.decide(generation, [decode_subscription(r[0]) for r in rows])
    now = to_micros(outbox.now)
    held = 0 if outbox.hold_until is None else to_micros(outbox.hold_until)
    for n in found or []:
        if n.merge_into and (n.cancels or n.merged_body is not None):
            # only into a notification still waiting and not leased to a dispatcher (one being
            # POSTed would be deleted after its delivery with the merged change unsent)
            unleased = " AND EXISTS (SELECT 1 FROM subscriptions WHERE id = ? AND lease_until <= ?)"
            if n.cancels:
                done = conn.execute(
                    "DELETE FROM notification_outbox WHERE seq = ? AND subscription_id = ?" + unleased,
                    (n.merge_into, n.subscription_id, n.subscription_id, now),
                )
            else:
                done = conn.execute(
                    "UPDATE notification_outbox SET body = ? WHERE seq = ? AND subscription_id = ?" + unleased,
                    (encode_body(n.merged_body or {}), n.merge_into, n.subscription_id, n.subscription_id, now),
                )
            if done.rowcount:
                if outbox.queued is not None:
                    outbox.queued(n, n.merge_into, True)
                continue
        inserted = conn.execute(
            "INSERT INTO notification_outbox (subscription_id, url, kind, body, created, held_until)"
            " SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM subscriptions WHERE id = ?) RETURNING seq",
            (n.subscription_id, n.url, n.kind, encode_body(n.body), to_micros(n.created), held, n.subscription_id),
        ).fetchone()
        if inserted is not None and outbox.queued is not None:
            outbox.queued(n, inserted[0], False)


def _json_list(values: list[str]) -> str:
    return orjson.dumps(list(values)).decode("utf-8")


def _unreferenced(conn: sqlite3.Connection, keys: list[str]) -> list[str]:
    if not keys:
        return []
    return [r[0] for r in conn.execute(_UNREFERENCED, (_json_list(keys),))]


def _insert_attachment(
    conn: sqlite3.Connection, attachment: Attachment, max_count: int | None, max_total_size: int | None
) -> None:
    """Insert inside the caller's ``BEGIN IMMEDIATE`` transaction, checking the item's limits."""
    exists = conn.execute(
        "SELECT 1 FROM items WHERE user_id = ? AND id = ?", (attachment.user_id, attachment.item_id)
    ).fetchone()
    if exists is None:
        raise RecordNotFound(attachment.item_id)
    if max_count is not None or max_total_size is not None:
        count, total = conn.execute(
            "SELECT count(*), coalesce(sum(size), 0) FROM attachments WHERE user_id = ? AND item_id = ?",
            (attachment.user_id, attachment.item_id),
        ).fetchone()
        if max_count is not None and count + 1 > max_count:
            raise LimitExceeded("count")
        if max_total_size is not None and total + attachment.size > max_total_size:
            raise LimitExceeded("size")
    try:
        conn.execute(
            "INSERT INTO attachments (id, user_id, item_id, kind, name, content_type, size, is_inline,"
            " content_id, last_modified, content_length, blob_key, data)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                attachment.id,
                attachment.user_id,
                attachment.item_id,
                attachment.kind,
                attachment.name,
                attachment.content_type,
                attachment.size,
                int(attachment.is_inline),
                attachment.content_id,
                to_micros(attachment.last_modified),
                attachment.content_length,
                attachment.blob_key,
                json_text(attachment.data),
            ),
        )
    except sqlite3.IntegrityError as exc:
        raise _integrity(exc, attachment.item_id) from exc


def _insert_item(conn: sqlite3.Connection, item: Item) -> None:
    conn.execute(
        "INSERT INTO items (id, user_id, kind, folder_id, created, last_modified, change_key,"
        " data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            item.id,
            item.user_id,
            item.kind,
            item.folder_id,
            to_micros(item.created),
            to_micros(item.last_modified),
            item.change_key,
            json_text(item.data),
        ),
    )


def _update_item(conn: sqlite3.Connection, item: Item) -> None:
    cursor = conn.execute(
        "UPDATE items SET kind = ?, folder_id = ?, created = ?, last_modified = ?,"
        " change_key = ?, data = ? WHERE user_id = ? AND id = ?",
        (
            item.kind,
            item.folder_id,
            to_micros(item.created),
            to_micros(item.last_modified),
            item.change_key,
            json_text(item.data),
            item.user_id,
            item.id,
        ),
    )
    if cursor.rowcount != 1:
        raise RecordNotFound(item.id)


def _consume_announcement(conn: sqlite3.Connection, key: str | None) -> None:
    """Inside the caller's transaction: delete ``key``'s announcement, ``AnnouncementLost`` if gone."""
    if key is None or conn.execute("DELETE FROM blob_announcements WHERE blob_key = ?", (key,)).rowcount != 1:
        raise AnnouncementLost(str(key))
