"""The one conformance suite every storage backend passes.

A backend's test module subclasses the classes below and provides the fixtures:

- ``metadata_store`` / ``blob_store``: an opened, empty store (async fixture, closed at teardown);
- for persistent backends, ``persistent = True`` and ``reopen_metadata_store`` /
  ``reopen_blob_store``: an async callable that closes the store it is given and returns a freshly
  opened one on the same files;
- for persistent metadata stores, ``metadata_store_spec``: ``("module:Class", argument)`` that
  opens another store on the same data, in this process or in a child process (the
  cross-process lock tests).

Needs ``pytest``, ``pytest-asyncio`` (``asyncio_mode = "auto"``) and ``hypothesis``: import this
module from tests only.
"""

from __future__ import annotations

import asyncio
import importlib
import itertools
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphattach.domain.models import Attachment, Folder, FolderKind, Item, ItemKind, UploadSession, User, replace
from graphattach.domain.subscriptions import DeliveryRecord, DeliveryState, Notification, Outbox, Subscription
from graphattach.storage.interfaces import (
    AnnouncementLost,
    BlobProgress,
    BlobStore,
    Conflict,
    ItemUsage,
    LimitExceeded,
    MailboxUsage,
    MetadataStore,
    RecordNotFound,
    limit_weight,
)

__all__ = ["BlobStoreConformance", "MetadataStoreConformance"]

T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
ReopenMetadata = Callable[[Any], Awaitable[Any]]
ReopenBlobs = Callable[[Any], Awaitable[Any]]


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def make_user(upn: str | None = None, **changes: Any) -> User:
    user_id = changes.pop("id", None) or _id("user")
    upn = upn or f"{user_id}@contoso.example"
    fields: dict[str, Any] = {
        "id": user_id,
        "user_principal_name": upn,
        "display_name": "Adele Vance",
        "mail": upn,
        "max_message_size": 150 * 1024 * 1024,
        "created": T0,
        "data": {"jobTitle": "Engineer", "businessPhones": ["+1 555 0100"]},
    }
    fields.update(changes)
    return User(**fields)


def make_subscription(user_id: str, **changes: Any) -> Subscription:
    fields: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "user_id": user_id,
        "item_kind": "message",
        "folder_id": None,
        "change_types": ("created", "updated"),
        "notification_url": "https://hooks.example/n?x=1",
        "expires": T0 + timedelta(days=2),
        "application_id": "app-1",
        "creator_id": user_id,
        "delegated": True,
        "client_state": "secret",
        "lifecycle_url": None,
        "created": T0,
        "token_expires": T0 + timedelta(hours=1),
        "data": {"resource": "me/messages", "latestSupportedTlsVersion": "v1_2"},
    }
    fields.update(changes)
    return Subscription(**fields)


def make_notification(sub: Subscription, n: int = 0, **changes: Any) -> Notification:
    fields: dict[str, Any] = {
        "subscription_id": sub.id,
        "url": sub.notification_url,
        "kind": "change",
        "body": {"changeType": "created", "resource": f"Users/u/Messages/m{n}", "n": n},
        "created": T0,
    }
    fields.update(changes)
    return Notification(**fields)


class RecordingOutbox:
    """Outboxes for store writes that notify every active subscription of the mailboxes (body
    ``{"n": n}``) and record what the store asked and queued."""

    def __init__(self) -> None:
        #: (generation, ids of the subscriptions given, or None) of each ``decide`` call.
        self.asked: list[tuple[int, list[str] | None]] = []
        #: (subscription id, number, merged) of each notification queued.
        self.queued: list[tuple[str, int, bool]] = []
        #: What ``decide`` answers without subscriptions: None (read them) or a cached answer.
        self.cached: list[Notification] | None = None

    def outbox(
        self,
        *user_ids: str,
        n: int = 0,
        now: datetime = T0,
        merge_into: int = 0,
        merged_n: int = 0,
        hold_until: datetime | None = None,
        cancels: bool = False,
    ) -> Outbox:
        def decide(generation: int, subscriptions: list[Subscription] | None) -> list[Notification] | None:
            self.asked.append((generation, None if subscriptions is None else [s.id for s in subscriptions]))
            if subscriptions is None:
                return self.cached
            found = []
            for sub in subscriptions:
                if sub.state != "active":
                    continue
                notification = make_notification(sub, n)
                if merge_into:
                    notification.merge_into, notification.cancels = merge_into, cancels
                    notification.merged_body = None if cancels else {**notification.body, "n": merged_n}
                found.append(notification)
            return found

        def queued(notification: Notification, seq: int, merged: bool) -> None:
            self.queued.append((notification.subscription_id, seq, merged))

        return Outbox(user_ids, now, decide, queued, hold_until)


def make_folder(user: User, kind: FolderKind = "mail", **changes: Any) -> Folder:
    fields: dict[str, Any] = {
        "id": _id("folder"),
        "user_id": user.id,
        "kind": kind,
        "display_name": "Folder",
        "created": T0,
        "data": {"isHidden": False},
    }
    fields.update(changes)
    return Folder(**fields)


def make_item(folder: Folder, kind: ItemKind = "message", **changes: Any) -> Item:
    fields: dict[str, Any] = {
        "id": _id("item"),
        "user_id": folder.user_id,
        "kind": kind,
        "folder_id": folder.id,
        "created": T0,
        "last_modified": T0,
        "change_key": "CQAAABYAAAA",
        "data": {"subject": "Quarterly report", "importance": "normal"},
    }
    fields.update(changes)
    return Item(**fields)


def make_attachment(item: Item, **changes: Any) -> Attachment:
    fields: dict[str, Any] = {
        "id": _id("att"),
        "user_id": item.user_id,
        "item_id": item.id,
        "kind": "file",
        "name": "report.pdf",
        "content_type": "application/pdf",
        "size": 100,
        "last_modified": T0,
        "content_length": 10,
        "blob_key": _id("blob"),
    }
    fields.update(changes)
    return Attachment(**fields)


def make_session(item: Item, **changes: Any) -> UploadSession:
    fields: dict[str, Any] = {
        "id": _id("session"),
        "user_id": item.user_id,
        "item_id": item.id,
        "item_kind": item.kind,
        "name": "big.bin",
        "content_type": "application/octet-stream",
        "is_inline": False,
        "content_id": None,
        "size": 3 * 1024 * 1024,
        "received": 0,
        "blob_key": _id("blob"),
        "state": "active",
        "expires": T0 + timedelta(hours=6),
        "created": T0,
    }
    fields.update(changes)
    return UploadSession(**fields)


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        await asyncio.sleep(0)
        yield part


async def _failing(parts: list[bytes], error: Exception) -> AsyncIterator[bytes]:
    for part in parts:
        yield part
    raise error


async def _read_all(store: BlobStore, key: str, **kwargs: Any) -> bytes:
    return b"".join([chunk async for chunk in store.read(key, **kwargs)])


async def _keys(store: BlobStore, older_than: datetime | None = None) -> set[str]:
    return {key async for key in store.keys(older_than)}


class MetadataStoreConformance:
    """Every ``MetadataStore`` contract; needs a ``metadata_store`` fixture."""

    #: True when records survive ``close()`` + ``open()`` (the backend provides ``reopen_metadata_store``).
    persistent: ClassVar[bool] = False

    @pytest.fixture
    def reopen_metadata_store(self) -> ReopenMetadata | None:
        return None

    # helpers ------------------------------------------------------------------------------------

    @staticmethod
    async def mailbox(store: MetadataStore) -> tuple[User, Folder]:
        user = make_user()
        await store.add_user(user)
        inbox = make_folder(user, well_known_name="inbox", display_name="Inbox")
        await store.add_folder(inbox)
        return user, inbox

    @staticmethod
    async def item_in(store: MetadataStore, folder: Folder, **changes: Any) -> Item:
        item = make_item(folder, **changes)
        await store.add_item(item)
        return item

    # settings -----------------------------------------------------------------------------------

    async def test_settings(self, metadata_store: MetadataStore) -> None:
        assert await metadata_store.get_setting("tenant_id") is None
        assert await metadata_store.set_setting_if_absent("tenant_id", "t1") == "t1"
        assert await metadata_store.set_setting_if_absent("tenant_id", "t2") == "t1"
        assert await metadata_store.get_setting("tenant_id") == "t1"
        assert await metadata_store.get_setting("other") is None

    async def test_concurrent_set_setting_if_absent_agree(self, metadata_store: MetadataStore) -> None:
        values = await asyncio.gather(*(metadata_store.set_setting_if_absent("k", f"v{i}") for i in range(10)))
        assert len(set(values)) == 1
        assert await metadata_store.get_setting("k") == values[0]

    # users --------------------------------------------------------------------------------------

    async def test_user_round_trip(self, metadata_store: MetadataStore) -> None:
        user = make_user(data={"nested": {"a": [1, 2.5, None, True]}, "unicode": "Zoë ✓"})
        await metadata_store.add_user(user)
        assert await metadata_store.get_user(user.id) == user
        assert await metadata_store.get_user("missing") is None

    async def test_user_conflicts_on_id_and_case_insensitive_upn(self, metadata_store: MetadataStore) -> None:
        user = make_user("Adele.Vance@Contoso.example")
        await metadata_store.add_user(user)
        with pytest.raises(Conflict):
            await metadata_store.add_user(make_user(id=user.id))
        with pytest.raises(Conflict):
            await metadata_store.add_user(make_user("adele.vance@contoso.EXAMPLE"))
        assert [u.id for u in await metadata_store.list_users()] == [user.id]

    async def test_get_user_by_upn_is_case_insensitive(self, metadata_store: MetadataStore) -> None:
        user = make_user("MeganB@Contoso.example")
        await metadata_store.add_user(user)
        for spelling in ("MeganB@Contoso.example", "meganb@contoso.example", "MEGANB@CONTOSO.EXAMPLE"):
            found = await metadata_store.get_user_by_upn(spelling)
            assert found is not None and found.id == user.id
            assert found.user_principal_name == "MeganB@Contoso.example"
        assert await metadata_store.get_user_by_upn("nobody@contoso.example") is None

    async def test_list_users_oldest_first(self, metadata_store: MetadataStore) -> None:
        users = [make_user(created=T0 + timedelta(minutes=m)) for m in (3, 1, 2)]
        for user in users:
            await metadata_store.add_user(user)
        listed = await metadata_store.list_users()
        assert [u.id for u in listed] == [users[1].id, users[2].id, users[0].id]

    async def test_update_user(self, metadata_store: MetadataStore) -> None:
        user = make_user("a@contoso.example")
        other = make_user("b@contoso.example")
        await metadata_store.add_user(user)
        await metadata_store.add_user(other)
        user.display_name = "Renamed"
        user.max_message_size = 35 * 1024 * 1024
        user.data = {"officeLocation": "18/2111"}
        user.user_principal_name = "A@Contoso.example"  # own name, other case: allowed
        await metadata_store.update_user(user)
        assert await metadata_store.get_user(user.id) == user
        assert (await metadata_store.get_user_by_upn("a@contoso.example")) == user

        user.user_principal_name = "B@CONTOSO.example"
        with pytest.raises(Conflict):
            await metadata_store.update_user(user)
        with pytest.raises(RecordNotFound):
            await metadata_store.update_user(make_user())

        user.user_principal_name = "c@contoso.example"
        await metadata_store.update_user(user)
        assert await metadata_store.get_user_by_upn("a@contoso.example") is None
        assert (await metadata_store.get_user_by_upn("C@contoso.example")) == user

    async def test_records_are_copies(self, metadata_store: MetadataStore) -> None:
        user, inbox = await self.mailbox(metadata_store)
        item = await self.item_in(metadata_store, inbox)
        item.data["subject"] = "changed after add"
        user.data["jobTitle"] = "changed after add"
        fetched = await metadata_store.get_item(user.id, item.id)
        assert fetched is not None and fetched.data["subject"] == "Quarterly report"
        fetched.data["subject"] = "changed after get"
        again = await metadata_store.get_item(user.id, item.id)
        assert again is not None and again.data["subject"] == "Quarterly report"
        stored_user = await metadata_store.get_user(user.id)
        assert stored_user is not None and stored_user.data["jobTitle"] == "Engineer"

    async def test_datetimes_come_back_as_aware_utc(self, metadata_store: MetadataStore) -> None:
        plus_two = timezone(timedelta(hours=2))
        local = datetime(2024, 3, 1, 8, 30, 15, 987654, tzinfo=plus_two)
        user = make_user(created=local)
        await metadata_store.add_user(user)
        stored = await metadata_store.get_user(user.id)
        assert stored is not None
        assert stored.created == local
        assert stored.created.utcoffset() == timedelta(0)
        assert stored.created.microsecond == 987654

    # folders ------------------------------------------------------------------------------------

    async def test_folder_round_trip_and_ownership(self, metadata_store: MetadataStore) -> None:
        user, inbox = await self.mailbox(metadata_store)
        child = make_folder(user, parent_id=inbox.id, display_name="Child", data={"x": [1]})
        await metadata_store.add_folder(child)
        assert await metadata_store.get_folder(user.id, child.id) == child
        assert await metadata_store.get_folder(user.id, inbox.id) == inbox
        stranger, _ = await self.mailbox(metadata_store)
        assert await metadata_store.get_folder(stranger.id, child.id) is None
        assert await metadata_store.get_folder(user.id, "missing") is None

    async def test_add_folder_checks_references(self, metadata_store: MetadataStore) -> None:
        user, inbox = await self.mailbox(metadata_store)
        with pytest.raises(Conflict):
            await metadata_store.add_folder(make_folder(user, id=inbox.id))
        with pytest.raises(RecordNotFound):
            await metadata_store.add_folder(make_folder(make_user()))
        with pytest.raises(RecordNotFound):
            await metadata_store.add_folder(make_folder(user, parent_id="missing"))
        stranger, their_inbox = await self.mailbox(metadata_store)
        with pytest.raises(RecordNotFound):  # a parent of another user's mailbox
            await metadata_store.add_folder(make_folder(user, parent_id=their_inbox.id))

    async def test_well_known_folders(self, metadata_store: MetadataStore) -> None:
        user, inbox = await self.mailbox(metadata_store)
        calendar = make_folder(user, "calendar", well_known_name="calendar")
        await metadata_store.add_folder(calendar)
        assert await metadata_store.get_well_known_folder(user.id, "mail", "inbox") == inbox
        assert await metadata_store.get_well_known_folder(user.id, "mail", "Inbox") == inbox
        assert await metadata_store.get_well_known_folder(user.id, "calendar", "calendar") == calendar
        assert await metadata_store.get_well_known_folder(user.id, "calendar", "inbox") is None
        assert await metadata_store.get_well_known_folder(user.id, "mail", "drafts") is None
        with pytest.raises(Conflict):
            await metadata_store.add_folder(make_folder(user, well_known_name="INBOX"))
        other, _ = await self.mailbox(metadata_store)  # another user has an inbox too
        found = await metadata_store.get_well_known_folder(other.id, "mail", "inbox")
        assert found is not None and found.id != inbox.id

    async def test_list_folders(self, metadata_store: MetadataStore) -> None:
        user, inbox = await self.mailbox(metadata_store)
        late = make_folder(user, created=T0 + timedelta(hours=2), display_name="late")
        early = make_folder(user, created=T0 + timedelta(hours=1), display_name="early")
        sub_b = make_folder(user, parent_id=inbox.id, created=T0 + timedelta(hours=3))
        sub_a = make_folder(user, parent_id=inbox.id, created=T0 + timedelta(hours=3))
        group = make_folder(user, "calendarGroup", display_name="My Calendars")
        calendar = make_folder(user, "calendar", parent_id=group.id)
        for folder in (late, early, sub_b, sub_a, group, calendar):
            await metadata_store.add_folder(folder)
        stranger, _ = await self.mailbox(metadata_store)

        top = await metadata_store.list_folders(user.id, "mail", None)
        assert [f.id for f in top] == [inbox.id, early.id, late.id]
        under = await metadata_store.list_folders(user.id, "mail", inbox.id)
        assert [f.id for f in under] == [sub_b.id, sub_a.id]  # same time: the order of addition
        every = await metadata_store.list_folders(user.id, "mail", None, any_parent=True)
        assert [f.id for f in every] == [inbox.id, early.id, late.id, sub_b.id, sub_a.id]
        assert await metadata_store.list_folders(user.id, "calendar", None) == []
        assert await metadata_store.list_folders(user.id, "calendar", group.id) == [calendar]
        assert await metadata_store.list_folders(user.id, "calendarGroup", None) == [group]
        assert await metadata_store.list_folders(user.id, "mail", sub_a.id) == []
        assert len(await metadata_store.list_folders(stranger.id, "mail", None, any_parent=True)) == 1

    async def test_update_folder(self, metadata_store: MetadataStore) -> None:
        user, inbox = await self.mailbox(metadata_store)
        folder = make_folder(user)
        await metadata_store.add_folder(folder)
        folder.display_name = "Renamed"
        folder.parent_id = inbox.id
        folder.data = {"childFolderCount": 0}
        await metadata_store.update_folder(folder)
        assert await metadata_store.get_folder(user.id, folder.id) == folder
        assert [f.id for f in await metadata_store.list_folders(user.id, "mail", inbox.id)] == [folder.id]
        with pytest.raises(RecordNotFound):
            await metadata_store.update_folder(make_folder(user))
        folder.parent_id = "missing"
        with pytest.raises(RecordNotFound):
            await metadata_store.update_folder(folder)
        folder.parent_id = None
        folder.well_known_name = "inbox"
        with pytest.raises(Conflict):
            await metadata_store.update_folder(folder)

    async def test_delete_folder_deletes_the_tree_and_returns_freed_blobs(self, metadata_store: MetadataStore) -> None:
        user, inbox = await self.mailbox(metadata_store)
        root = make_folder(user, parent_id=inbox.id)
        child = make_folder(user, parent_id=root.id)
        grandchild = make_folder(user, parent_id=child.id)
        sibling = make_folder(user, parent_id=inbox.id)
        for folder in (root, child, grandchild, sibling):
            await metadata_store.add_folder(folder)
        in_root = await self.item_in(metadata_store, root)
        in_grandchild = await self.item_in(metadata_store, grandchild)
        in_sibling = await self.item_in(metadata_store, sibling)

        a1 = make_attachment(in_root, blob_key="blob-only-in-tree")
        a2 = make_attachment(in_grandchild, blob_key="blob-twice-in-tree")
        a3 = make_attachment(in_root, blob_key="blob-twice-in-tree")
        a4 = make_attachment(in_grandchild, blob_key="blob-shared-with-sibling")
        a5 = make_attachment(in_sibling, blob_key="blob-shared-with-sibling")
        a6 = make_attachment(in_root, blob_key="blob-of-a-session")
        a7 = make_attachment(in_root, kind="reference", blob_key=None, content_length=0)
        for attachment in (a1, a2, a3, a4, a5, a6, a7):
            await metadata_store.add_attachment(attachment)
        await metadata_store.add_session(make_session(in_sibling, blob_key="blob-of-a-session"))

        freed = await metadata_store.delete_folder(user.id, root.id)
        assert sorted(freed) == ["blob-only-in-tree", "blob-twice-in-tree"]
        for folder in (root, child, grandchild):
            assert await metadata_store.get_folder(user.id, folder.id) is None
        for item in (in_root, in_grandchild):
            assert await metadata_store.get_item(user.id, item.id) is None
            assert await metadata_store.list_attachments(user.id, item.id) == []
        assert await metadata_store.get_folder(user.id, sibling.id) == sibling
        assert await metadata_store.get_folder(user.id, inbox.id) == inbox
        assert [a.id for a in await metadata_store.list_attachments(user.id, in_sibling.id)] == [a5.id]
        assert await metadata_store.referenced_blob_keys(
            ["blob-only-in-tree", "blob-twice-in-tree", "blob-shared-with-sibling", "blob-of-a-session"]
        ) == {"blob-shared-with-sibling", "blob-of-a-session"}
        # the tree's ids are free again
        await metadata_store.add_folder(root)

    async def test_delete_folder_unknown_or_foreign(self, metadata_store: MetadataStore) -> None:
        user, inbox = await self.mailbox(metadata_store)
        stranger, _ = await self.mailbox(metadata_store)
        assert await metadata_store.delete_folder(user.id, "missing") == []
        assert await metadata_store.delete_folder(stranger.id, inbox.id) == []
        assert await metadata_store.get_folder(user.id, inbox.id) == inbox

    async def test_delete_calendar_group_deletes_its_calendars_and_events(self, metadata_store: MetadataStore) -> None:
        user, _ = await self.mailbox(metadata_store)
        group = make_folder(user, "calendarGroup")
        calendar = make_folder(user, "calendar", parent_id=group.id)
        await metadata_store.add_folder(group)
        await metadata_store.add_folder(calendar)
        event = await self.item_in(metadata_store, calendar, kind="event")
        await metadata_store.add_attachment(make_attachment(event, blob_key="event-blob"))
        assert await metadata_store.delete_folder(user.id, group.id) == ["event-blob"]
        assert await metadata_store.get_folder(user.id, calendar.id) is None
        assert await metadata_store.get_item(user.id, event.id) is None

    # items --------------------------------------------------------------------------------------

    async def test_item_round_trip(self, metadata_store: MetadataStore) -> None:
        user, inbox = await self.mailbox(metadata_store)
        item = make_item(
            inbox,
            kind="event",
            created=T0 + timedelta(seconds=1),
            last_modified=T0 + timedelta(seconds=2),
            data={"subject": "Ünïcödé", "body": {"contentType": "html", "content": "<p>x</p>"}},
        )
        await metadata_store.add_item(item)
        assert await metadata_store.get_item(user.id, item.id) == item
        stranger, _ = await self.mailbox(metadata_store)
        assert await metadata_store.get_item(stranger.id, item.id) is None
        assert await metadata_store.get_item(user.id, "missing") is None

    async def test_add_item_checks_references(self, metadata_store: MetadataStore) -> None:
        user, inbox = await self.mailbox(metadata_store)
        item = await self.item_in(metadata_store, inbox)
        with pytest.raises(Conflict):
            await metadata_store.add_item(make_item(inbox, id=item.id))
        with pytest.raises(RecordNotFound):
            await metadata_store.add_item(make_item(inbox, folder_id="missing"))
        stranger, their_inbox = await self.mailbox(metadata_store)
        with pytest.raises(RecordNotFound):  # the folder belongs to someone else
            await metadata_store.add_item(make_item(their_inbox, user_id=user.id))

    async def test_has_attachments_is_derived_from_non_inline_attachments(self, metadata_store: MetadataStore) -> None:
        user, inbox = await self.mailbox(metadata_store)
        item = make_item(inbox, has_attachments=True)  # the caller's value is ignored
        await metadata_store.add_item(item)

        async def flag() -> bool:
            got = await metadata_store.get_item(user.id, item.id)
            assert got is not None
            listed, _ = await metadata_store.list_items(user.id, "message", [inbox.id])
            assert [i.has_attachments for i in listed] == [got.has_attachments]
            return got.has_attachments

        assert await flag() is False
        inline = make_attachment(item, is_inline=True, content_id="logo@x")
        await metadata_store.add_attachment(inline)
        assert await flag() is False
        regular = make_attachment(item)
        await metadata_store.add_attachment(regular)
        assert await flag() is True
        await metadata_store.delete_attachment(user.id, item.id, regular.id)
        assert await flag() is False

    async def test_list_items_order_paging_and_count(self, metadata_store: MetadataStore) -> None:
        user, inbox = await self.mailbox(metadata_store)
        archive = make_folder(user, display_name="Archive")
        await metadata_store.add_folder(archive)
        calendar = make_folder(user, "calendar", well_known_name="calendar")
        await metadata_store.add_folder(calendar)
        minutes = [5, 1, 9, 3, 7, 3, 3, 0]
        items = []
        for i, minute in enumerate(minutes):
            folder = inbox if i % 2 == 0 else archive
            items.append(
                await self.item_in(metadata_store, folder, id=f"item-{i:02d}", created=T0 + timedelta(minutes=minute))
            )
        event = await self.item_in(metadata_store, calendar, kind="event")
        stranger, their_inbox = await self.mailbox(metadata_store)
        await self.item_in(metadata_store, their_inbox)

        expected = sorted(items, key=lambda i: (i.created, i.id), reverse=True)
        listed, total = await metadata_store.list_items(user.id, "message", None)
        assert [i.id for i in listed] == [i.id for i in expected]
        assert total == len(items)

        page, total = await metadata_store.list_items(user.id, "message", None, skip=2, top=3)
        assert [i.id for i in page] == [i.id for i in expected[2:5]]
        assert total == len(items)
        page, total = await metadata_store.list_items(user.id, "message", None, skip=6, top=10)
        assert [i.id for i in page] == [i.id for i in expected[6:]]
        page, total = await metadata_store.list_items(user.id, "message", None, skip=50)
        assert (page, total) == ([], len(items))
        page, total = await metadata_store.list_items(user.id, "message", None, top=0)
        assert (page, total) == ([], len(items))

        in_inbox, total = await metadata_store.list_items(user.id, "message", [inbox.id])
        assert [i.id for i in in_inbox] == [i.id for i in expected if i.folder_id == inbox.id]
        assert total == 4
        both, total = await metadata_store.list_items(user.id, "message", [inbox.id, archive.id], top=1)
        assert [i.id for i in both] == [expected[0].id] and total == len(items)
        assert await metadata_store.list_items(user.id, "message", []) == ([], 0)
        assert await metadata_store.list_items(user.id, "message", ["missing"]) == ([], 0)

        events, total = await metadata_store.list_items(user.id, "event", None)
        assert [e.id for e in events] == [event.id] and total == 1
        assert await metadata_store.list_items(user.id, "event", [inbox.id]) == ([], 0)
        assert (await metadata_store.list_items(stranger.id, "message", None))[1] == 1

    async def test_list_items_returns_full_records(self, metadata_store: MetadataStore) -> None:
        user, inbox = await self.mailbox(metadata_store)
        item = await self.item_in(metadata_store, inbox)
        listed, _ = await metadata_store.list_items(user.id, "message", [inbox.id])
        assert listed == [item]

    async def test_update_item(self, metadata_store: MetadataStore) -> None:
        user, inbox = await self.mailbox(metadata_store)
        archive = make_folder(user)
        await metadata_store.add_folder(archive)
        item = await self.item_in(metadata_store, inbox)
        await metadata_store.add_attachment(make_attachment(item))
        item.folder_id = archive.id
        item.change_key = "CQAAABYAAAB"
        item.last_modified = T0 + timedelta(days=1)
        item.data = {"subject": "moved", "isRead": True}
        item.has_attachments = False  # derived; what the caller says does not matter
        await metadata_store.update_item(item)
        stored = await metadata_store.get_item(user.id, item.id)
        assert stored is not None
        assert stored.has_attachments is True
        item.has_attachments = True
        assert stored == item
        assert (await metadata_store.list_items(user.id, "message", [inbox.id]))[1] == 0

        with pytest.raises(RecordNotFound):
            await metadata_store.update_item(make_item(inbox))
        item.folder_id = "missing"
        with pytest.raises(RecordNotFound):
            await metadata_store.update_item(item)
        await metadata_store.delete_item(user.id, stored.id)
        with pytest.raises(RecordNotFound):
            await metadata_store.update_item(stored)

    async def test_delete_item_returns_unreferenced_blob_keys(self, metadata_store: MetadataStore) -> None:
        user, inbox = await self.mailbox(metadata_store)
        item = await self.item_in(metadata_store, inbox)
        other = await self.item_in(metadata_store, inbox)
        await metadata_store.add_attachment(make_attachment(item, blob_key="mine"))
        await metadata_store.add_attachment(make_attachment(item, blob_key="mine"))
        await metadata_store.add_attachment(make_attachment(item, blob_key="shared"))
        await metadata_store.add_attachment(make_attachment(other, blob_key="shared"))
        await metadata_store.add_attachment(make_attachment(item, blob_key="uploading"))
        await metadata_store.add_attachment(make_attachment(item, kind="item", blob_key=None))
        await metadata_store.add_session(make_session(item, blob_key="uploading"))

        assert await metadata_store.delete_item(user.id, item.id) == ["mine"]
        assert await metadata_store.get_item(user.id, item.id) is None
        assert await metadata_store.list_attachments(user.id, item.id) == []
        assert len(await metadata_store.list_attachments(user.id, other.id)) == 1
        assert await metadata_store.delete_item(user.id, item.id) == []
        stranger, _ = await self.mailbox(metadata_store)
        assert await metadata_store.delete_item(stranger.id, other.id) == []
        assert await metadata_store.get_item(user.id, other.id) is not None

    # change tracking --------------------------------------------------------------------------

    @staticmethod
    async def changes(store: MetadataStore, user: User, folder: Folder, after: int = 0) -> dict[str, bool]:
        """item id -> removed, for the changes of ``folder`` after ``after`` up to now."""
        upto = await store.change_mark(user.id)
        return {
            c.item_id: c.removed
            for c in await store.item_changes(user.id, folder.id, after=after, upto=upto, limit=1000)
        }

    async def test_changes_track_inserts_updates_moves_deletes_and_attachments(
        self, metadata_store: MetadataStore
    ) -> None:
        store = metadata_store
        user, inbox = await self.mailbox(store)
        archive = make_folder(user, display_name="Archive")
        await store.add_folder(archive)
        assert await store.change_mark(user.id) == 0
        kept = await self.item_in(store, inbox)
        edited = await self.item_in(store, inbox)
        moved = await self.item_in(store, inbox)
        doomed = await self.item_in(store, inbox)
        attached = await self.item_in(store, inbox)
        assert await self.changes(store, user, inbox) == {i.id: False for i in (kept, edited, moved, doomed, attached)}
        mark = await store.change_mark(user.id)
        assert mark > 0
        assert await self.changes(store, user, inbox, mark) == {}

        edited.data = {"subject": "changed"}
        await store.update_item(edited)
        moved.folder_id = archive.id
        await store.update_item(moved)
        await store.delete_item(user.id, doomed.id)
        attachment = make_attachment(attached)
        await store.add_attachment(attachment)
        assert await self.changes(store, user, inbox, mark) == {
            edited.id: False,
            moved.id: True,
            doomed.id: True,
            attached.id: False,
        }
        assert await self.changes(store, user, archive, mark) == {moved.id: False}
        second = await store.change_mark(user.id)
        assert second > mark
        await store.delete_attachment(user.id, attached.id, attachment.id)
        assert await self.changes(store, user, inbox, second) == {attached.id: False}
        # another mailbox's changes are its own
        stranger, their_inbox = await self.mailbox(store)
        await self.item_in(store, their_inbox)
        assert await store.change_mark(user.id) > second
        assert await self.changes(store, user, inbox, await store.change_mark(user.id)) == {}
        assert len(await self.changes(store, stranger, their_inbox)) == 1

    async def test_changes_are_ordered_bounded_and_paged(self, metadata_store: MetadataStore) -> None:
        store = metadata_store
        user, inbox = await self.mailbox(store)
        items = [await self.item_in(store, inbox) for _ in range(5)]
        upto = await store.change_mark(user.id)
        page = await store.item_changes(user.id, inbox.id, after=0, upto=upto, limit=2)
        assert [c.item_id for c in page] == [items[0].id, items[1].id]
        assert page[0].seq < page[1].seq
        assert page[0].item == await store.get_item(user.id, items[0].id)  # the item comes with its change
        rest = await store.item_changes(user.id, inbox.id, after=page[-1].seq, upto=upto, limit=10)
        assert [c.item_id for c in rest] == [i.id for i in items[2:]]
        # an item changed after ``upto`` belongs to the next round
        items[0].data = {"subject": "later"}
        await store.update_item(items[0])
        again = await store.item_changes(user.id, inbox.id, after=0, upto=upto, limit=10)
        assert [c.item_id for c in again] == [i.id for i in items[1:]]
        later = await store.item_changes(user.id, inbox.id, after=upto, upto=await store.change_mark(user.id), limit=10)
        assert [c.item_id for c in later] == [items[0].id]
        assert later[0].item is not None and later[0].item.data == {"subject": "later"}
        mark = await store.change_mark(user.id)
        await store.delete_item(user.id, items[4].id)
        removed = await store.item_changes(
            user.id, inbox.id, after=mark, upto=await store.change_mark(user.id), limit=10
        )
        assert [(c.item_id, c.removed, c.item) for c in removed] == [(items[4].id, True, None)]

    # full-text candidates (optional: MessageTextSearcher) ------------------------------------

    async def test_messages_with_words_when_indexed(self, metadata_store: MetadataStore) -> None:
        store = metadata_store
        search = getattr(store, "messages_with_words", None)
        if search is None:
            pytest.skip("this store has no full-text index (searches scan)")
        user, inbox = await self.mailbox(store)
        archive = make_folder(user, display_name="Archive")
        await store.add_folder(archive)
        who = {"emailAddress": {"name": "Zoë Müller", "address": "zoe.mueller@contoso.example"}}
        pizza = await self.item_in(
            store,
            inbox,
            data={"subject": "Pizza party", "body": {"contentType": "html", "content": "<p>Bring <b>drinks</b></p>"}},
        )
        report = await self.item_in(store, inbox, data={"subject": "Q3_report", "toRecipients": [who]})
        other = await self.item_in(store, archive, data={"subject": "pizza again", "from": who})
        await self.item_in(store, inbox, kind="event", data={"subject": "pizza event"})
        stranger, their_inbox = await self.mailbox(store)
        await self.item_in(store, their_inbox, data={"subject": "pizza"})

        async def ids(folders: list[str] | None, *prefixes: str) -> set[str]:
            return {i.id for i in await search(user.id, folders, list(prefixes))}

        assert await ids(None, "pizz") == {pizza.id, other.id}
        assert await ids([inbox.id], "pizz") == {pizza.id}
        assert await ids(None, "pizza", "drink") == {pizza.id}
        assert await ids(None, "q3", "rep") == {report.id}
        assert await ids(None, "mueller", "contoso") == {report.id, other.id}
        assert await ids(None, "nothing") == set()
        found = await search(user.id, [inbox.id], ["drinks"])
        assert found == [await store.get_item(user.id, pizza.id)]
        # the index follows updates, moves and deletes
        pizza.data = {"subject": "Salad"}
        pizza.folder_id = archive.id
        await store.update_item(pizza)
        assert await ids(None, "pizz") == {other.id}
        assert await ids([archive.id], "salad") == {pizza.id}
        await store.delete_item(user.id, other.id)
        assert await ids(None, "pizz") == set()

    # attachments --------------------------------------------------------------------------------

    async def test_attachment_round_trip_and_order(self, metadata_store: MetadataStore) -> None:
        user, inbox = await self.mailbox(metadata_store)
        item = await self.item_in(metadata_store, inbox)
        first = make_attachment(item, id="zzz", is_inline=True, content_id="cid@x", data={"k": 1})
        second = make_attachment(
            item,
            id="aaa",
            kind="item",
            name=None,
            content_type=None,
            blob_key=None,
            content_length=0,
            data={"item": {"@odata.type": "#microsoft.graph.message", "subject": "inner"}},
        )
        third = make_attachment(item, id="mmm", kind="reference", data={"sourceUrl": "https://x"})
        for attachment in (first, second, third):
            await metadata_store.add_attachment(attachment)
        assert await metadata_store.list_attachments(user.id, item.id) == [first, second, third]
        assert await metadata_store.get_attachment(user.id, item.id, "aaa") == second
        assert await metadata_store.get_attachment(user.id, item.id, "missing") is None
        other = await self.item_in(metadata_store, inbox)
        assert await metadata_store.get_attachment(user.id, other.id, "aaa") is None
        stranger, _ = await self.mailbox(metadata_store)
        assert await metadata_store.get_attachment(stranger.id, item.id, "aaa") is None
        assert await metadata_store.list_attachments(stranger.id, item.id) == []
        assert await metadata_store.list_attachments(user.id, "missing") == []

    async def test_add_attachment_checks_references(self, metadata_store: MetadataStore) -> None:
        user, inbox = await self.mailbox(metadata_store)
        item = await self.item_in(metadata_store, inbox)
        attachment = make_attachment(item)
        await metadata_store.add_attachment(attachment)
        with pytest.raises(Conflict):
            await metadata_store.add_attachment(make_attachment(item, id=attachment.id))
        with pytest.raises(RecordNotFound):
            await metadata_store.add_attachment(make_attachment(item, item_id="missing"))
        stranger, _ = await self.mailbox(metadata_store)
        with pytest.raises(RecordNotFound):
            await metadata_store.add_attachment(make_attachment(item, user_id=stranger.id))

    async def test_attachment_count_limit(self, metadata_store: MetadataStore) -> None:
        user, inbox = await self.mailbox(metadata_store)
        item = await self.item_in(metadata_store, inbox)
        other = await self.item_in(metadata_store, inbox)
        await metadata_store.add_attachment(make_attachment(item), max_count=2)
        await metadata_store.add_attachment(make_attachment(item, is_inline=True), max_count=2)
        with pytest.raises(LimitExceeded) as raised:
            await metadata_store.add_attachment(make_attachment(item), max_count=2)
        assert raised.value.which == "count"
        assert len(await metadata_store.list_attachments(user.id, item.id)) == 2
        await metadata_store.add_attachment(make_attachment(item), max_count=3)  # limits are per call
        await metadata_store.add_attachment(make_attachment(other), max_count=1)  # and per item
        await metadata_store.add_attachment(make_attachment(item))  # and optional

    async def test_attachment_size_limit(self, metadata_store: MetadataStore) -> None:
        user, inbox = await self.mailbox(metadata_store)
        item = await self.item_in(metadata_store, inbox)
        await metadata_store.add_attachment(make_attachment(item, size=600), max_total_size=1000)
        with pytest.raises(LimitExceeded) as raised:
            await metadata_store.add_attachment(make_attachment(item, size=401), max_total_size=1000)
        assert raised.value.which == "size"
        await metadata_store.add_attachment(make_attachment(item, size=400), max_total_size=1000)
        with pytest.raises(LimitExceeded):
            await metadata_store.add_attachment(make_attachment(item, size=1), max_total_size=1000)
        attachments = await metadata_store.list_attachments(user.id, item.id)
        assert sum(a.size for a in attachments) == 1000
        with pytest.raises(LimitExceeded) as raised:  # both broken: count is reported
            await metadata_store.add_attachment(make_attachment(item, size=1), max_count=2, max_total_size=10)
        assert raised.value.which == "count"

    async def test_attachment_limits_hold_under_concurrency(self, metadata_store: MetadataStore) -> None:
        user, inbox = await self.mailbox(metadata_store)
        item = await self.item_in(metadata_store, inbox)

        async def add(size: int) -> bool:
            try:
                await metadata_store.add_attachment(
                    make_attachment(item, size=size), max_count=5, max_total_size=10_000
                )
            except LimitExceeded:
                return False
            return True

        results = await asyncio.gather(*(add(100) for _ in range(20)))
        assert results.count(True) == 5
        assert len(await metadata_store.list_attachments(user.id, item.id)) == 5

    async def test_item_usage(self, metadata_store: MetadataStore) -> None:
        user, inbox = await self.mailbox(metadata_store)
        item = await self.item_in(metadata_store, inbox)
        other = await self.item_in(metadata_store, inbox)
        assert await metadata_store.item_usage(user.id, item.id) == ItemUsage(0, 0, 0)
        await metadata_store.add_attachment(make_attachment(item, content_length=10, size=100))
        await metadata_store.add_attachment(
            make_attachment(item, kind="item", blob_key=None, content_length=33, size=70)
        )
        await metadata_store.add_attachment(
            make_attachment(item, kind="reference", blob_key=None, content_length=44, size=5)
        )
        await metadata_store.add_attachment(make_attachment(other, content_length=1000, size=1200))
        usage = await metadata_store.item_usage(user.id, item.id)
        # files weigh their raw bytes, the other kinds their reported size
        assert usage == ItemUsage(3, 10 + 70 + 5, 100 + 70 + 5)
        listed = await metadata_store.list_attachments(user.id, item.id)
        assert usage.weight == sum(limit_weight(a) for a in listed)
        assert await metadata_store.item_usage(user.id, "missing") == ItemUsage(0, 0, 0)

    async def test_items_and_mailbox_usage(self, metadata_store: MetadataStore) -> None:
        user, inbox = await self.mailbox(metadata_store)
        item = await self.item_in(metadata_store, inbox)
        bare = await self.item_in(metadata_store, inbox)
        await metadata_store.add_attachment(make_attachment(item, content_length=10, size=100))
        await metadata_store.add_attachment(make_attachment(item, kind="item", blob_key=None, size=70))
        usages = await metadata_store.items_usage(user.id, [item.id, bare.id, "missing"])
        assert usages == {
            item.id: await metadata_store.item_usage(user.id, item.id),
            bare.id: ItemUsage(0, 0, 0),
            "missing": ItemUsage(0, 0, 0),
        }
        stranger, elsewhere = await self.mailbox(metadata_store)
        await metadata_store.add_attachment(make_attachment(await self.item_in(metadata_store, elsewhere), size=9))
        assert await metadata_store.mailbox_usage(user.id) == MailboxUsage(2, 0, 2, 10 + 70)
        assert (await metadata_store.mailbox_usage(stranger.id)).attachments == 1

    async def test_search_items_prefilters_by_text(self, metadata_store: MetadataStore) -> None:
        search = getattr(metadata_store, "search_items", None)
        if search is None:
            pytest.skip("this store has no search_items (an optional ItemSearcher)")
        user, inbox = await self.mailbox(metadata_store)
        other = make_folder(user, display_name="Other")
        await metadata_store.add_folder(other)
        older = await self.item_in(metadata_store, inbox, created=T0, data={"subject": "Invoice 100%"})
        newer = await self.item_in(
            metadata_store, inbox, created=T0 + timedelta(seconds=1), data={"subject": "invoice_2"}
        )
        await self.item_in(metadata_store, inbox, data={"subject": "Lunch"})
        elsewhere = await self.item_in(metadata_store, other, data={"subject": "INVOICE"})
        assert [i.id for i in await search(user.id, "message", [inbox.id], "invoice", 10)] == [newer.id, older.id]
        assert {i.id for i in await search(user.id, "message", None, "invoice", 10)} == {
            older.id,
            newer.id,
            elsewhere.id,
        }
        assert [i.id for i in await search(user.id, "message", None, "100%", 10)] == [older.id]  # % is literal
        assert [i.id for i in await search(user.id, "message", None, "e_2", 10)] == [newer.id]  # so is _
        assert await search(user.id, "message", None, "e%2", 10) == []
        assert len(await search(user.id, "message", None, "invoice", 1)) == 1

    async def test_recent_sessions_newest_first(self, metadata_store: MetadataStore) -> None:
        user, inbox = await self.mailbox(metadata_store)
        item = await self.item_in(metadata_store, inbox)
        made = []
        for index in range(3):
            session = make_session(item, created=T0 + timedelta(seconds=index))
            await metadata_store.add_session(session)
            made.append(session.id)
        found = [s.id for s in await metadata_store.recent_sessions(100) if s.id in made]
        assert found == made[::-1]
        assert len(await metadata_store.recent_sessions(2)) == 2

    async def test_delete_attachment(self, metadata_store: MetadataStore) -> None:
        user, inbox = await self.mailbox(metadata_store)
        item = await self.item_in(metadata_store, inbox)
        other = await self.item_in(metadata_store, inbox)
        own = make_attachment(item, blob_key="own")
        shared_here = make_attachment(item, blob_key="shared")
        shared_there = make_attachment(other, blob_key="shared")
        uploading = make_attachment(item, blob_key="session-blob")
        reference = make_attachment(item, kind="reference", blob_key=None)
        for attachment in (own, shared_here, shared_there, uploading, reference):
            await metadata_store.add_attachment(attachment)
        await metadata_store.add_session(make_session(other, blob_key="session-blob"))

        assert await metadata_store.delete_attachment(user.id, item.id, "missing") is None
        assert await metadata_store.delete_attachment(user.id, other.id, own.id) is None  # wrong item
        stranger, _ = await self.mailbox(metadata_store)
        assert await metadata_store.delete_attachment(stranger.id, item.id, own.id) is None
        assert await metadata_store.delete_attachment(user.id, item.id, own.id) == ["own"]
        assert await metadata_store.delete_attachment(user.id, item.id, own.id) is None
        assert await metadata_store.delete_attachment(user.id, item.id, shared_here.id) == []
        assert await metadata_store.delete_attachment(user.id, other.id, shared_there.id) == ["shared"]
        assert await metadata_store.delete_attachment(user.id, item.id, uploading.id) == []
        assert await metadata_store.delete_attachment(user.id, item.id, reference.id) == []
        assert await metadata_store.list_attachments(user.id, item.id) == []

    # upload sessions ----------------------------------------------------------------------------

    async def test_session_round_trip(self, metadata_store: MetadataStore) -> None:
        user, inbox = await self.mailbox(metadata_store)
        item = await self.item_in(metadata_store, inbox)
        session = make_session(item, is_inline=True, content_id="cid", content_type=None)
        await metadata_store.add_session(session)
        assert await metadata_store.get_session(session.id) == session
        assert await metadata_store.get_session("missing") is None
        with pytest.raises(Conflict):
            await metadata_store.add_session(make_session(item, id=session.id))
        done = make_session(item, state="completed", attachment_id="a1", last_range=(0, 99), received=100)
        await metadata_store.add_session(done)
        assert await metadata_store.get_session(done.id) == done

    async def test_advance_session_is_compare_and_set(self, metadata_store: MetadataStore) -> None:
        user, inbox = await self.mailbox(metadata_store)
        item = await self.item_in(metadata_store, inbox)
        session = make_session(item)
        await metadata_store.add_session(session)
        assert await metadata_store.advance_session(session.id, 0, 1000, (0, 999)) is True
        stored = await metadata_store.get_session(session.id)
        assert stored is not None and stored.received == 1000 and stored.last_range == (0, 999)
        assert await metadata_store.advance_session(session.id, 0, 2000, (0, 1999)) is False
        assert await metadata_store.advance_session(session.id, 1000, 2000, (1000, 1999)) is True
        assert await metadata_store.advance_session("missing", 0, 1, (0, 0)) is False
        await metadata_store.set_session_state(session.id, "cancelled")
        assert await metadata_store.advance_session(session.id, 2000, 3000, (2000, 2999)) is False
        stored = await metadata_store.get_session(session.id)
        assert stored is not None and stored.received == 2000 and stored.last_range == (1000, 1999)

    async def test_session_usage(self, metadata_store: MetadataStore) -> None:
        user, inbox = await self.mailbox(metadata_store)
        item = await self.item_in(metadata_store, inbox)
        other = await self.item_in(metadata_store, inbox)
        session = make_session(item)
        await metadata_store.add_session(session)
        usage = await metadata_store.session_usage(session.id)
        assert usage.session == session
        assert (usage.max_message_size, usage.attachment_bytes) == (user.max_message_size, 0)
        await metadata_store.add_attachment(make_attachment(item, content_length=10, size=100))
        await metadata_store.add_attachment(make_attachment(item, content_length=32, size=140))
        await metadata_store.add_attachment(make_attachment(other, content_length=1000))
        await metadata_store.advance_session(session.id, 0, 5, (0, 4))
        usage = await metadata_store.session_usage(session.id)
        assert usage.session is not None and usage.session.received == 5
        assert (usage.max_message_size, usage.attachment_bytes) == (user.max_message_size, 42)
        missing = await metadata_store.session_usage("missing")
        assert (missing.session, missing.max_message_size, missing.attachment_bytes) == (None, None, 0)

    async def test_records_handed_out_are_the_callers(self, metadata_store: MetadataStore) -> None:
        """Changing a session or an attachment the store returned changes nothing stored (the
        in-memory store copies records; a shallow copy for the flat ones)."""
        _user, inbox = await self.mailbox(metadata_store)
        item = await self.item_in(metadata_store, inbox)
        session = make_session(item)
        await metadata_store.add_session(session)
        for got in (
            await metadata_store.get_session(session.id),
            (await metadata_store.session_usage(session.id)).session,
        ):
            assert got is not None
            got.received, got.state, got.last_range = 99, "completed", (0, 98)
        stored = await metadata_store.get_session(session.id)
        assert stored is not None and (stored.received, stored.state, stored.last_range) == (0, "active", None)
        attachment = make_attachment(item, content_length=10, size=100)
        await metadata_store.add_attachment(attachment)
        listed = await metadata_store.list_attachments(item.user_id, item.id)
        listed[0].content_length = 5000
        listed[0].data["changed"] = True
        usage = await metadata_store.session_usage(session.id)
        assert usage.attachment_bytes == 10
        again = await metadata_store.get_attachment(item.user_id, item.id, attachment.id)
        assert again is not None and again.content_length == 10 and "changed" not in again.data
        # nested JSON too, both ways: what the caller stored and what the store handed out
        recipients = [{"emailAddress": {"address": "a@contoso.com"}}]
        nested = make_item(inbox, data={"body": {"content": "hi"}, "toRecipients": recipients})
        await metadata_store.add_item(nested)
        recipients[0]["emailAddress"]["address"] = "changed-before@contoso.com"
        got_item = await metadata_store.get_item(nested.user_id, nested.id)
        assert got_item is not None
        got_item.data["body"]["content"] = "changed"
        got_item.data["toRecipients"].append({"emailAddress": {"address": "b@contoso.com"}})
        stored_item = await metadata_store.get_item(nested.user_id, nested.id)
        assert stored_item is not None
        expected = {"body": {"content": "hi"}, "toRecipients": [{"emailAddress": {"address": "a@contoso.com"}}]}
        assert stored_item.data == expected

    async def test_concurrent_advances_one_wins(self, metadata_store: MetadataStore) -> None:
        user, inbox = await self.mailbox(metadata_store)
        item = await self.item_in(metadata_store, inbox)
        session = make_session(item)
        await metadata_store.add_session(session)
        results = await asyncio.gather(
            *(metadata_store.advance_session(session.id, 0, 10 + i, (0, 9 + i)) for i in range(10))
        )
        assert results.count(True) == 1
        stored = await metadata_store.get_session(session.id)
        assert stored is not None and stored.received == 10 + results.index(True)

    async def test_complete_session(self, metadata_store: MetadataStore) -> None:
        user, inbox = await self.mailbox(metadata_store)
        item = await self.item_in(metadata_store, inbox)
        session = make_session(item, size=3000)
        await metadata_store.add_session(session)
        await metadata_store.advance_session(session.id, 0, 2000, (0, 1999))
        attachment = make_attachment(item, blob_key=session.blob_key, size=3100, content_length=3000)

        assert await metadata_store.complete_session(session.id, 1000, attachment) is False  # stale
        assert await metadata_store.list_attachments(user.id, item.id) == []
        assert await metadata_store.complete_session("missing", 0, attachment) is False

        assert await metadata_store.complete_session(session.id, 2000, attachment) is True
        stored = await metadata_store.get_session(session.id)
        assert stored is not None
        assert stored.state == "completed"
        assert stored.received == 3000
        assert stored.attachment_id == attachment.id
        assert stored.last_range == (2000, 2999)
        assert await metadata_store.list_attachments(user.id, item.id) == [attachment]
        item_now = await metadata_store.get_item(user.id, item.id)
        assert item_now is not None and item_now.has_attachments
        # a retry of the final range finds the session completed
        again = make_attachment(item, blob_key=session.blob_key)
        assert await metadata_store.complete_session(session.id, 2000, again) is False
        assert await metadata_store.list_attachments(user.id, item.id) == [attachment]
        # the blob now belongs to the attachment alone: the completed session record, kept for
        # retries of the final range, does not hold the bytes of a deleted attachment
        assert await metadata_store.referenced_blob_keys([session.blob_key]) == {session.blob_key}
        assert await metadata_store.delete_attachment(user.id, item.id, attachment.id) == [session.blob_key]
        assert await metadata_store.referenced_blob_keys([session.blob_key]) == set()
        stored = await metadata_store.get_session(session.id)
        assert stored is not None and stored.state == "completed"

    async def test_complete_session_checks_limits_atomically(self, metadata_store: MetadataStore) -> None:
        user, inbox = await self.mailbox(metadata_store)
        item = await self.item_in(metadata_store, inbox)
        await metadata_store.add_attachment(make_attachment(item, size=900))
        session = make_session(item, size=200, received=0)
        await metadata_store.add_session(session)
        attachment = make_attachment(item, blob_key=session.blob_key, size=200)
        with pytest.raises(LimitExceeded) as raised:
            await metadata_store.complete_session(session.id, 0, attachment, max_total_size=1000)
        assert raised.value.which == "size"
        with pytest.raises(LimitExceeded) as raised:
            await metadata_store.complete_session(session.id, 0, attachment, max_count=1)
        assert raised.value.which == "count"
        stored = await metadata_store.get_session(session.id)
        assert stored == session  # untouched
        assert len(await metadata_store.list_attachments(user.id, item.id)) == 1
        assert await metadata_store.complete_session(session.id, 0, attachment, max_count=2, max_total_size=1100)

    async def test_complete_session_item_gone(self, metadata_store: MetadataStore) -> None:
        user, inbox = await self.mailbox(metadata_store)
        item = await self.item_in(metadata_store, inbox)
        session = make_session(item)
        await metadata_store.add_session(session)
        assert await metadata_store.delete_item(user.id, item.id) == []
        with pytest.raises(RecordNotFound):
            await metadata_store.complete_session(session.id, 0, make_attachment(item))
        assert await metadata_store.get_session(session.id) == session
        # the session outlives its item and still holds its blob
        assert await metadata_store.referenced_blob_keys([session.blob_key]) == {session.blob_key}

    async def test_concurrent_completions_one_wins(self, metadata_store: MetadataStore) -> None:
        user, inbox = await self.mailbox(metadata_store)
        item = await self.item_in(metadata_store, inbox)
        session = make_session(item)
        await metadata_store.add_session(session)
        attempts = [make_attachment(item, blob_key=session.blob_key) for _ in range(8)]
        results = await asyncio.gather(
            *(metadata_store.complete_session(session.id, 0, attempt) for attempt in attempts)
        )
        assert results.count(True) == 1
        assert len(await metadata_store.list_attachments(user.id, item.id)) == 1

    async def test_set_session_state(self, metadata_store: MetadataStore) -> None:
        user, inbox = await self.mailbox(metadata_store)
        item = await self.item_in(metadata_store, inbox)
        session = make_session(item)
        await metadata_store.add_session(session)
        assert await metadata_store.set_session_state(session.id, "cancelled") == session
        stored = await metadata_store.get_session(session.id)
        assert stored is not None and stored.state == "cancelled"
        before = await metadata_store.set_session_state(session.id, "expired")
        assert before is not None and before.state == "cancelled"
        assert await metadata_store.set_session_state("missing", "expired") is None
        with pytest.raises(ValueError):
            await metadata_store.set_session_state(session.id, "bogus")

    async def test_delete_session(self, metadata_store: MetadataStore) -> None:
        user, inbox = await self.mailbox(metadata_store)
        item = await self.item_in(metadata_store, inbox)
        session = make_session(item)
        await metadata_store.add_session(session)
        assert await metadata_store.delete_session(session.id) == session
        assert await metadata_store.delete_session(session.id) is None
        assert await metadata_store.get_session(session.id) is None

    async def test_end_session_leaves_only_a_record_for_recent_sessions(self, metadata_store: MetadataStore) -> None:
        user, inbox = await self.mailbox(metadata_store)
        item = await self.item_in(metadata_store, inbox)
        session = make_session(item)
        await metadata_store.add_session(session)
        assert await metadata_store.advance_session(session.id, 0, 1000, (0, 999))
        as_was = await metadata_store.get_session(session.id)
        ended_at = T0 + timedelta(minutes=5)

        assert await metadata_store.end_session(session.id, "cancelled", ended_at) == as_was
        # to everything but the list of recent sessions, the session is gone
        assert await metadata_store.get_session(session.id) is None
        assert (await metadata_store.session_usage(session.id)).session is None
        assert await metadata_store.list_sessions_expiring_before(T0 + timedelta(days=1)) == []
        assert await metadata_store.referenced_blob_keys([session.blob_key]) == set()
        assert await metadata_store.advance_session(session.id, 1000, 2000, (1000, 1999)) is False
        assert await metadata_store.complete_session(session.id, 1000, make_attachment(item)) is False
        assert await metadata_store.list_attachments(user.id, item.id) == []
        assert await metadata_store.set_session_state(session.id, "expired") is None
        assert await metadata_store.end_session(session.id, "expired", ended_at) is None  # ended already
        assert await metadata_store.delete_session(session.id) is None
        with pytest.raises(Conflict):
            await metadata_store.add_session(make_session(item, id=session.id))  # the id stays taken

        [record] = [s for s in await metadata_store.recent_sessions(100) if s.id == session.id]
        assert as_was is not None
        assert record == replace(as_was, state="cancelled", ended=ended_at)  # bytes received kept
        with pytest.raises(ValueError):
            await metadata_store.end_session(session.id, "active", ended_at)
        with pytest.raises(ValueError):
            await metadata_store.end_session(session.id, "bogus", ended_at)

    async def test_end_session_of_a_completed_session(self, metadata_store: MetadataStore) -> None:
        user, inbox = await self.mailbox(metadata_store)
        item = await self.item_in(metadata_store, inbox)
        session = make_session(item, size=100)
        await metadata_store.add_session(session)
        attachment = make_attachment(item, blob_key=session.blob_key, content_length=100)
        assert await metadata_store.complete_session(session.id, 0, attachment)
        assert await metadata_store.end_session(session.id, "completed", T0 + timedelta(hours=7)) is not None
        [record] = [s for s in await metadata_store.recent_sessions(100) if s.id == session.id]
        assert (record.state, record.attachment_id, record.received) == ("completed", attachment.id, 100)
        # the blob is the attachment's now, as before the session ended
        assert await metadata_store.referenced_blob_keys([session.blob_key]) == {session.blob_key}
        assert await metadata_store.delete_attachment(user.id, item.id, attachment.id) == [session.blob_key]

    async def test_ended_sessions_kept_are_the_newest_of_each_mailbox(self, metadata_store: MetadataStore) -> None:
        user, inbox = await self.mailbox(metadata_store)
        item = await self.item_in(metadata_store, inbox)
        other_user, other_inbox = await self.mailbox(metadata_store)
        other_item = await self.item_in(metadata_store, other_inbox)
        elsewhere = make_session(other_item)
        await metadata_store.add_session(elsewhere)
        await metadata_store.end_session(elsewhere.id, "expired", T0)
        live = make_session(item)
        await metadata_store.add_session(live)
        made = [make_session(item, created=T0 + timedelta(seconds=i)) for i in range(4)]
        for session in made:
            await metadata_store.add_session(session)
        # they end in another order than they were created: the newest *ended* are kept
        for session, minutes in zip(made, (3, 1, 4, 2), strict=True):
            await metadata_store.end_session(session.id, "cancelled", T0 + timedelta(minutes=minutes), keep=2)
        listed = [s.id for s in await metadata_store.recent_sessions(100)]
        assert [i for i in listed if i in {s.id for s in made}] == [made[2].id, made[0].id]  # newest created first
        assert live.id in listed and elsewhere.id in listed  # live sessions and other mailboxes untouched
        await metadata_store.reset()
        assert await metadata_store.recent_sessions(100) == []

    async def test_list_sessions_expiring_before(self, metadata_store: MetadataStore) -> None:
        user, inbox = await self.mailbox(metadata_store)
        item = await self.item_in(metadata_store, inbox)
        sessions = [
            make_session(item, expires=T0 + timedelta(minutes=m), state=state)
            for m, state in ((30, "active"), (10, "completed"), (20, "cancelled"), (40, "active"))
        ]
        for session in sessions:
            await metadata_store.add_session(session)
        cutoff = T0 + timedelta(minutes=30)
        found = await metadata_store.list_sessions_expiring_before(cutoff)
        assert [s.id for s in found] == [sessions[1].id, sessions[2].id]  # strictly before, soonest first
        assert found[0] == sessions[1]
        assert [s.id for s in await metadata_store.list_sessions_expiring_before(cutoff, limit=1)] == [sessions[1].id]
        everything = await metadata_store.list_sessions_expiring_before(T0 + timedelta(days=1))
        assert len(everything) == 4
        assert await metadata_store.list_sessions_expiring_before(T0) == []
        as_local = cutoff.astimezone(timezone(timedelta(hours=-5)))
        assert len(await metadata_store.list_sessions_expiring_before(as_local)) == 2

    # locks --------------------------------------------------------------------------------------

    async def test_lock_session_is_mutually_exclusive(self, metadata_store: MetadataStore) -> None:
        inside = 0
        most = 0
        order: list[int] = []

        async def worker(n: int) -> None:
            nonlocal inside, most
            async with metadata_store.lock_session("session-1"):
                inside += 1
                most = max(most, inside)
                await asyncio.sleep(0.002)
                await asyncio.sleep(0)
                order.append(n)
                inside -= 1

        await asyncio.wait_for(asyncio.gather(*(worker(n) for n in range(12))), 30)
        assert most == 1
        assert sorted(order) == list(range(12))

    async def test_locks_of_different_sessions_are_independent(self, metadata_store: MetadataStore) -> None:
        async with metadata_store.lock_session("session-a"):
            async with asyncio.timeout(10):
                async with metadata_store.lock_session("session-b"):
                    pass

    async def test_lock_is_released_on_error_and_cancellation(self, metadata_store: MetadataStore) -> None:
        with pytest.raises(RuntimeError):
            async with metadata_store.lock_session("s"):
                raise RuntimeError("boom")
        async with asyncio.timeout(10):
            async with metadata_store.lock_session("s"):
                pass

        held = asyncio.Event()
        release = asyncio.Event()

        async def holder() -> None:
            async with metadata_store.lock_session("s"):
                held.set()
                await release.wait()

        task = asyncio.create_task(holder())
        await held.wait()
        with pytest.raises(TimeoutError):  # a waiter that gives up
            async with asyncio.timeout(0.2):
                async with metadata_store.lock_session("s"):
                    pytest.fail("acquired a held lock")
        release.set()
        await task
        async with asyncio.timeout(10):
            async with metadata_store.lock_session("s"):
                pass

    async def test_lock_waiter_gets_it_when_holder_leaves(self, metadata_store: MetadataStore) -> None:
        events: list[str] = []
        held = asyncio.Event()

        async def holder() -> None:
            async with metadata_store.lock_session("s"):
                held.set()
                await asyncio.sleep(0.1)
                events.append("holder out")

        async def waiter() -> None:
            await held.wait()
            async with metadata_store.lock_session("s"):
                events.append("waiter in")

        await asyncio.wait_for(asyncio.gather(holder(), waiter()), 10)
        assert events == ["holder out", "waiter in"]

    # blob references and reset ------------------------------------------------------------------

    async def test_referenced_blob_keys(self, metadata_store: MetadataStore) -> None:
        user, inbox = await self.mailbox(metadata_store)
        item = await self.item_in(metadata_store, inbox)
        await metadata_store.add_attachment(make_attachment(item, blob_key="att"))
        await metadata_store.add_session(make_session(item, blob_key="sess", state="cancelled"))
        assert await metadata_store.referenced_blob_keys(["att", "sess", "orphan", "att"]) == {"att", "sess"}
        assert await metadata_store.referenced_blob_keys([]) == set()
        many = [f"k{i}" for i in range(5000)] + ["att"]
        assert await metadata_store.referenced_blob_keys(many) == {"att"}

    async def test_announced_blob_keys_count_as_referenced_until_committed(self, metadata_store: MetadataStore) -> None:
        user, inbox = await self.mailbox(metadata_store)
        item = await self.item_in(metadata_store, inbox)
        await metadata_store.announce_blobs(["pending", "dropped"])
        await metadata_store.announce_blobs(["pending"])  # twice is harmless
        assert await metadata_store.referenced_blob_keys(["pending", "dropped", "other"]) == {"pending", "dropped"}
        await metadata_store.withdraw_blobs(["dropped"])
        assert await metadata_store.referenced_blob_keys(["dropped"]) == set()
        # a fresh announcement is not reclaimed...
        assert await metadata_store.reclaim_announced_blobs(3600) == []
        # ...and the commit consumes it: the record references the key now
        await metadata_store.add_attachment(make_attachment(item, blob_key="pending"), announced=True)
        assert await metadata_store.reclaim_announced_blobs(0) == []
        assert await metadata_store.referenced_blob_keys(["pending"]) == {"pending"}
        # a second commit on the same announcement finds it gone and inserts nothing
        late = make_attachment(item, blob_key="pending")
        with pytest.raises(AnnouncementLost):
            await metadata_store.add_attachment(late, announced=True)
        assert await metadata_store.get_attachment(user.id, item.id, late.id) is None

    async def test_a_reclaimed_announcement_cannot_be_committed(self, metadata_store: MetadataStore) -> None:
        user, inbox = await self.mailbox(metadata_store)
        item = await self.item_in(metadata_store, inbox)
        await metadata_store.announce_blobs(["slow"])
        assert await metadata_store.reclaim_announced_blobs(0) == ["slow"]
        assert await metadata_store.referenced_blob_keys(["slow"]) == set()
        attachment = make_attachment(item, blob_key="slow")
        with pytest.raises(AnnouncementLost):
            await metadata_store.add_attachment(attachment, announced=True, max_count=250)
        assert await metadata_store.list_attachments(user.id, item.id) == []

    async def test_commit_and_reclaim_race_one_wins(self, metadata_store: MetadataStore) -> None:
        _, inbox = await self.mailbox(metadata_store)
        item = await self.item_in(metadata_store, inbox)
        for n in range(10):
            key = f"race-{n}"
            await metadata_store.announce_blobs([key])
            commit, reclaim = await asyncio.gather(
                metadata_store.add_attachment(make_attachment(item, blob_key=key), announced=True),
                metadata_store.reclaim_announced_blobs(0),
                return_exceptions=True,
            )
            committed = commit is None
            reclaimed = isinstance(reclaim, list) and key in reclaim
            assert committed != reclaimed, (commit, reclaim)
            assert (await metadata_store.referenced_blob_keys([key]) == {key}) == committed

    async def test_try_lock_session_never_waits(self, metadata_store: MetadataStore) -> None:
        async with metadata_store.lock_session("busy"):
            async with metadata_store.try_lock_session("busy") as held:
                assert held is False
        async with metadata_store.try_lock_session("busy") as held:
            assert held is True
            async with metadata_store.try_lock_session("busy") as again:
                assert again is False
        async with metadata_store.try_lock_session("busy") as held:
            assert held is True

    async def _draft_with_attachments(
        self, metadata_store: MetadataStore
    ) -> tuple[User, Folder, Folder, Item, list[Attachment]]:
        user, drafts = await self.mailbox(metadata_store)
        sent_items = make_folder(user, display_name="Sent Items")
        await metadata_store.add_folder(sent_items)
        draft = await self.item_in(metadata_store, drafts)
        attachments = [make_attachment(draft, blob_key=f"shared-{n}") for n in range(3)]
        for attachment in attachments:
            await metadata_store.add_attachment(attachment)
        return user, drafts, sent_items, draft, attachments

    def _copies(self, inbox: Folder, originals: list[Attachment]) -> tuple[Item, list[Attachment]]:
        copy = make_item(inbox)
        return copy, [make_attachment(copy, blob_key=a.blob_key) for a in originals]

    async def test_send_item_is_tracked_as_changes(self, metadata_store: MetadataStore) -> None:
        user, drafts, sent_items, draft, originals = await self._draft_with_attachments(metadata_store)
        recipient, inbox = await self.mailbox(metadata_store)
        before = await metadata_store.change_mark(user.id)
        sent = make_item(sent_items, id=draft.id, change_key="sent")
        copy = self._copies(inbox, originals)
        await metadata_store.send_item(draft, sent, [copy], [a.id for a in originals])
        assert await self.changes(metadata_store, user, drafts, before) == {draft.id: True}
        assert await self.changes(metadata_store, user, sent_items, before) == {draft.id: False}
        assert await self.changes(metadata_store, recipient, inbox) == {copy[0].id: False}

    async def test_send_item_is_all_or_nothing(self, metadata_store: MetadataStore) -> None:
        user, _, sent_items, draft, originals = await self._draft_with_attachments(metadata_store)
        _, inbox = await self.mailbox(metadata_store)
        sources = [a.id for a in originals]
        sent = make_item(sent_items, id=draft.id, change_key="sent")
        good = self._copies(inbox, originals)
        gone_folder = make_folder(user)  # never stored: the second copy cannot be inserted
        bad = self._copies(gone_folder, originals)
        with pytest.raises((RecordNotFound, Conflict)):
            await metadata_store.send_item(draft, sent, [good, bad], sources)
        assert await metadata_store.get_item(good[0].user_id, good[0].id) is None
        still = await metadata_store.get_item(draft.user_id, draft.id)
        assert still is not None and still.folder_id == draft.folder_id and still.change_key == draft.change_key
        # the draft changed since it was read: nothing is sent
        with pytest.raises(Conflict):
            await metadata_store.send_item(draft, sent, [good], sources[:2])
        stale = make_item(sent_items, id=draft.id, change_key="other")
        with pytest.raises(Conflict):
            await metadata_store.send_item(stale, sent, [good], sources)
        assert await metadata_store.get_item(good[0].user_id, good[0].id) is None
        # and then it goes through: the copies share the draft's blobs
        assert await metadata_store.send_item(draft, sent, [good], sources) == []
        moved = await metadata_store.get_item(draft.user_id, draft.id)
        assert moved is not None and moved.folder_id == sent_items.id and moved.change_key == "sent"
        received = await metadata_store.list_attachments(good[0].user_id, good[0].id)
        assert [a.blob_key for a in received] == [a.blob_key for a in originals]
        # deleting the sent item keeps the keys the copies still reference
        assert await metadata_store.delete_item(draft.user_id, draft.id) == []

    async def test_send_item_without_saving_frees_only_unshared_keys(self, metadata_store: MetadataStore) -> None:
        _, _, _, draft, originals = await self._draft_with_attachments(metadata_store)
        assert await metadata_store.send_item(draft, None, [], [a.id for a in originals]) == sorted(
            a.blob_key for a in originals if a.blob_key is not None
        )
        assert await metadata_store.get_item(draft.user_id, draft.id) is None
        with pytest.raises(RecordNotFound):
            await metadata_store.send_item(draft, None, [], [])

    async def test_reset(self, metadata_store: MetadataStore) -> None:
        user, inbox = await self.mailbox(metadata_store)
        item = await self.item_in(metadata_store, inbox)
        await metadata_store.add_attachment(make_attachment(item, blob_key="b"))
        session = make_session(item)
        await metadata_store.add_session(session)
        await metadata_store.set_setting_if_absent("tenant_id", "t1")
        await metadata_store.reset()
        assert await metadata_store.list_users() == []
        assert await metadata_store.get_user(user.id) is None
        assert await metadata_store.get_folder(user.id, inbox.id) is None
        assert await metadata_store.get_item(user.id, item.id) is None
        assert await metadata_store.get_session(session.id) is None
        assert await metadata_store.referenced_blob_keys(["b", session.blob_key]) == set()
        await metadata_store.announce_blobs(["announced"])
        await metadata_store.reset()
        assert await metadata_store.referenced_blob_keys(["announced"]) == set()
        # settings are configuration (the tenant every process and token agrees on), kept
        assert await metadata_store.get_setting("tenant_id") == "t1"
        # and the store is usable again, even with the same ids
        await metadata_store.add_user(user)
        await metadata_store.add_folder(inbox)
        await metadata_store.add_item(item)

    # subscriptions and their outbox -------------------------------------------------------------------

    async def test_subscription_round_trip(self, metadata_store: MetadataStore) -> None:
        sub = make_subscription("user-a", folder_id="folder-1", lifecycle_url="https://hooks.example/l")
        await metadata_store.add_subscription(sub)
        assert await metadata_store.get_subscription(sub.id) == sub
        assert await metadata_store.get_subscription("nope") is None
        with pytest.raises(Conflict):
            await metadata_store.add_subscription(sub)
        other = make_subscription("user-b", created=T0 + timedelta(seconds=1))
        await metadata_store.add_subscription(other)
        assert [s.id for s in await metadata_store.list_subscriptions()] == [sub.id, other.id]
        assert [s.id for s in await metadata_store.list_subscriptions("user-b")] == [other.id]
        renewed = make_subscription("user-a", id=sub.id, expires=T0 + timedelta(days=3), state="removed")
        await metadata_store.update_subscription(renewed)
        assert await metadata_store.get_subscription(sub.id) == renewed
        with pytest.raises(RecordNotFound):
            await metadata_store.update_subscription(make_subscription("user-a"))
        assert await metadata_store.delete_subscription(sub.id)
        assert not await metadata_store.delete_subscription(sub.id)
        assert await metadata_store.get_subscription(sub.id) is None

    async def test_subscriptions_generation_moves_with_every_change(self, metadata_store: MetadataStore) -> None:
        seen = [await metadata_store.subscriptions_generation()]
        sub = make_subscription("user-a")
        await metadata_store.add_subscription(sub)
        seen.append(await metadata_store.subscriptions_generation())
        await metadata_store.update_subscription(make_subscription("user-a", id=sub.id, client_state="new"))
        seen.append(await metadata_store.subscriptions_generation())
        await metadata_store.delete_subscription(sub.id)
        seen.append(await metadata_store.subscriptions_generation())
        await metadata_store.reset()
        seen.append(await metadata_store.subscriptions_generation())
        assert len(set(seen)) == len(seen), seen
        # reading or delivering moves nothing
        await metadata_store.list_subscriptions()
        assert await metadata_store.subscriptions_generation() == seen[-1]

    async def test_subscription_limit_per_mailbox(self, metadata_store: MetadataStore) -> None:
        await metadata_store.add_subscription(make_subscription("user-a"), max_per_user=2)
        await metadata_store.add_subscription(make_subscription("user-a"), max_per_user=2)
        with pytest.raises(LimitExceeded):
            await metadata_store.add_subscription(make_subscription("user-a"), max_per_user=2)
        await metadata_store.add_subscription(make_subscription("user-b"), max_per_user=2)
        # removed ones do not count
        removed = make_subscription("user-c", state="removed")
        await metadata_store.add_subscription(removed)
        await metadata_store.add_subscription(make_subscription("user-c"), max_per_user=1)

    async def test_outbox_claims_in_order_and_leases(self, metadata_store: MetadataStore) -> None:
        sub = make_subscription("user-a")
        await metadata_store.add_subscription(sub)
        idle = make_subscription("user-a")
        await metadata_store.add_subscription(idle)
        await metadata_store.enqueue_notifications([make_notification(sub, n) for n in range(3)])
        gone = make_subscription("user-z")
        await metadata_store.enqueue_notifications([make_notification(gone)])  # dropped: no such subscription
        now = T0 + timedelta(seconds=5)
        claims = await metadata_store.claim_notifications(now, now + timedelta(seconds=60), 10)
        assert [c.subscription.id for c in claims] == [sub.id]
        claim = claims[0]
        assert [n.body["n"] for n in claim.notifications] == [0, 1, 2]
        seqs = [n.seq for n in claim.notifications]
        assert seqs == sorted(seqs) and len(set(seqs)) == 3
        assert claim.delivery.attempts == 0
        # leased: nobody else gets it until the lease ends
        assert await metadata_store.claim_notifications(now, now + timedelta(seconds=60), 10) == []
        later = now + timedelta(seconds=61)
        again = await metadata_store.claim_notifications(later, later + timedelta(seconds=60), 10)
        assert [c.subscription.id for c in again] == [sub.id]
        # the first two delivered, the third failed: it waits for its backoff
        retry_at = later + timedelta(seconds=30)
        await metadata_store.finish_delivery(sub.id, seqs[1], DeliveryState(retry_at, 1, later))
        assert await metadata_store.claim_notifications(later, later + timedelta(seconds=60), 10) == []
        due = await metadata_store.claim_notifications(retry_at, retry_at + timedelta(seconds=60), 10)
        assert [n.body["n"] for n in due[0].notifications] == [2]
        assert due[0].delivery.attempts == 1 and due[0].delivery.failing_since == later
        await metadata_store.finish_delivery(sub.id, seqs[2], DeliveryState(retry_at))
        assert await metadata_store.claim_notifications(retry_at, retry_at + timedelta(seconds=60), 10) == []

    async def test_outbox_goes_with_its_subscription(self, metadata_store: MetadataStore) -> None:
        sub = make_subscription("user-a")
        await metadata_store.add_subscription(sub)
        await metadata_store.enqueue_notifications([make_notification(sub)])
        await metadata_store.delete_subscription(sub.id)
        await metadata_store.add_subscription(sub)
        now = T0 + timedelta(seconds=5)
        assert await metadata_store.claim_notifications(now, now + timedelta(seconds=60), 10) == []

    async def test_concurrent_claims_hand_each_subscription_out_once(self, metadata_store: MetadataStore) -> None:
        subs = [make_subscription("user-a") for _ in range(6)]
        for sub in subs:
            await metadata_store.add_subscription(sub)
            await metadata_store.enqueue_notifications([make_notification(sub)])
        now = T0 + timedelta(seconds=5)
        results = await asyncio.gather(
            *(metadata_store.claim_notifications(now, now + timedelta(seconds=60), 4) for _ in range(4))
        )
        claimed = [c.subscription.id for claims in results for c in claims]
        assert sorted(claimed) == sorted(s.id for s in subs)

    async def _waiting(self, store: MetadataStore, at: datetime = T0 + timedelta(seconds=5)) -> dict[str, list[int]]:
        """The ``n`` of every waiting notification by subscription (claimed, then released)."""
        found: dict[str, list[int]] = {}
        for claim in await store.claim_notifications(at, at + timedelta(seconds=60), 100):
            found[claim.subscription.id] = [n.body["n"] for n in claim.notifications]
            await store.finish_delivery(claim.subscription.id, 0, DeliveryState(T0))
        return found

    async def test_writes_queue_their_notifications_in_their_transaction(self, metadata_store: MetadataStore) -> None:
        user, inbox = await self.mailbox(metadata_store)
        sub = make_subscription(user.id)
        removed = make_subscription(user.id, state="removed", created=T0 + timedelta(seconds=1))
        elsewhere = make_subscription("someone-else")
        for s in (sub, removed, elsewhere):
            await metadata_store.add_subscription(s)
        generation = await metadata_store.subscriptions_generation()
        rec = RecordingOutbox()
        item = make_item(inbox)
        await metadata_store.add_item(item, outbox=rec.outbox(user.id, n=1))
        # asked first without subscriptions (a cache may answer), then with the mailbox's own
        assert rec.asked == [(generation, None), (generation, [sub.id, removed.id])]
        assert [q[0] for q in rec.queued] == [sub.id] and rec.queued[0][2] is False
        item = replace(item, change_key="CQAAABYAAAB")
        await metadata_store.update_item(item, outbox=rec.outbox(user.id, n=2))
        attachment = make_attachment(item)
        await metadata_store.add_attachment(attachment, outbox=rec.outbox(user.id, n=3))
        assert await metadata_store.delete_attachment(user.id, item.id, attachment.id, outbox=rec.outbox(user.id, n=4))
        session = make_session(item, size=10)
        await metadata_store.add_session(session)
        done = make_attachment(item, blob_key=session.blob_key, content_length=10)
        assert await metadata_store.complete_session(session.id, 0, done, outbox=rec.outbox(user.id, n=5))
        other, other_inbox = await self.mailbox(metadata_store)
        theirs = make_subscription(other.id, created=T0 + timedelta(seconds=2))
        await metadata_store.add_subscription(theirs)
        copy = make_item(other_inbox)
        await metadata_store.send_item(item, None, [(copy, [])], [done.id], outbox=rec.outbox(user.id, other.id, n=6))
        await metadata_store.delete_item(other.id, copy.id, outbox=rec.outbox(other.id, n=7))
        doomed_folder = make_folder(user, display_name="Doomed")
        await metadata_store.add_folder(doomed_folder)
        await metadata_store.add_item(make_item(doomed_folder))
        await metadata_store.delete_folder(user.id, doomed_folder.id, outbox=rec.outbox(user.id, n=8))
        assert await self._waiting(metadata_store) == {sub.id: [1, 2, 3, 4, 5, 6, 8], theirs.id: [6, 7]}
        # a cached answer: the store reads no subscription
        rec.asked, rec.cached = [], []
        await metadata_store.add_item(make_item(inbox), outbox=rec.outbox(user.id, n=9))
        assert rec.asked == [(await metadata_store.subscriptions_generation(), None)]
        assert await self._waiting(metadata_store) == {sub.id: [1, 2, 3, 4, 5, 6, 8], theirs.id: [6, 7]}

    async def test_a_failed_write_queues_nothing(self, metadata_store: MetadataStore) -> None:
        user, inbox = await self.mailbox(metadata_store)
        sub = make_subscription(user.id)
        await metadata_store.add_subscription(sub)
        rec = RecordingOutbox()
        item = await self.item_in(metadata_store, inbox)
        await metadata_store.add_attachment(make_attachment(item), max_count=1)
        with pytest.raises(LimitExceeded):
            await metadata_store.add_attachment(make_attachment(item), max_count=1, outbox=rec.outbox(user.id, n=1))
        with pytest.raises(RecordNotFound):
            await metadata_store.add_item(make_item(inbox, folder_id="no-such-folder"), outbox=rec.outbox(user.id))
        with pytest.raises(Conflict):
            await metadata_store.add_item(item, outbox=rec.outbox(user.id))
        with pytest.raises(RecordNotFound):
            await metadata_store.update_item(make_item(inbox), outbox=rec.outbox(user.id))
        await metadata_store.announce_blobs(["announced"])
        await metadata_store.withdraw_blobs(["announced"])
        with pytest.raises(AnnouncementLost):
            await metadata_store.add_attachment(
                make_attachment(item, blob_key="announced"), announced=True, outbox=rec.outbox(user.id)
            )
        with pytest.raises(Conflict):
            await metadata_store.send_item(replace(item, change_key="stale"), None, [], [], outbox=rec.outbox(user.id))
        assert (
            await metadata_store.complete_session("missing", 0, make_attachment(item), outbox=rec.outbox(user.id))
            is False
        )
        assert await metadata_store.delete_attachment(user.id, item.id, "missing", outbox=rec.outbox(user.id)) is None
        assert await metadata_store.delete_item(user.id, "missing", outbox=rec.outbox(user.id)) == []
        assert rec.queued == []
        assert await self._waiting(metadata_store) == {}

    async def test_a_later_change_merges_into_a_waiting_notification(self, metadata_store: MetadataStore) -> None:
        user, inbox = await self.mailbox(metadata_store)
        sub = make_subscription(user.id)
        await metadata_store.add_subscription(sub)
        rec = RecordingOutbox()
        item = make_item(inbox)
        await metadata_store.add_item(item, outbox=rec.outbox(user.id, n=1))
        first = rec.queued[-1][1]
        await metadata_store.add_attachment(
            make_attachment(item), outbox=rec.outbox(user.id, merge_into=first, merged_n=2)
        )
        assert rec.queued[-1] == (sub.id, first, True)
        now = T0 + timedelta(seconds=5)
        claims = await metadata_store.claim_notifications(now, now + timedelta(seconds=60), 10)
        assert [n.body["n"] for n in claims[0].notifications] == [2]
        # being delivered (leased): a later change is queued after it, not merged into it
        await metadata_store.add_attachment(
            make_attachment(item), outbox=rec.outbox(user.id, n=3, now=now, merge_into=first, merged_n=4)
        )
        assert rec.queued[-1][1] > first and rec.queued[-1][2] is False
        await metadata_store.finish_delivery(sub.id, first, DeliveryState(now))
        assert await self._waiting(metadata_store, now) == {sub.id: [3]}
        # created and deleted in one operation cancel out
        await metadata_store.add_item(other := make_item(inbox), outbox=rec.outbox(user.id, n=7, now=now))
        await metadata_store.delete_item(
            user.id, other.id, outbox=rec.outbox(user.id, n=8, now=now, merge_into=rec.queued[-1][1], cancels=True)
        )
        assert rec.queued[-1][2] is True
        assert await self._waiting(metadata_store, now) == {sub.id: [3]}
        # merging into a notification already delivered queues the change instead
        await metadata_store.add_attachment(
            make_attachment(item), outbox=rec.outbox(user.id, n=5, now=now, merge_into=first, merged_n=6)
        )
        assert await self._waiting(metadata_store, now) == {sub.id: [3, 5]}

    async def test_held_notifications_wait_for_their_release(self, metadata_store: MetadataStore) -> None:
        user, inbox = await self.mailbox(metadata_store)
        sub = make_subscription(user.id)
        await metadata_store.add_subscription(sub)
        rec = RecordingOutbox()
        item = await self.item_in(metadata_store, inbox)
        await metadata_store.add_attachment(make_attachment(item), outbox=rec.outbox(user.id, n=1))
        until = T0 + timedelta(seconds=60)
        await metadata_store.add_attachment(make_attachment(item), outbox=rec.outbox(user.id, n=2, hold_until=until))
        held = rec.queued[-1][1]
        await metadata_store.add_attachment(make_attachment(item), outbox=rec.outbox(user.id, n=3))
        # what comes before a held notification goes; it and what follows it wait
        assert await self._waiting(metadata_store) == {sub.id: [1]}
        now = T0 + timedelta(seconds=5)
        claims = await metadata_store.claim_notifications(now, now + timedelta(seconds=60), 10)
        await metadata_store.finish_delivery(sub.id, claims[0].notifications[-1].seq, DeliveryState(now))
        assert await self._waiting(metadata_store) == {}
        # released: everything goes, in order
        await metadata_store.release_notifications([held])
        assert await self._waiting(metadata_store) == {sub.id: [2, 3]}
        claims = await metadata_store.claim_notifications(now, now + timedelta(seconds=60), 10)
        await metadata_store.finish_delivery(sub.id, claims[0].notifications[-1].seq, DeliveryState(now))
        # a hold nobody releases (its process died) ends at its time
        await metadata_store.add_attachment(make_attachment(item), outbox=rec.outbox(user.id, n=4, hold_until=until))
        assert await self._waiting(metadata_store) == {}
        assert await self._waiting(metadata_store, until + timedelta(seconds=1)) == {sub.id: [4]}

    async def test_delivery_log(self, metadata_store: MetadataStore) -> None:
        for n in range(5):
            await metadata_store.add_delivery_record(
                DeliveryRecord(
                    subscription_id="s1" if n % 2 == 0 else "s2",
                    url="https://hooks.example/n",
                    at=T0 + timedelta(seconds=n),
                    kind="change",
                    count=1,
                    attempt=n + 1,
                    status=None if n == 4 else 202,
                    latency_ms=1.5,
                    error="ConnectError" if n == 4 else None,
                )
            )
        newest = await metadata_store.list_delivery_records(limit=2)
        assert [r.attempt for r in newest] == [5, 4]
        assert (
            newest[0].status is None and newest[0].error == "ConnectError" and newest[0].at == T0 + timedelta(seconds=4)
        )
        assert [r.attempt for r in await metadata_store.list_delivery_records("s2")] == [4, 2]


class BlobStoreConformance:
    """Every ``BlobStore`` contract; needs a ``blob_store`` fixture."""

    #: True when blobs survive ``close()`` + ``open()`` (the backend provides ``reopen_blob_store``).
    persistent: ClassVar[bool] = False

    @pytest.fixture
    def reopen_blob_store(self) -> ReopenBlobs | None:
        return None

    async def test_write_read_size(self, blob_store: BlobStore) -> None:
        assert await blob_store.size("k") is None
        assert await blob_store.write("k", _chunks(b"hello ", b"", b"world")) == 11
        assert await blob_store.size("k") == 11
        assert await _read_all(blob_store, "k") == b"hello world"

    async def test_write_empty_creates_empty_blob(self, blob_store: BlobStore) -> None:
        assert await blob_store.write("empty", _chunks()) == 0
        assert await blob_store.size("empty") == 0
        assert await _read_all(blob_store, "empty") == b""
        assert "empty" in await _keys(blob_store)

    async def test_write_at_offset_truncates_then_appends(self, blob_store: BlobStore) -> None:
        await blob_store.write("k", _chunks(b"0123456789"))
        assert await blob_store.write("k", _chunks(b"abc"), offset=10) == 13  # append
        assert await _read_all(blob_store, "k") == b"0123456789abc"
        assert await blob_store.write("k", _chunks(b"XY"), offset=4) == 6  # truncate, append
        assert await _read_all(blob_store, "k") == b"0123XY"
        assert await blob_store.write("k", _chunks(), offset=2) == 2  # truncate only
        assert await _read_all(blob_store, "k") == b"01"
        assert await blob_store.write("k", _chunks(b"new")) == 3  # offset 0 replaces
        assert await _read_all(blob_store, "k") == b"new"

    async def test_write_offset_errors(self, blob_store: BlobStore) -> None:
        with pytest.raises(RecordNotFound):
            await blob_store.write("absent", _chunks(b"x"), offset=1)
        assert await blob_store.size("absent") is None
        await blob_store.write("k", _chunks(b"abc"))
        with pytest.raises(ValueError):
            await blob_store.write("k", _chunks(b"x"), offset=4)
        with pytest.raises(ValueError):
            await blob_store.write("k", _chunks(b"x"), offset=-1)
        assert await _read_all(blob_store, "k") == b"abc"

    async def test_write_that_raises_keeps_only_the_prefix(self, blob_store: BlobStore) -> None:
        await blob_store.write("k", _chunks(b"keep-me|"))
        big = b"z" * (3 * 1024 * 1024 + 17)  # more than any write buffer
        with pytest.raises(ConnectionResetError):
            await blob_store.write("k", _failing([b"a" * 1000, big, b"b"], ConnectionResetError()), offset=8)
        assert await blob_store.size("k") == 8
        assert await _read_all(blob_store, "k") == b"keep-me|"
        with pytest.raises(ConnectionResetError):
            await blob_store.write("k", _failing([b"xyz"], ConnectionResetError()), offset=4)
        assert await _read_all(blob_store, "k") == b"keep"

    async def test_write_that_raises_on_a_new_blob_leaves_it_empty(self, blob_store: BlobStore) -> None:
        with pytest.raises(OSError):
            await blob_store.write("new", _failing([b"partial" * 1000], OSError("client went away")))
        assert await blob_store.size("new") == 0  # created, then cut back to offset 0

    async def test_cancelled_write_keeps_only_the_prefix(self, blob_store: BlobStore) -> None:
        await blob_store.write("k", _chunks(b"prefix"))
        started = asyncio.Event()

        async def endless() -> AsyncIterator[bytes]:
            while True:
                yield b"x" * 65536
                started.set()
                await asyncio.sleep(0)

        task = asyncio.create_task(blob_store.write("k", endless(), offset=6))
        await started.wait()
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await _read_all(blob_store, "k") == b"prefix"

    async def test_write_limit(self, blob_store: BlobStore) -> None:
        assert await blob_store.write("k", _chunks(b"12345", b"67890"), limit=10) == 10
        with pytest.raises(ValueError):
            await blob_store.write("k", _chunks(b"abc", b"de"), offset=3, limit=4)
        assert await _read_all(blob_store, "k") == b"123"
        assert await blob_store.write("k", _chunks(b"abcd"), offset=3, limit=4) == 7

        async def endless() -> AsyncIterator[bytes]:
            while True:  # the store stops reading once the limit is broken
                yield b"y" * 1000

        with pytest.raises(ValueError):
            await blob_store.write("k", endless(), offset=7, limit=10_000)
        assert await _read_all(blob_store, "k") == b"123abcd"

    # upload-session ranges -------------------------------------------------------------------------

    async def test_append_ranges_then_final(self, blob_store: BlobStore) -> None:
        data = bytes(range(256)) * 40  # 10,240 bytes in three ranges
        assert await blob_store.append("s", _chunks(data[:4000]), offset=0, length=4000, size=len(data)) == 4000
        assert await blob_store.append("s", _chunks(data[4000:9000]), offset=4000, length=5000, size=len(data)) == 9000
        assert await _read_all(blob_store, "s", end=9000) == data[:9000]
        found = await blob_store.progress("s", len(data))
        assert found is None or found == BlobProgress(9000, (4000, 8999))
        assert (found is not None) is self.persistent
        assert await blob_store.append(
            "s", _chunks(data[9000:]), offset=9000, length=1240, size=len(data), final=True
        ) == len(data)
        assert await blob_store.size("s") == len(data)  # a plain blob: its records are gone
        assert await _read_all(blob_store, "s") == data
        assert await blob_store.progress("s", len(data)) is None

    async def test_append_short_or_long_body_leaves_progress(self, blob_store: BlobStore) -> None:
        size = 3 * 1024 * 1024
        first = b"a" * 1000
        await blob_store.append("s", _chunks(first), offset=0, length=1000, size=size)
        before = await blob_store.progress("s", size)
        # a short body: the bytes that came are no part of the session
        assert await blob_store.append("s", _chunks(b"b" * 10), offset=1000, length=600_000, size=size) == 1010
        assert await blob_store.progress("s", size) == before
        # more than announced
        with pytest.raises(ValueError):
            await blob_store.append("s", _chunks(b"c" * 700_000), offset=1000, length=600_000, size=size)
        assert await blob_store.progress("s", size) == before
        # a client that goes away midway
        with pytest.raises(ConnectionResetError):
            await blob_store.append(
                "s",
                _failing([b"d" * 1000, b"d" * 600_000], ConnectionResetError()),
                offset=1000,
                length=2_000_000,
                size=size,
            )
        assert await blob_store.progress("s", size) == before
        # the range again, whole: it takes the place of whatever the failed ones left
        second = b"e" * 5000
        assert await blob_store.append("s", _chunks(second), offset=1000, length=5000, size=size) == 6000
        assert await _read_all(blob_store, "s", end=6000) == first + second
        found = await blob_store.progress("s", size)
        assert found is None or found == BlobProgress(6000, (1000, 5999))

    async def test_append_checks_the_range(self, blob_store: BlobStore) -> None:
        with pytest.raises(ValueError):
            await blob_store.append("s", _chunks(b"x"), offset=0, length=11, size=10)
        with pytest.raises(ValueError):
            await blob_store.append("s", _chunks(b"x"), offset=0, length=1, size=10, final=True)
        with pytest.raises(ValueError):
            await blob_store.append("s", _chunks(b"x"), offset=-1, length=1, size=10)

    async def test_large_write_of_small_chunks(self, blob_store: BlobStore) -> None:
        pieces = [bytes([i % 251]) * 1000 for i in range(3000)]  # about 3 MB in 1 kB chunks
        expected = b"".join(pieces)
        assert await blob_store.write("big", _chunks(*pieces)) == len(expected)
        assert await _read_all(blob_store, "big") == expected
        tail = [chunk async for chunk in blob_store.read("big", start=len(expected) - 5)]
        assert b"".join(tail) == expected[-5:]

    async def test_read_ranges_and_chunking(self, blob_store: BlobStore) -> None:
        data = bytes(range(256)) * 40  # 10,240 bytes
        await blob_store.write("k", _chunks(data))
        assert await _read_all(blob_store, "k", start=100) == data[100:]
        assert await _read_all(blob_store, "k", start=100, end=200) == data[100:200]
        assert await _read_all(blob_store, "k", end=1) == data[:1]
        assert await _read_all(blob_store, "k", start=10_000, end=99_999) == data[10_000:]
        assert await _read_all(blob_store, "k", start=len(data)) == b""
        assert await _read_all(blob_store, "k", start=99_999) == b""
        assert await _read_all(blob_store, "k", start=50, end=50) == b""
        chunks = [c async for c in blob_store.read("k", start=1, end=1000, chunk_size=64)]
        assert all(0 < len(c) <= 64 for c in chunks)
        assert b"".join(chunks) == data[1:1000]
        assert len(chunks) == -(-999 // 64)
        chunks = [c async for c in blob_store.read("k", chunk_size=4096)]
        assert all(0 < len(c) <= 4096 for c in chunks) and b"".join(chunks) == data

    async def test_read_absent_raises_key_error(self, blob_store: BlobStore) -> None:
        with pytest.raises(RecordNotFound):
            await _read_all(blob_store, "absent")

    async def test_delete_is_idempotent(self, blob_store: BlobStore) -> None:
        await blob_store.write("k", _chunks(b"abc"))
        await blob_store.delete("k")
        assert await blob_store.size("k") is None
        assert "k" not in await _keys(blob_store)
        await blob_store.delete("k")
        await blob_store.delete("never-existed")
        with pytest.raises(RecordNotFound):
            await _read_all(blob_store, "k")

    async def test_copy(self, blob_store: BlobStore) -> None:
        await blob_store.write("src", _chunks(b"original"))
        await blob_store.copy("src", "dst")
        assert await _read_all(blob_store, "dst") == b"original"
        # the copies are independent
        await blob_store.write("dst", _chunks(b"-changed"), offset=4)
        assert await _read_all(blob_store, "src") == b"original"
        assert await _read_all(blob_store, "dst") == b"orig-changed"
        await blob_store.write("src", _chunks(b"new"))
        assert await _read_all(blob_store, "dst") == b"orig-changed"
        await blob_store.delete("src")
        assert await _read_all(blob_store, "dst") == b"orig-changed"
        # over an existing blob
        await blob_store.write("other", _chunks(b"other blob, longer than the rest"))
        await blob_store.copy("other", "dst")
        assert await _read_all(blob_store, "dst") == b"other blob, longer than the rest"
        await blob_store.copy("dst", "dst")
        assert await _read_all(blob_store, "dst") == b"other blob, longer than the rest"
        with pytest.raises(RecordNotFound):
            await blob_store.copy("absent", "dst2")
        assert await blob_store.size("dst2") is None

    async def test_odd_keys_are_opaque(self, blob_store: BlobStore) -> None:
        keys = [
            "a/b",
            "../../escape",
            "/abs",
            "Ab",
            "aB",
            "",
            ".",
            "k with spaces",
            "ünï/cödé",
            "x" * 600,
            "con",
            "a\\b",
            "line\nbreak",
        ]
        for i, key in enumerate(keys):
            assert await blob_store.write(key, _chunks(str(i).encode())) == len(str(i))
        for i, key in enumerate(keys):
            assert await _read_all(blob_store, key) == str(i).encode()
        assert await _keys(blob_store) == set(keys)
        for key in keys:
            await blob_store.delete(key)
        assert await _keys(blob_store) == set()

    async def test_keys_older_than(self, blob_store: BlobStore) -> None:
        before = datetime.now(UTC) - timedelta(minutes=1)
        await blob_store.write("a", _chunks(b"1"))
        await blob_store.write("b", _chunks(b"2"))
        await blob_store.copy("a", "c")
        assert await _keys(blob_store) == {"a", "b", "c"}
        assert await _keys(blob_store, before) == set()
        later = datetime.now(UTC) + timedelta(minutes=1)
        assert await _keys(blob_store, later) == {"a", "b", "c"}
        naive_later = later.replace(tzinfo=None)  # taken as UTC
        assert await _keys(blob_store, naive_later) == {"a", "b", "c"}

    async def test_reset(self, blob_store: BlobStore) -> None:
        await blob_store.write("a", _chunks(b"1"))
        await blob_store.write("b" * 400, _chunks(b"2"))
        await blob_store.reset()
        assert await _keys(blob_store) == set()
        assert await blob_store.size("a") is None
        await blob_store.write("a", _chunks(b"again"))
        assert await _read_all(blob_store, "a") == b"again"

    @settings(
        max_examples=40,
        deadline=None,
        # Each backend's subclass runs this method: a different executor on purpose. The fixture
        # is shared across examples, which is why every example uses fresh keys.
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.differing_executors,
        ],
    )
    @given(
        operations=st.lists(
            st.tuples(
                st.sampled_from(["write", "fail", "copy", "delete"]),
                st.floats(min_value=0, max_value=1),
                st.lists(st.binary(max_size=300), max_size=5),
            ),
            max_size=12,
        )
    )
    async def test_writes_match_a_bytearray_model(
        self, blob_store: BlobStore, operations: list[tuple[str, float, list[bytes]]]
    ) -> None:
        key, other = _id("model"), _id("model-copy")
        model: bytearray | None = None
        copied: bytes | None = None
        for operation, where, chunks in operations:
            offset = int(where * len(model)) if model is not None else 0
            if operation == "write":
                length = await blob_store.write(key, _chunks(*chunks), offset=offset)
                model = (model or bytearray())[:offset] + b"".join(chunks)
                assert length == len(model)
            elif operation == "fail":
                with pytest.raises(EOFError):
                    await blob_store.write(key, _failing(chunks, EOFError()), offset=offset)
                model = (model or bytearray())[:offset]
            elif operation == "copy" and model is not None:
                await blob_store.copy(key, other)
                copied = bytes(model)
            elif operation == "delete":
                await blob_store.delete(key)
                model = None
            if model is None:
                assert await blob_store.size(key) is None
            else:
                assert await blob_store.size(key) == len(model)
                assert await _read_all(blob_store, key, chunk_size=97) == bytes(model)
            if copied is not None:
                assert await _read_all(blob_store, other) == copied
        await blob_store.delete(key)
        await blob_store.delete(other)


#: A child process holding or trying a session lock of the store ``module:Class(argument)``.
#: ``hold`` keeps the lock until a line arrives on stdin (or the process dies): no timing.
LOCK_CHILD = textwrap.dedent(
    """
    import asyncio, importlib, sys

    async def main(spec, argument, mode, session_id, seconds):
        module, _, name = spec.partition(":")
        store = getattr(importlib.import_module(module), name)(argument)
        await store.open()
        if mode == "hold":
            async with store.lock_session(session_id):
                print("locked", flush=True)
                await asyncio.to_thread(sys.stdin.readline)
            print("released", flush=True)
        elif mode == "try":
            try:
                async with asyncio.timeout(seconds):
                    async with store.lock_session(session_id):
                        print("acquired", flush=True)
            except TimeoutError:
                print("busy", flush=True)
        await store.close()

    asyncio.run(main(*sys.argv[1:5], float(sys.argv[5])))
    """
)

StoreSpec = tuple[str, str]


def open_spec(spec: StoreSpec) -> MetadataStore:
    """A new (unopened) store from ``("module:Class", argument)``."""
    module, _, name = spec[0].partition(":")
    store: MetadataStore = getattr(importlib.import_module(module), name)(spec[1])
    return store


class _LockChild:
    def __init__(self, spec: StoreSpec, mode: str, session_id: str, seconds: float = 0.0) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", LOCK_CHILD, spec[0], spec[1], mode, session_id, str(seconds)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    async def expect(self, expected: str) -> None:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(self.process.stdout.readline), 60)
        if line.strip() != expected:
            self.process.kill()
            _, err = self.process.communicate()
            pytest.fail(f"child said {line!r}, expected {expected!r}; stderr: {err}")

    def release(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()

    def finish(self) -> None:
        self.process.kill()
        self.process.communicate()


async def can_lock(store: MetadataStore, session_id: str, within: float) -> bool:
    """Whether the lock is had within ``within`` seconds (a bound for a lock that is held, not a
    timing measurement: a held lock answers False however slow the machine is)."""
    try:
        async with asyncio.timeout(within):
            async with store.lock_session(session_id):
                return True
    except TimeoutError:
        return False


class PersistentMetadataStoreConformance(MetadataStoreConformance):
    """For backends that keep data across close and open: also provide ``reopen_metadata_store``."""

    persistent: ClassVar[bool] = True

    async def test_reopen_keeps_everything(
        self, metadata_store: MetadataStore, reopen_metadata_store: ReopenMetadata
    ) -> None:
        user, inbox = await self.mailbox(metadata_store)
        item = await self.item_in(metadata_store, inbox)
        attachment = make_attachment(item)
        await metadata_store.add_attachment(attachment)
        session = make_session(item)
        await metadata_store.add_session(session)
        await metadata_store.advance_session(session.id, 0, 5, (0, 4))
        await metadata_store.set_setting_if_absent("tenant_id", "t1")

        store = await reopen_metadata_store(metadata_store)
        assert await store.get_user(user.id) == user
        assert await store.get_folder(user.id, inbox.id) == inbox
        stored_item = await store.get_item(user.id, item.id)
        assert stored_item is not None and stored_item.has_attachments
        assert await store.list_attachments(user.id, item.id) == [attachment]
        stored_session = await store.get_session(session.id)
        assert stored_session is not None and stored_session.received == 5
        assert stored_session.last_range == (0, 4)
        assert await store.get_setting("tenant_id") == "t1"
        ended = make_session(item, received=7)
        await store.add_session(ended)
        await store.end_session(ended.id, "cancelled", T0 + timedelta(minutes=1))
        store = await reopen_metadata_store(store)
        [record] = [s for s in await store.recent_sessions(100) if s.id == ended.id]
        assert (record.state, record.ended, record.received) == ("cancelled", T0 + timedelta(minutes=1), 7)
        with pytest.raises(Conflict):
            await store.add_user(make_user(user.user_principal_name.upper()))
        mark = await store.change_mark(user.id)
        assert mark > 0
        changes = await store.item_changes(user.id, inbox.id, after=0, upto=mark, limit=10)
        assert [c.item_id for c in changes] == [item.id]

    async def test_reopen_keeps_subscriptions_and_outbox(
        self, metadata_store: MetadataStore, reopen_metadata_store: ReopenMetadata
    ) -> None:
        sub = make_subscription("user-a")
        await metadata_store.add_subscription(sub)
        await metadata_store.enqueue_notifications([make_notification(sub, 7)])
        store = await reopen_metadata_store(metadata_store)
        assert await store.get_subscription(sub.id) == sub
        now = T0 + timedelta(seconds=5)
        claims = await store.claim_notifications(now, now + timedelta(seconds=60), 10)
        assert [n.body["n"] for n in claims[0].notifications] == [7]

    async def test_reopen_keeps_a_committed_write_s_notification(
        self, metadata_store: MetadataStore, reopen_metadata_store: ReopenMetadata
    ) -> None:
        user, inbox = await self.mailbox(metadata_store)
        sub = make_subscription(user.id)
        await metadata_store.add_subscription(sub)
        item = await self.item_in(metadata_store, inbox)
        await metadata_store.add_attachment(make_attachment(item), outbox=RecordingOutbox().outbox(user.id, n=11))
        store = await reopen_metadata_store(metadata_store)
        assert await self._waiting(store) == {sub.id: [11]}

    # locks across stores and processes ----------------------------------------------------------

    async def test_lock_excludes_another_store(
        self, metadata_store: MetadataStore, metadata_store_spec: StoreSpec
    ) -> None:
        second = open_spec(metadata_store_spec)
        await second.open()
        try:
            inside: list[str] = []
            most = 0

            async def worker(store: MetadataStore, n: int) -> None:
                nonlocal most
                async with store.lock_session("shared"):
                    inside.append(f"in{n}")
                    most = max(most, sum(e.startswith("in") for e in inside) - inside.count("out"))
                    await asyncio.sleep(0)
                    inside.append("out")

            stores = (metadata_store, second)
            await asyncio.wait_for(asyncio.gather(*(worker(stores[n % 2], n) for n in range(8))), 60)
            assert most == 1
            assert len(inside) == 16
        finally:
            await second.close()

    async def test_lock_excludes_another_process_until_it_releases(
        self, metadata_store: MetadataStore, metadata_store_spec: StoreSpec
    ) -> None:
        child = _LockChild(metadata_store_spec, "hold", "session-x")
        try:
            await child.expect("locked")
            assert await can_lock(metadata_store, "session-x", 0.3) is False
            assert await can_lock(metadata_store, "session-y", 30) is True  # other sessions are free
            child.release()
            await child.expect("released")
            assert await can_lock(metadata_store, "session-x", 60) is True
            assert child.process.wait(60) == 0
        finally:
            child.finish()

    async def test_lock_of_a_killed_process_is_released(
        self, metadata_store: MetadataStore, metadata_store_spec: StoreSpec
    ) -> None:
        child = _LockChild(metadata_store_spec, "hold", "session-k")
        try:
            await child.expect("locked")
            waiting = asyncio.create_task(can_lock(metadata_store, "session-k", 60))
            done, _ = await asyncio.wait([waiting], timeout=0.3)
            assert not done  # the child holds it
            os.kill(child.process.pid, signal.SIGKILL)
            child.process.wait(30)
            assert await waiting is True
        finally:
            child.finish()

    async def test_another_process_waits_for_our_lock(
        self, metadata_store: MetadataStore, metadata_store_spec: StoreSpec
    ) -> None:
        async with metadata_store.lock_session("session-p"):
            busy = _LockChild(metadata_store_spec, "try", "session-p", 0.5)
            try:
                await busy.expect("busy")
                busy.process.wait(30)
            finally:
                busy.finish()
        child = _LockChild(metadata_store_spec, "try", "session-p", 20)
        try:
            await child.expect("acquired")
            assert child.process.wait(30) == 0
        finally:
            child.finish()


class PersistentBlobStoreConformance(BlobStoreConformance):
    """For backends that keep bytes across close and open: also provide ``reopen_blob_store``."""

    persistent: ClassVar[bool] = True

    async def test_progress_survives_reopen(self, blob_store: BlobStore, reopen_blob_store: ReopenBlobs) -> None:
        size = 5 * 1024 * 1024
        data = bytes(range(256)) * (size // 256)
        cuts = [0, 1_000_000, 1_000_001, 4_200_000]
        for start, end in itertools.pairwise(cuts):
            await blob_store.append("s", _chunks(data[start:end]), offset=start, length=end - start, size=size)
        store = await reopen_blob_store(blob_store)
        assert await store.progress("s", size) == BlobProgress(4_200_000, (1_000_001, 4_199_999))
        assert await store.progress("s", size, known=4_200_000) == BlobProgress(4_200_000, (1_000_001, 4_199_999))
        assert await _read_all(store, "s", end=4_200_000) == data[:4_200_000]
        await store.append(
            "s", _chunks(data[4_200_000:]), offset=4_200_000, length=size - 4_200_000, size=size, final=True
        )
        assert await _read_all(store, "s") == data

    async def test_reopen_keeps_blobs(self, blob_store: BlobStore, reopen_blob_store: ReopenBlobs) -> None:
        await blob_store.write("a", _chunks(b"alpha"))
        await blob_store.write("long" * 100, _chunks(b"beta"))
        await blob_store.copy("a", "c")
        store = await reopen_blob_store(blob_store)
        assert await _read_all(store, "a") == b"alpha"
        assert await _read_all(store, "long" * 100) == b"beta"
        assert await _read_all(store, "c") == b"alpha"
        assert await _keys(store) == {"a", "long" * 100, "c"}
        assert await store.write("a", _chunks(b"!"), offset=5) == 6
