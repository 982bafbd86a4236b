"""``MetadataStore`` on PostgreSQL, shared by any number of server processes.

Connections come from an ``asyncpg`` pool. Every method is one statement or one transaction, so a
method that returns has committed (PostgreSQL's default ``synchronous_commit`` makes that
durable). Invariants that span rows are checked and written in one transaction under a row lock:

- attachment limits lock the item row (``FOR NO KEY UPDATE``), so concurrent additions to one item
  queue and each sees the others' attachments;
- upload-session transitions are compare-and-set statements (``UPDATE ... WHERE state = 'active'
  AND received = $expected``) or a ``SELECT ... FOR UPDATE`` of the session row followed by the
  writes, so two processes racing for the same transition see one winner;
- uniqueness (ids, case-insensitive user principal names and well-known folder names) is left to
  unique indexes over an ASCII-folded column, the comparison SQLite's ``NOCASE`` makes.

Schema changes are SQL files in ``migrations/postgres/NNNN_name.sql``. ``open()`` (and ``graphattach
migrate``) applies the pending ones in one transaction holding a transaction-level advisory lock,
the applied versions recorded in ``graphattach_schema_migrations``; several processes starting at
once apply each migration exactly once, and a database newer than the code is refused.

``lock_session`` combines an ``asyncio.Lock`` per session id (tasks of this process queue without
holding connections) with a session-level advisory lock, ``pg_advisory_lock(key)``, taken on a
connection of a separate pool and held for as long as the lock is: PostgreSQL drops it when that
connection ends, so a crashed or killed holder never blocks the session (a dead machine's
connection is noticed through the TCP keepalives set on lock connections). A waiter that gives up
(cancellation) discards its connection, since the lock may have been granted just then.

Configuration beyond the URL (a ``postgresql://`` DSN that asyncpg understands) comes from the
environment: ``GRAPHATTACH_PG_POOL_MIN`` / ``GRAPHATTACH_PG_POOL_MAX`` (statement pool, default 1 /
10 connections per process) and ``GRAPHATTACH_PG_LOCK_POOL_MAX`` (connections holding session
locks, default 64 per process: the number of uploads one process can have in flight at once).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime
from typing import Any

import asyncpg

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
from graphattach.storage._common import KeyedLocks, as_utc, fold, from_micros, to_micros
from graphattach.storage._subscriptions import (
    MAX_BATCH,
    decode_subscription,
    encode_body,
    encode_subscription,
    notification_from,
    record_from,
)
from graphattach.storage.advisory_locks import advisory_lock, session_lock_key, unlock
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

__all__ = ["MIGRATION_LOCK", "PostgresMetadataStore", "load_migrations", "migrate", "schema_status", "session_lock_key"]

#: The two-int4 advisory lock key that serialises migrations (a key space apart from the
#: one-bigint keys of session locks).
MIGRATION_LOCK = (0x47415454, 1)  # "GATT", 1
_MIGRATIONS_TABLE = "graphattach_schema_migrations"

#: Server settings of every connection: short statements gain nothing from JIT compilation.
_SERVER_SETTINGS = {"jit": "off", "application_name": "graphattach"}
#: Lock connections also probe their peer, so a vanished machine's locks are dropped in ~30 s.
_LOCK_SERVER_SETTINGS = {
    **_SERVER_SETTINGS,
    "application_name": "graphattach-locks",
    "tcp_keepalives_idle": "10",
    "tcp_keepalives_interval": "5",
    "tcp_keepalives_count": "4",
}


def load_migrations() -> list[tuple[int, str, str]]:
    """The packaged postgres migrations (``storage.sql.load_migrations``)."""
    return sql.load_migrations("postgres")


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    value = int(raw)
    if value < 0:
        raise ValueError(f"{name} must not be negative")
    return value


def _utc(value: datetime) -> datetime:
    return as_utc(value)


# rows <-> records ---------------------------------------------------------------------------------


_rows = RowMapper(_utc)
_user, _folder, _item, _attachment, _session = (_rows.user, _rows.folder, _rows.item, _rows.attachment, _rows.session)


_ITEM_COLUMNS = """
    items.id, items.user_id, items.kind, items.folder_id, items.created, items.last_modified,
    items.change_key, items.data,
    EXISTS (SELECT 1 FROM attachments a
            WHERE a.user_id = items.user_id AND a.item_id = items.id AND NOT a.is_inline)
        AS has_attachments
"""

_UNREFERENCED = """
    SELECT DISTINCT k COLLATE "C" AS k FROM unnest($1::text[]) AS k
    WHERE NOT EXISTS (SELECT 1 FROM attachments WHERE blob_key = k)
      AND NOT EXISTS (SELECT 1 FROM upload_sessions WHERE blob_key = k AND ended IS NULL AND state <> 'completed')
      AND NOT EXISTS (SELECT 1 FROM blob_announcements WHERE blob_key = k)
    ORDER BY 1
"""

#: The columns ``add_session`` writes; a session read back has ``ended`` too.
_SESSION_INSERT_COLUMNS = (
    "id, user_id, item_id, item_kind, name, content_type, is_inline, content_id, size, received,"
    " blob_key, state, expires, created, attachment_id, last_start, last_end"
)
_SESSION_COLUMNS = _SESSION_INSERT_COLUMNS + ", ended"


_SESSION_COLUMNS_OF_S = ", ".join(f"s.{c.strip()}" for c in _SESSION_COLUMNS.split(","))


def _integrity(exc: asyncpg.IntegrityConstraintViolationError, what: str) -> Exception:
    return integrity_error(exc, what, foreign_key=isinstance(exc, asyncpg.ForeignKeyViolationError))


class PostgresMetadataStore:
    """``MetadataStore`` on the PostgreSQL database at ``url`` (``postgresql://user@host:port/db``)."""

    answers_inline = False  # every call goes over the network

    def __init__(self, url: str) -> None:
        self.url = url
        self._pool: asyncpg.Pool | None = None
        self._lock_pool: asyncpg.Pool | None = None
        self._locks = KeyedLocks()

    # plumbing -----------------------------------------------------------------------------------

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("the store is not open")
        return self._pool

    async def open(self) -> None:
        if self._pool is not None:
            return
        pool_min = _env_int("GRAPHATTACH_PG_POOL_MIN", 1)
        pool_max = max(1, _env_int("GRAPHATTACH_PG_POOL_MAX", 10), pool_min)
        lock_max = max(1, _env_int("GRAPHATTACH_PG_LOCK_POOL_MAX", 64))
        pool = await asyncpg.create_pool(
            self.url, min_size=pool_min, max_size=pool_max, server_settings=_SERVER_SETTINGS
        )
        try:
            async with pool.acquire() as conn:
                await migrate(conn)
            lock_pool = await asyncpg.create_pool(
                self.url, min_size=0, max_size=lock_max, server_settings=_LOCK_SERVER_SETTINGS
            )
        except BaseException:
            await pool.close()
            raise
        self._pool, self._lock_pool = pool, lock_pool

    async def close(self) -> None:
        pool, lock_pool = self._pool, self._lock_pool
        self._pool = self._lock_pool = None
        for each in (lock_pool, pool):
            if each is not None:
                await each.close()

    async def reset(self) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "TRUNCATE attachments, items, folders, upload_sessions, users, blob_announcements, item_versions,"
                " change_marks, notification_outbox, subscriptions, delivery_log"
            )
            for counter in ("subscriptions_generation", RESET_GENERATION):
                await conn.execute(
                    "INSERT INTO settings (key, value) VALUES ($1, '1')"
                    " ON CONFLICT (key) DO UPDATE SET value = (settings.value::bigint + 1)::text",
                    counter,
                )

    async def schema_version(self) -> int:
        """The latest migration applied to the database."""
        async with self.pool.acquire() as conn:
            return await _current_version(conn)

    # settings -----------------------------------------------------------------------------------

    async def get_setting(self, key: str) -> str | None:
        value: str | None = await self.pool.fetchval("SELECT value FROM settings WHERE key = $1", key)
        return value

    async def set_setting_if_absent(self, key: str, value: str) -> str:
        async with self.pool.acquire() as conn:
            # Read committed: the INSERT waits for a concurrent inserter of the same key, and the
            # SELECT (a new snapshot) then sees whichever value won.
            await conn.execute(
                "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING", key, value
            )
            stored: str = await conn.fetchval("SELECT value FROM settings WHERE key = $1", key)
            return stored

    # users --------------------------------------------------------------------------------------

    async def add_user(self, user: User) -> None:
        try:
            await self.pool.execute(
                "INSERT INTO users (id, upn, upn_folded, display_name, mail, max_message_size, created, data)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                user.id,
                user.user_principal_name,
                fold(user.user_principal_name),
                user.display_name,
                user.mail,
                user.max_message_size,
                _utc(user.created),
                json_text(user.data),
            )
        except asyncpg.UniqueViolationError as exc:
            raise Conflict(f"user {user.id!r} / {user.user_principal_name!r} exists") from exc

    async def get_user(self, user_id: str) -> User | None:
        row = await self.pool.fetchrow("SELECT * FROM users WHERE id = $1", user_id)
        return _user(row) if row else None

    async def get_user_by_upn(self, upn: str) -> User | None:
        row = await self.pool.fetchrow("SELECT * FROM users WHERE upn_folded = $1", fold(upn))
        return _user(row) if row else None

    async def list_users(self) -> list[User]:
        return [_user(r) for r in await self.pool.fetch("SELECT * FROM users ORDER BY created, seq")]

    async def update_user(self, user: User) -> None:
        try:
            status = await self.pool.execute(
                "UPDATE users SET upn = $1, upn_folded = $2, display_name = $3, mail = $4,"
                " max_message_size = $5, created = $6, data = $7 WHERE id = $8",
                user.user_principal_name,
                fold(user.user_principal_name),
                user.display_name,
                user.mail,
                user.max_message_size,
                _utc(user.created),
                json_text(user.data),
                user.id,
            )
        except asyncpg.UniqueViolationError as exc:
            raise Conflict(f"user principal name {user.user_principal_name!r} is taken") from exc
        if _rowcount(status) != 1:
            raise RecordNotFound(user.id)

    # folders ------------------------------------------------------------------------------------

    async def add_folder(self, folder: Folder) -> None:
        try:
            await self.pool.execute(
                "INSERT INTO folders (id, user_id, kind, display_name, parent_id, well_known_name,"
                " well_known_folded, created, data) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                folder.id,
                folder.user_id,
                folder.kind,
                folder.display_name,
                folder.parent_id,
                folder.well_known_name,
                _fold_or_none(folder.well_known_name),
                _utc(folder.created),
                json_text(folder.data),
            )
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise _integrity(exc, folder.parent_id or folder.user_id) from exc

    async def get_folder(self, user_id: str, folder_id: str) -> Folder | None:
        row = await self.pool.fetchrow("SELECT * FROM folders WHERE user_id = $1 AND id = $2", user_id, folder_id)
        return _folder(row) if row else None

    async def get_well_known_folder(self, user_id: str, kind: FolderKind, name: str) -> Folder | None:
        row = await self.pool.fetchrow(
            "SELECT * FROM folders WHERE user_id = $1 AND kind = $2 AND well_known_folded = $3",
            user_id,
            kind,
            fold(name),
        )
        return _folder(row) if row else None

    async def list_folders(
        self, user_id: str, kind: FolderKind, parent_id: str | None, *, any_parent: bool = False
    ) -> list[Folder]:
        if any_parent:
            rows = await self.pool.fetch(
                "SELECT * FROM folders WHERE user_id = $1 AND kind = $2 ORDER BY created, seq", user_id, kind
            )
        else:
            rows = await self.pool.fetch(
                "SELECT * FROM folders WHERE user_id = $1 AND kind = $2 AND parent_id IS NOT DISTINCT FROM $3"
                " ORDER BY created, seq",
                user_id,
                kind,
                parent_id,
            )
        return [_folder(r) for r in rows]

    async def update_folder(self, folder: Folder) -> None:
        try:
            status = await self.pool.execute(
                "UPDATE folders SET kind = $1, display_name = $2, parent_id = $3, well_known_name = $4,"
                " well_known_folded = $5, created = $6, data = $7 WHERE user_id = $8 AND id = $9",
                folder.kind,
                folder.display_name,
                folder.parent_id,
                folder.well_known_name,
                _fold_or_none(folder.well_known_name),
                _utc(folder.created),
                json_text(folder.data),
                folder.user_id,
                folder.id,
            )
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise _integrity(exc, folder.parent_id or folder.id) from exc
        if _rowcount(status) != 1:
            raise RecordNotFound(folder.id)

    async def delete_folder(self, user_id: str, folder_id: str, *, outbox: Outbox | None = None) -> list[str]:
        async with self.pool.acquire() as conn, conn.transaction():
            tree: list[str] = [
                r[0]
                for r in await conn.fetch(
                    "WITH RECURSIVE tree (id) AS ("
                    "  SELECT id FROM folders WHERE user_id = $1 AND id = $2"
                    "  UNION SELECT f.id FROM folders f JOIN tree ON f.parent_id = tree.id WHERE f.user_id = $1"
                    ") SELECT id FROM tree",
                    user_id,
                    folder_id,
                )
            ]
            if not tree:
                return []
            items_in_tree = "SELECT id FROM items WHERE user_id = $1 AND folder_id = ANY($2::text[])"
            keys = [
                r[0]
                for r in await conn.fetch(
                    "SELECT DISTINCT blob_key FROM attachments"
                    f" WHERE user_id = $1 AND blob_key IS NOT NULL AND item_id IN ({items_in_tree})",
                    user_id,
                    tree,
                )
            ]
            await conn.execute(
                f"DELETE FROM attachments WHERE user_id = $1 AND item_id IN ({items_in_tree})", user_id, tree
            )
            await conn.execute("DELETE FROM items WHERE user_id = $1 AND folder_id = ANY($2::text[])", user_id, tree)
            await conn.execute("DELETE FROM folders WHERE user_id = $1 AND id = ANY($2::text[])", user_id, tree)
            await _queue(conn, outbox)
            return await _unreferenced(conn, keys)

    # items --------------------------------------------------------------------------------------

    async def add_item(self, item: Item, *, outbox: Outbox | None = None) -> None:
        async with self.pool.acquire() as conn:
            if outbox is None:
                await _insert_item(conn, item)
                return
            async with conn.transaction():
                await _insert_item(conn, item)
                await _queue(conn, outbox)

    async def get_item(self, user_id: str, item_id: str) -> Item | None:
        row = await self.pool.fetchrow(
            f"SELECT {_ITEM_COLUMNS} FROM items WHERE user_id = $1 AND id = $2", user_id, item_id
        )
        return _item(row) if row else None

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
        where = "items.user_id = $1 AND items.kind = $2"
        params: list[Any] = [user_id, kind]
        if folder_ids is not None:
            where += " AND items.folder_id = ANY($3::text[])"
            params.append(list(folder_ids))
        n = len(params)
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            # one snapshot for the count and the page
            total: int = await conn.fetchval(f"SELECT count(*) FROM items WHERE {where}", *params)
            rows = await conn.fetch(
                f"SELECT {_ITEM_COLUMNS} FROM items WHERE {where}"
                f" ORDER BY items.created DESC, items.id DESC LIMIT ${n + 1} OFFSET ${n + 2}",
                *params,
                top,
                skip,
            )
        return [_item(r) for r in rows], total

    async def search_items(
        self, user_id: str, kind: ItemKind, folder_ids: list[str] | None, needle: str, limit: int
    ) -> list[Item]:
        pattern = "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where = "items.user_id = $1 AND items.kind = $2 AND items.data::text ILIKE $3"
        params: list[Any] = [user_id, kind, pattern]
        if folder_ids is not None:
            where += " AND items.folder_id = ANY($4::text[])"
            params.append(list(folder_ids))
        rows = await self.pool.fetch(
            f"SELECT {_ITEM_COLUMNS} FROM items WHERE {where}"
            f" ORDER BY items.created DESC, items.id DESC LIMIT ${len(params) + 1}",
            *params,
            limit,
        )
        return [_item(r) for r in rows]

    async def update_item(self, item: Item, *, outbox: Outbox | None = None) -> None:
        async with self.pool.acquire() as conn:
            if outbox is None:
                await _update_item(conn, item)
                return
            async with conn.transaction():
                await _update_item(conn, item)
                await _queue(conn, outbox)

    async def delete_item(self, user_id: str, item_id: str, *, outbox: Outbox | None = None) -> list[str]:
        async with self.pool.acquire() as conn, conn.transaction():
            keys = [
                r[0]
                for r in await conn.fetch(
                    "DELETE FROM attachments WHERE user_id = $1 AND item_id = $2 RETURNING blob_key",
                    user_id,
                    item_id,
                )
                if r[0] is not None
            ]
            status = await conn.execute("DELETE FROM items WHERE user_id = $1 AND id = $2", user_id, item_id)
            if _rowcount(status):
                await _queue(conn, outbox)
            return await _unreferenced(conn, keys)

    # change tracking (kept by triggers, migrations/postgres/0003_item_changes.sql) ----------------

    async def change_mark(self, user_id: str) -> int:
        value = await self.pool.fetchval("SELECT value FROM change_marks WHERE user_id = $1", user_id)
        return int(value) if value is not None else 0

    async def item_changes(
        self, user_id: str, folder_id: str, *, after: int, upto: int, limit: int
    ) -> list[ItemChange]:
        rows = await self.pool.fetch(
            f"SELECT v.item_id AS change_item, v.seq AS change_seq, v.removed AS change_removed,"
            f" items.seq AS present, {_ITEM_COLUMNS} FROM item_versions v"
            " LEFT JOIN items ON NOT v.removed AND items.user_id = v.user_id AND items.id = v.item_id"
            " WHERE v.user_id = $1 AND v.folder_id = $2 AND v.seq > $3 AND v.seq <= $4 ORDER BY v.seq LIMIT $5",
            user_id,
            folder_id,
            after,
            upto,
            limit,
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

    # full-text candidates (migrations/postgres/0004_message_text.sql) --------------------------

    async def messages_with_words(self, user_id: str, folder_ids: list[str] | None, prefixes: list[str]) -> list[Item]:
        if not prefixes or not all(p.isascii() and p.isalnum() for p in prefixes):
            raise ValueError("prefixes must be ASCII letters and digits")
        query = " & ".join(f"{p}:*" for p in prefixes)
        where = "items.user_id = $1 AND items.kind = 'message' AND graphattach_message_text(items.data) @@ to_tsquery('simple', $2)"
        params: list[Any] = [user_id, query]
        if folder_ids is not None:
            where += " AND items.folder_id = ANY($3::text[])"
            params.append(list(folder_ids))
        rows = await self.pool.fetch(f"SELECT {_ITEM_COLUMNS} FROM items WHERE {where}", *params)
        return [_item(r) for r in rows]

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
        async with self.pool.acquire() as conn, conn.transaction():
            if announced:
                # The row lock this DELETE takes makes a concurrent reclaim wait for our commit
                # (and then find nothing), or makes us find nothing: never both.
                status = await conn.execute("DELETE FROM blob_announcements WHERE blob_key = $1", attachment.blob_key)
                if attachment.blob_key is None or _rowcount(status) != 1:
                    raise AnnouncementLost(str(attachment.blob_key))
            await _insert_attachment(conn, attachment, max_count, max_total_size)
            await _queue(conn, outbox)

    async def send_item(
        self,
        draft: Item,
        sent: Item | None,
        copies: list[tuple[Item, list[Attachment]]],
        sources: list[str],
        *,
        outbox: Outbox | None = None,
    ) -> list[str]:
        async with self.pool.acquire() as conn, conn.transaction():
            # The draft row FOR UPDATE holds off attachment inserts (they lock it too); its
            # attachment rows FOR SHARE hold off their deletion, whose check for unreferenced
            # keys then sees the copies that share them.
            change_key = await conn.fetchval(
                "SELECT change_key FROM items WHERE user_id = $1 AND id = $2 FOR UPDATE", draft.user_id, draft.id
            )
            if change_key is None:
                raise RecordNotFound(draft.id)
            present = [
                r[0]
                for r in await conn.fetch(
                    "SELECT id FROM attachments WHERE user_id = $1 AND item_id = $2 ORDER BY seq FOR SHARE",
                    draft.user_id,
                    draft.id,
                )
            ]
            if change_key != draft.change_key or present != sources:
                raise Conflict(f"item {draft.id!r} changed")
            keys: list[str] = []
            if sent is None:
                keys = [
                    r[0]
                    for r in await conn.fetch(
                        "DELETE FROM attachments WHERE user_id = $1 AND item_id = $2 RETURNING blob_key",
                        draft.user_id,
                        draft.id,
                    )
                    if r[0] is not None
                ]
                await conn.execute("DELETE FROM items WHERE user_id = $1 AND id = $2", draft.user_id, draft.id)
            else:
                await _update_item(conn, sent)
            for item, attachments in copies:
                await _insert_item(conn, item)
                for attachment in attachments:
                    await _insert_attachment(conn, attachment, None, None)
            await _queue(conn, outbox)
            return await _unreferenced(conn, keys)

    async def get_attachment(self, user_id: str, item_id: str, attachment_id: str) -> Attachment | None:
        row = await self.pool.fetchrow(
            "SELECT * FROM attachments WHERE user_id = $1 AND item_id = $2 AND id = $3",
            user_id,
            item_id,
            attachment_id,
        )
        return _attachment(row) if row else None

    async def list_attachments(self, user_id: str, item_id: str) -> list[Attachment]:
        rows = await self.pool.fetch(
            "SELECT * FROM attachments WHERE user_id = $1 AND item_id = $2 ORDER BY seq", user_id, item_id
        )
        return [_attachment(r) for r in rows]

    async def item_usage(self, user_id: str, item_id: str) -> ItemUsage:
        row = await self.pool.fetchrow(
            "SELECT count(*), coalesce(sum(CASE kind WHEN 'file' THEN content_length ELSE size END), 0),"
            " coalesce(sum(size), 0) FROM attachments WHERE user_id = $1 AND item_id = $2",
            user_id,
            item_id,
        )
        assert row is not None
        return ItemUsage(int(row[0]), int(row[1]), int(row[2]))

    async def items_usage(self, user_id: str, item_ids: list[str]) -> dict[str, ItemUsage]:
        rows = await self.pool.fetch(
            "SELECT item_id, count(*), coalesce(sum(CASE kind WHEN 'file' THEN content_length ELSE size END), 0),"
            " coalesce(sum(size), 0) FROM attachments WHERE user_id = $1 AND item_id = ANY($2::text[]) GROUP BY item_id",
            user_id,
            item_ids,
        )
        found = {r[0]: ItemUsage(int(r[1]), int(r[2]), int(r[3])) for r in rows}
        return {i: found.get(i, ItemUsage(0, 0, 0)) for i in item_ids}

    async def delete_attachment(
        self, user_id: str, item_id: str, attachment_id: str, *, outbox: Outbox | None = None
    ) -> list[str] | None:
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "DELETE FROM attachments WHERE user_id = $1 AND item_id = $2 AND id = $3 RETURNING blob_key",
                user_id,
                item_id,
                attachment_id,
            )
            if row is None:
                return None
            await _queue(conn, outbox)
            return await _unreferenced(conn, [row[0]] if row[0] is not None else [])

    # upload sessions ----------------------------------------------------------------------------

    async def add_session(self, session: UploadSession) -> None:
        if session.state not in SESSION_STATES:
            raise ValueError(session.state)
        last = session.last_range or (None, None)
        try:
            await self.pool.execute(
                f"INSERT INTO upload_sessions ({_SESSION_INSERT_COLUMNS})"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
                session.id,
                session.user_id,
                session.item_id,
                session.item_kind,
                session.name,
                session.content_type,
                session.is_inline,
                session.content_id,
                session.size,
                session.received,
                session.blob_key,
                session.state,
                _utc(session.expires),
                _utc(session.created),
                session.attachment_id,
                last[0],
                last[1],
            )
        except asyncpg.UniqueViolationError as exc:
            raise Conflict(f"session {session.id!r} exists") from exc

    async def get_session(self, session_id: str) -> UploadSession | None:
        row = await self.pool.fetchrow(
            f"SELECT {_SESSION_COLUMNS} FROM upload_sessions WHERE id = $1 AND ended IS NULL", session_id
        )
        return _session(row) if row else None

    async def session_usage(self, session_id: str) -> SessionUsage:
        """The session, its user's maximum message size and its item's attachment bytes, in one
        statement (one round trip under the session lock)."""
        row = await self.pool.fetchrow(
            f"SELECT {_SESSION_COLUMNS_OF_S}, u.max_message_size AS usage_max,"
            " (SELECT coalesce(sum(a.content_length), 0) FROM attachments a"
            "  WHERE a.user_id = s.user_id AND a.item_id = s.item_id) AS usage_bytes"
            " FROM upload_sessions s LEFT JOIN users u ON u.id = s.user_id WHERE s.id = $1 AND s.ended IS NULL",
            session_id,
        )
        if row is None:
            return SessionUsage(None, None, 0)
        return SessionUsage(_session(row), row["usage_max"], int(row["usage_bytes"]))

    async def sweep_locks(self, older_than: datetime) -> int:
        """Advisory locks leave nothing behind to sweep."""
        return 0

    async def advance_session(
        self, session_id: str, expected_received: int, received: int, last_range: tuple[int, int]
    ) -> bool:
        # A concurrent writer of the row makes this wait, then re-check the WHERE on its version.
        # The commit does not wait for the WAL flush (synchronous_commit off for this transaction,
        # set by the one-row FROM item, in the same round trip): the blob store made the range
        # durable as its parts, and after a database crash that loses this commit the session's
        # progress comes back from them (``services.uploads.recover_sessions``).
        # https://www.postgresql.org/docs/current/wal-async-commit.html
        status = await self.pool.execute(
            "UPDATE upload_sessions SET received = $1, last_start = $2, last_end = $3"
            " FROM (SELECT set_config('synchronous_commit', 'off', true)) AS lazy_commit"
            " WHERE id = $4 AND state = 'active' AND received = $5 AND ended IS NULL",
            received,
            last_range[0],
            last_range[1],
            session_id,
            expected_received,
        )
        return _rowcount(status) == 1

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
        async with self.pool.acquire() as conn, conn.transaction():
            size = await conn.fetchval(
                "SELECT size FROM upload_sessions"
                " WHERE id = $1 AND state = 'active' AND received = $2 AND ended IS NULL FOR UPDATE",
                session_id,
                expected_received,
            )
            if size is None:
                return False
            await _insert_attachment(conn, attachment, max_count, max_total_size)
            await conn.execute(
                "UPDATE upload_sessions SET state = 'completed', received = $1, attachment_id = $2,"
                " last_start = $3, last_end = $4 WHERE id = $5",
                size,
                attachment.id,
                expected_received,
                size - 1,
                session_id,
            )
            await _queue(conn, outbox)
            return True

    async def set_session_state(self, session_id: str, state: str) -> UploadSession | None:
        if state not in SESSION_STATES:
            raise ValueError(state)
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                f"SELECT {_SESSION_COLUMNS} FROM upload_sessions WHERE id = $1 AND ended IS NULL FOR UPDATE",
                session_id,
            )
            if row is None:
                return None
            await conn.execute("UPDATE upload_sessions SET state = $1 WHERE id = $2", state, session_id)
            return _session(row)

    async def end_session(
        self, session_id: str, state: str, ended: datetime, *, keep: int = ENDED_SESSIONS_KEPT
    ) -> UploadSession | None:
        if state not in SESSION_STATES or state == "active":
            raise ValueError(state)
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                f"SELECT {_SESSION_COLUMNS} FROM upload_sessions WHERE id = $1 AND ended IS NULL FOR UPDATE",
                session_id,
            )
            if row is None:
                return None
            await conn.execute(
                "UPDATE upload_sessions SET state = $1, ended = $2 WHERE id = $3", state, _utc(ended), session_id
            )
            # Two sessions of one mailbox ending at once may each keep one more than ``keep`` for
            # a moment; the next end trims it (a bound for the UI, not an invariant).
            await conn.execute(
                "DELETE FROM upload_sessions WHERE user_id = $1 AND ended IS NOT NULL AND seq NOT IN"
                " (SELECT seq FROM upload_sessions WHERE user_id = $1 AND ended IS NOT NULL"
                "  ORDER BY ended DESC, seq DESC LIMIT $2)",
                row["user_id"],
                max(keep, 0),
            )
            return _session(row)

    async def delete_session(self, session_id: str) -> UploadSession | None:
        row = await self.pool.fetchrow(
            f"DELETE FROM upload_sessions WHERE id = $1 AND ended IS NULL RETURNING {_SESSION_COLUMNS}", session_id
        )
        return _session(row) if row else None

    async def recent_sessions(self, limit: int) -> list[UploadSession]:
        rows = await self.pool.fetch(
            f"SELECT {_SESSION_COLUMNS} FROM upload_sessions ORDER BY created DESC, id DESC LIMIT $1", limit
        )
        return [_session(r) for r in rows]

    async def mailbox_usage(self, user_id: str) -> MailboxUsage:
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            counts = {
                r[0]: int(r[1])
                for r in await conn.fetch("SELECT kind, count(*) FROM items WHERE user_id = $1 GROUP BY kind", user_id)
            }
            row = await conn.fetchrow(
                "SELECT count(*), coalesce(sum(CASE kind WHEN 'file' THEN content_length ELSE size END), 0)"
                " FROM attachments WHERE user_id = $1",
                user_id,
            )
        assert row is not None
        return MailboxUsage(counts.get("message", 0), counts.get("event", 0), int(row[0]), int(row[1]))

    async def list_sessions_expiring_before(self, when: datetime, limit: int = 100) -> list[UploadSession]:
        rows = await self.pool.fetch(
            f"SELECT {_SESSION_COLUMNS} FROM upload_sessions WHERE expires < $1 AND ended IS NULL"
            " ORDER BY expires, id LIMIT $2",
            _utc(when),
            limit,
        )
        return [_session(r) for r in rows]

    def lock_session(self, session_id: str) -> AbstractAsyncContextManager[None]:
        return self._lock_session(session_id)

    def try_lock_session(self, session_id: str) -> AbstractAsyncContextManager[bool]:
        return self._try_lock_session(session_id)

    @asynccontextmanager
    async def _try_lock_session(self, session_id: str) -> AsyncIterator[bool]:
        if self._lock_pool is None:
            raise RuntimeError("the store is not open")
        lock_pool = self._lock_pool
        key = session_lock_key(session_id)
        async with self._locks.try_hold(session_id) as free:
            if not free:
                yield False
                return
            conn = await lock_pool.acquire()
            try:
                got = await conn.fetchval("SELECT pg_try_advisory_lock($1)", key)
            except BaseException:
                conn.terminate()
                await lock_pool.release(conn)
                raise
            if not got:
                await lock_pool.release(conn)
                yield False
                return
            try:
                yield True
            finally:
                await unlock(lock_pool, conn, key)

    @asynccontextmanager
    async def _lock_session(self, session_id: str) -> AsyncIterator[None]:
        if self._lock_pool is None:
            raise RuntimeError("the store is not open")
        async with self._locks.hold(session_id), advisory_lock(self._lock_pool, session_lock_key(session_id)):
            yield

    # blobs --------------------------------------------------------------------------------------

    async def referenced_blob_keys(self, keys: list[str]) -> set[str]:
        if not keys:
            return set()
        rows = await self.pool.fetch(
            "SELECT DISTINCT k FROM unnest($1::text[]) AS k"
            " WHERE EXISTS (SELECT 1 FROM attachments WHERE blob_key = k)"
            " OR EXISTS (SELECT 1 FROM upload_sessions WHERE blob_key = k AND ended IS NULL AND state <> 'completed')"
            " OR EXISTS (SELECT 1 FROM blob_announcements WHERE blob_key = k)",
            list(keys),
        )
        return {r[0] for r in rows}

    async def announce_blobs(self, keys: list[str]) -> None:
        if keys:
            # Without waiting for the WAL flush (as ``advance_session``): an announcement must be
            # visible, not durable; one lost in a database crash leaves an orphan the sweeper removes.
            await self.pool.execute(
                "INSERT INTO blob_announcements (blob_key)"
                " SELECT unnest($1::text[]) FROM (SELECT set_config('synchronous_commit', 'off', true)) AS lazy_commit"
                " ON CONFLICT DO NOTHING",
                list(keys),
            )

    async def withdraw_blobs(self, keys: list[str]) -> None:
        if keys:
            await self.pool.execute("DELETE FROM blob_announcements WHERE blob_key = ANY($1::text[])", list(keys))

    async def reclaim_announced_blobs(self, older_than: float) -> list[str]:
        async with self.pool.acquire() as conn, conn.transaction():
            keys = [
                r[0]
                for r in await conn.fetch(
                    "DELETE FROM blob_announcements"
                    " WHERE announced <= clock_timestamp() - make_interval(secs => $1) RETURNING blob_key",
                    float(older_than),
                )
            ]
            return await _unreferenced(conn, keys)

    # subscriptions ------------------------------------------------------------------------------

    async def add_subscription(self, subscription: Subscription, *, max_per_user: int | None = None) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            if max_per_user is not None:
                # one mailbox's creations queue here, so the count holds against concurrent ones
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtext($1))", "subscriptions:" + subscription.user_id
                )
                active = await conn.fetchval(
                    "SELECT count(*) FROM subscriptions WHERE user_id = $1 AND state = 'active'", subscription.user_id
                )
                if active >= max_per_user:
                    raise LimitExceeded("count")
            created = to_micros(subscription.created)
            try:
                await conn.execute(
                    "INSERT INTO subscriptions (id, user_id, state, created, doc, next_attempt)"
                    " VALUES ($1, $2, $3, $4, $5, $4)",
                    subscription.id,
                    subscription.user_id,
                    subscription.state,
                    created,
                    encode_subscription(subscription),
                )
            except asyncpg.UniqueViolationError as exc:
                raise Conflict(f"subscription {subscription.id!r}: {exc}") from None
            await conn.execute(
                "INSERT INTO settings (key, value) VALUES ('subscriptions_generation', '1')"
                " ON CONFLICT (key) DO UPDATE SET value = (settings.value::bigint + 1)::text"
            )

    async def get_subscription(self, subscription_id: str) -> Subscription | None:
        doc = await self.pool.fetchval("SELECT doc FROM subscriptions WHERE id = $1", subscription_id)
        return decode_subscription(doc) if doc is not None else None

    async def list_subscriptions(self, user_id: str | None = None) -> list[Subscription]:
        if user_id is None:
            rows = await self.pool.fetch("SELECT doc FROM subscriptions ORDER BY created, id")
        else:
            rows = await self.pool.fetch(
                "SELECT doc FROM subscriptions WHERE user_id = $1 ORDER BY created, id", user_id
            )
        return [decode_subscription(row[0]) for row in rows]

    async def update_subscription(self, subscription: Subscription) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            done = await conn.execute(
                "UPDATE subscriptions SET state = $1, doc = $2 WHERE id = $3",
                subscription.state,
                encode_subscription(subscription),
                subscription.id,
            )
            if done.endswith(" 0"):
                raise RecordNotFound(subscription.id)
            await conn.execute(
                "INSERT INTO settings (key, value) VALUES ('subscriptions_generation', '1')"
                " ON CONFLICT (key) DO UPDATE SET value = (settings.value::bigint + 1)::text"
            )

    async def subscriptions_generation(self) -> int:
        value = await self.pool.fetchval("SELECT value FROM settings WHERE key = 'subscriptions_generation'")
        return int(value) if value is not None else 0

    async def delete_subscription(self, subscription_id: str) -> bool:
        async with self.pool.acquire() as conn, conn.transaction():
            # the subscription row first, as a write queueing for it does (``_queue``): no deadlock
            await conn.execute("SELECT 1 FROM subscriptions WHERE id = $1 FOR UPDATE", subscription_id)
            await conn.execute("DELETE FROM notification_outbox WHERE subscription_id = $1", subscription_id)
            done = await conn.execute("DELETE FROM subscriptions WHERE id = $1", subscription_id)
            await conn.execute(
                "INSERT INTO settings (key, value) VALUES ('subscriptions_generation', '1')"
                " ON CONFLICT (key) DO UPDATE SET value = (settings.value::bigint + 1)::text"
            )
        return not done.endswith(" 0")

    async def enqueue_notifications(self, notifications: list[Notification]) -> None:
        if not notifications:
            return
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.executemany(
                "INSERT INTO notification_outbox (subscription_id, url, kind, body, created)"
                " SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM subscriptions WHERE id = $1)",
                [(n.subscription_id, n.url, n.kind, encode_body(n.body), to_micros(n.created)) for n in notifications],
            )

    async def release_notifications(self, seqs: list[int]) -> None:
        if seqs:
            await self.pool.execute("UPDATE notification_outbox SET held_until = 0 WHERE seq = ANY($1::bigint[])", seqs)

    async def claim_notifications(self, now: datetime, lease_until: datetime, limit: int) -> list[Claim]:
        now_us, lease_us = to_micros(now), to_micros(lease_until)
        async with self.pool.acquire() as conn, conn.transaction():
            # SKIP LOCKED: several processes claim at once and each subscription goes to one of them
            rows = await conn.fetch(
                "UPDATE subscriptions SET lease_until = $1 WHERE id IN ("
                " SELECT s.id FROM subscriptions s WHERE s.next_attempt <= $2 AND s.lease_until <= $2"
                " AND (SELECT o.held_until FROM notification_outbox o WHERE o.subscription_id = s.id"
                "      ORDER BY o.seq LIMIT 1) <= $2"
                " ORDER BY s.next_attempt LIMIT $3 FOR UPDATE SKIP LOCKED)"
                " RETURNING doc, next_attempt, attempts, failing_since",
                lease_us,
                now_us,
                limit,
            )
            claims = []
            for row in rows:
                sub = decode_subscription(row["doc"])
                waiting = await conn.fetch(
                    "SELECT seq, subscription_id, url, kind, body, created FROM notification_outbox"
                    " WHERE subscription_id = $1 AND seq < coalesce((SELECT min(h.seq) FROM notification_outbox h"
                    "  WHERE h.subscription_id = $1 AND h.held_until > $3), 9223372036854775807)"
                    " ORDER BY seq LIMIT $2",
                    sub.id,
                    MAX_BATCH,
                    now_us,
                )
                state = DeliveryState(
                    from_micros(row["next_attempt"]),
                    row["attempts"],
                    None if row["failing_since"] is None else from_micros(row["failing_since"]),
                )
                claims.append(Claim(sub, state, [notification_from(*w) for w in waiting]))
        return claims

    async def finish_delivery(self, subscription_id: str, delivered_through: int, state: DeliveryState) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "DELETE FROM notification_outbox WHERE subscription_id = $1 AND seq <= $2",
                subscription_id,
                delivered_through,
            )
            await conn.execute(
                "UPDATE subscriptions SET next_attempt = $1, attempts = $2, failing_since = $3, lease_until = 0"
                " WHERE id = $4",
                to_micros(state.next_attempt),
                state.attempts,
                None if state.failing_since is None else to_micros(state.failing_since),
                subscription_id,
            )

    async def add_delivery_record(self, record: DeliveryRecord, *, keep: int = 10_000) -> None:
        seq = await self.pool.fetchval(
            "INSERT INTO delivery_log (subscription_id, url, at, kind, count, attempt, status, latency_ms, error)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING seq",
            record.subscription_id,
            record.url,
            to_micros(record.at),
            record.kind,
            record.count,
            record.attempt,
            record.status,
            record.latency_ms,
            record.error,
        )
        if seq % 100 == 0:
            await self.pool.execute("DELETE FROM delivery_log WHERE seq <= $1", seq - keep)

    async def list_delivery_records(self, subscription_id: str | None = None, limit: int = 100) -> list[DeliveryRecord]:
        if subscription_id is None:
            rows = await self.pool.fetch("SELECT * FROM delivery_log ORDER BY seq DESC LIMIT $1", limit)
        else:
            rows = await self.pool.fetch(
                "SELECT * FROM delivery_log WHERE subscription_id = $1 ORDER BY seq DESC LIMIT $2",
                subscription_id,
                limit,
            )
        return [record_from(row) for row in rows]


# helpers ------------------------------------------------------------------------------------------


def _rowcount(status: str) -> int:
    """The row count of a command tag such as ``UPDATE 1``."""
    try:
        return int(status.rsplit(" ", 1)[-1])
    except ValueError:
        return 0


def _fold_or_none(value: str | None) -> str | None:
    return fold(value) if value is not None else None


async def _unreferenced(conn: asyncpg.Connection, keys: Iterable[str]) -> list[str]:
    wanted = list(keys)
    if not wanted:
        return []
    return [r[0] for r in await conn.fetch(_UNREFERENCED, wanted)]


async def _queue(conn: asyncpg.Connection, outbox: Outbox | None) -> None:
    """Queue what ``outbox`` decides inside the caller's transaction (``Outbox``)."""
    if outbox is None:
        return
    value = await conn.fetchval("SELECT value FROM settings WHERE key = 'subscriptions_generation'")
    generation = int(value) if value is not None else 0
    found = outbox.decide(generation, None)
    if found is None:
        rows = await conn.fetch(
            "SELECT doc FROM subscriptions WHERE user_id = ANY($1::text[]) ORDER BY created, id", list(outbox.user_ids)
        )
        found = outbox.decide(generation, [decode_subscription(r[0]) for r in rows])
    if not found:
        return
    # The subscriptions stay share-locked until the commit (in id order, as everywhere): a claim
    # (FOR UPDATE SKIP LOCKED) passes them by meanwhile, so it never hands out part of what this
    # transaction queues, nor delivers (and deletes up to) a number above one not yet committed.
    leases = {
        r[0]: r[1]
        for r in await conn.fetch(
            "SELECT id, lease_until FROM subscriptions WHERE id = ANY($1::text[]) ORDER BY id FOR SHARE",
            sorted({n.subscription_id for n in found}),
        )
    }
    now = to_micros(outbox.now)
    for n in found:
        lease = leases.get(n.subscription_id)
        if lease is None:
            continue  # gone: its notifications go with it
        if n.merge_into and (n.cancels or n.merged_body is not None) and lease <= now:
            if n.cancels:
                status = await conn.execute(
                    "DELETE FROM notification_outbox WHERE seq = $1 AND subscription_id = $2",
                    n.merge_into,
                    n.subscription_id,
                )
            else:
                status = await conn.execute(
                    "UPDATE notification_outbox SET body = $1 WHERE seq = $2 AND subscription_id = $3",
                    encode_body(n.merged_body or {}),
                    n.merge_into,
                    n.subscription_id,
                )
            if _rowcount(status):
                if outbox.queued is not None:
                    outbox.queued(n, n.merge_into, True)
                continue
        seq = await conn.fetchval(
            "INSERT INTO notification_outbox (subscription_id, url, kind, body, created, held_until)"
            " VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq",
            n.subscription_id,
            n.url,
            n.kind,
            encode_body(n.body),
            to_micros(n.created),
            0 if outbox.hold_until is None else to_micros(outbox.hold_until),
        )
        if outbox.queued is not None:
            outbox.queued(n, int(seq), False)


async def _insert_item(conn: asyncpg.Connection, item: Item) -> None:
    try:
        await conn.execute(
            "INSERT INTO items (id, user_id, kind, folder_id, created, last_modified, change_key, data)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            item.id,
            item.user_id,
            item.kind,
            item.folder_id,
            _utc(item.created),
            _utc(item.last_modified),
            item.change_key,
            json_text(item.data),
        )
    except asyncpg.IntegrityConstraintViolationError as exc:
        raise _integrity(exc, item.folder_id) from exc


async def _update_item(conn: asyncpg.Connection, item: Item) -> None:
    try:
        status = await conn.execute(
            "UPDATE items SET kind = $1, folder_id = $2, created = $3, last_modified = $4,"
            " change_key = $5, data = $6 WHERE user_id = $7 AND id = $8",
            item.kind,
            item.folder_id,
            _utc(item.created),
            _utc(item.last_modified),
            item.change_key,
            json_text(item.data),
            item.user_id,
            item.id,
        )
    except asyncpg.IntegrityConstraintViolationError as exc:
        raise _integrity(exc, item.folder_id) from exc
    if _rowcount(status) != 1:
        raise RecordNotFound(item.id)


async def _insert_attachment(
    conn: asyncpg.Connection, attachment: Attachment, max_count: int | None, max_total_size: int | None
) -> None:
    """Insert inside the caller's transaction, the item row locked while its limits are checked."""
    exists = await conn.fetchval(
        "SELECT 1 FROM items WHERE user_id = $1 AND id = $2 FOR NO KEY UPDATE",
        attachment.user_id,
        attachment.item_id,
    )
    if exists is None:
        raise RecordNotFound(attachment.item_id)
    if max_count is not None or max_total_size is not None:
        count, total = await conn.fetchrow(
            "SELECT count(*), coalesce(sum(size), 0) FROM attachments WHERE user_id = $1 AND item_id = $2",
            attachment.user_id,
            attachment.item_id,
        )
        if max_count is not None and count + 1 > max_count:
            raise LimitExceeded("count")
        if max_total_size is not None and total + attachment.size > max_total_size:
            raise LimitExceeded("size")
    try:
        await conn.execute(
            "INSERT INTO attachments (id, user_id, item_id, kind, name, content_type, size, is_inline,"
            " content_id, last_modified, content_length, blob_key, data)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            attachment.id,
            attachment.user_id,
            attachment.item_id,
            attachment.kind,
            attachment.name,
            attachment.content_type,
            attachment.size,
            attachment.is_inline,
            attachment.content_id,
            _utc(attachment.last_modified),
            attachment.content_length,
            attachment.blob_key,
            json_text(attachment.data),
        )
    except asyncpg.IntegrityConstraintViolationError as exc:
        raise _integrity(exc, attachment.item_id) from exc


# migrations ---------------------------------------------------------------------------------------


async def _current_version(conn: asyncpg.Connection) -> int:
    exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", _MIGRATIONS_TABLE)
    if not exists:
        return 0
    version: int = await conn.fetchval(f"SELECT coalesce(max(version), 0) FROM {_MIGRATIONS_TABLE}")
    return version


async def migrate(conn: asyncpg.Connection) -> list[int]:
    """Apply the pending migrations in one transaction under the migration advisory lock; return
    the versions applied (none when the schema is current). Refuses a schema newer than the code."""
    migrations = load_migrations()
    latest = migrations[-1][0] if migrations else 0
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", *MIGRATION_LOCK)
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {_MIGRATIONS_TABLE} ("
            " version integer PRIMARY KEY, name text NOT NULL, applied timestamptz NOT NULL DEFAULT now())"
        )
        current = await _current_version(conn)
        if current > latest:
            raise RuntimeError(f"the database has schema version {current}, newer than this code ({latest})")
        applied: list[int] = []
        for version, name, sql in migrations:
            if version <= current:
                continue
            await conn.execute(sql)
            await conn.execute(f"INSERT INTO {_MIGRATIONS_TABLE} (version, name) VALUES ($1, $2)", version, name)
            applied.append(version)
        return applied


async def schema_status(url: str) -> tuple[int, list[str]]:
    """The database's schema version and the names of the migrations not yet applied to it."""
    conn = await asyncpg.connect(url, server_settings=_SERVER_SETTINGS)
    try:
        current = await _current_version(conn)
    finally:
        await conn.close()
    return current, [name for version, name, _ in load_migrations() if version > current]
